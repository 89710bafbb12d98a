/**
 * The regtest miner's wallet: one random P2WPKH key that btcd's `generate` pays (`--miningaddr`), and a
 * small coin selector that spends those coinbases to fund any address.
 *
 * btcd has no wallet and no `generatetoaddress`; its mining address is fixed when it starts, before any
 * lnd wallet exists. So the harness mines to its own key and funds lnd nodes (and anything else a test
 * needs, such as a static address) with ordinary transactions signed here.
 *
 * @module
 */

import { secp256k1 } from "@noble/curves/secp256k1.js";
import { hex } from "@scure/base";
import { OutScript, p2wpkh, Transaction } from "@scure/btc-signer";
import type { BtcdRpc } from "./btcd.ts";

/** Address parameters of Bitcoin regtest (bech32 HRP `bcrt`). */
export const REGTEST_NETWORK = {
  bech32: "bcrt",
  pubKeyHash: 0x6f,
  scriptHash: 0xc4,
  wif: 0xef,
} as const;

/** Blocks before a coinbase output may be spent (consensus rule, same on regtest). */
export const COINBASE_MATURITY = 100;

/** Fee rate the miner wallet pays, in sat/vB (btcd's minimum relay fee is 1 sat/vB). */
export const MINER_FEE_RATE_SAT_PER_VB = 2n;

/** One payment of {@linkcode MinerWallet.sendMany}. */
export interface Payment {
  /** Regtest address (any standard type). */
  address: string;
  /** Amount in sat. */
  amountSat: bigint;
}

interface Utxo {
  txid: string;
  vout: number;
  amountSat: bigint;
}

interface Coinbase {
  blockHash: string;
  height: number;
}

/**
 * The miner's wallet. Call {@linkcode noteMinedBlocks} after every `generate` so it knows its coinbases.
 * Not safe for concurrent sends (tests call it sequentially).
 */
export class MinerWallet {
  /** The P2WPKH regtest address btcd mines to. */
  readonly address: string;
  readonly #secretKey: Uint8Array;
  readonly #pkScript: Uint8Array;
  readonly #rpc: BtcdRpc;
  /** Unspent coinbases, oldest first. */
  readonly #coinbases: Coinbase[] = [];
  /** Unspent non-coinbase outputs (change), spendable at once. */
  #utxos: Utxo[] = [];

  /** @param rpc btcd client used to read coinbases and broadcast */
  constructor(rpc: BtcdRpc) {
    this.#rpc = rpc;
    this.#secretKey = secp256k1.utils.randomSecretKey();
    const payment = p2wpkh(secp256k1.getPublicKey(this.#secretKey, true), REGTEST_NETWORK);
    this.address = payment.address!;
    this.#pkScript = payment.script;
  }

  /**
   * Records blocks just mined by btcd's `generate` (which pays {@linkcode address}).
   *
   * @param hashes block hashes in mining order
   * @param lastHeight height of the last of them
   */
  noteMinedBlocks(hashes: string[], lastHeight: number): void {
    hashes.forEach((blockHash, i) => {
      this.#coinbases.push({ blockHash, height: lastHeight - hashes.length + 1 + i });
    });
  }

  /**
   * Pays one address from mature coinbases and change; the change returns to the miner.
   *
   * @param address regtest address
   * @param amountSat amount in sat
   * @returns txid (display hex) of the broadcast transaction, unconfirmed
   * @throws Error when the miner has too few mature coins (mine more blocks) or btcd rejects the tx
   */
  sendToAddress(address: string, amountSat: bigint): Promise<string> {
    return this.sendMany([{ address, amountSat }]);
  }

  /**
   * Pays several addresses in one transaction (same rules as {@linkcode sendToAddress}).
   *
   * @returns txid; output i pays `payments[i]`, change (if any) is the last output
   */
  async sendMany(payments: Payment[]): Promise<string> {
    if (payments.length === 0) throw new RangeError("Miner wallet: no payments given");
    for (const p of payments) {
      if (p.amountSat <= 0n) throw new RangeError(`Miner wallet: amount ${p.amountSat} sat is not positive`);
    }
    const total = payments.reduce((s, p) => s + p.amountSat, 0n);
    const tip = (await this.#rpc.getBestBlock()).height;
    const inputs: Utxo[] = [];
    const takenUtxos: Utxo[] = [];
    const takenCoinbases: Coinbase[] = [];
    const restore = () => {
      this.#utxos.unshift(...takenUtxos);
      this.#coinbases.unshift(...takenCoinbases);
    };
    let inSum = 0n;
    const fee = (nIn: number) =>
      MINER_FEE_RATE_SAT_PER_VB * BigInt(11 + 68 * nIn + 43 * (payments.length + 1));
    try {
      while (inSum < total + fee(inputs.length)) {
        let next = this.#utxos.shift();
        if (next) {
          takenUtxos.push(next);
        } else {
          const cb = this.#coinbases[0];
          // Spendable in block tip+1 when (tip+1) - height >= maturity.
          if (!cb || tip + 1 - cb.height < COINBASE_MATURITY) {
            throw new Error(
              `Miner wallet has ${inSum} sat of spendable coins, needs ${total + fee(inputs.length)} sat: ` +
                `mine more blocks (coinbases mature after ${COINBASE_MATURITY})`,
            );
          }
          takenCoinbases.push(this.#coinbases.shift()!);
          next = await this.#coinbaseUtxo(cb);
        }
        inputs.push(next);
        inSum += next.amountSat;
      }
      const tx = new Transaction();
      for (const u of inputs) {
        tx.addInput({
          txid: u.txid,
          index: u.vout,
          witnessUtxo: { script: this.#pkScript, amount: u.amountSat },
        });
      }
      for (const p of payments) tx.addOutputAddress(p.address, p.amountSat, REGTEST_NETWORK);
      const change = inSum - total - fee(inputs.length);
      const hasChange = change >= 1_000n;
      if (hasChange) tx.addOutput({ script: this.#pkScript, amount: change });
      tx.sign(this.#secretKey);
      tx.finalize();
      const txid = await this.#rpc.sendRawTransaction(tx.hex);
      if (txid !== tx.id) throw new Error(`btcd returned txid ${txid}, expected ${tx.id}`);
      if (hasChange) this.#utxos.push({ txid, vout: payments.length, amountSat: change });
      return txid;
    } catch (e) {
      restore();
      throw e;
    }
  }

  async #coinbaseUtxo(cb: Coinbase): Promise<Utxo> {
    const block = await this.#rpc.getBlockTxids(cb.blockHash);
    const txid = block.tx[0];
    const tx = Transaction.fromRaw(hex.decode(await this.#rpc.getRawTransactionHex(txid)), {
      allowUnknownOutputs: true,
    });
    const want = hex.encode(this.#pkScript);
    for (let vout = 0; vout < tx.outputsLength; vout++) {
      const out = tx.getOutput(vout);
      if (out.script && hex.encode(out.script) === want && out.amount !== undefined) {
        return { txid, vout, amountSat: out.amount };
      }
    }
    throw new Error(
      `Coinbase ${txid} of block ${cb.blockHash} does not pay the miner address ${this.address} ` +
        `(script ${OutScript.decode(this.#pkScript).type})`,
    );
  }
}
