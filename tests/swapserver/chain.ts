/**
 * What the local swap server needs from the chain: one unspent-output lookup, the tip height and
 * publication. {@linkcode MemoryChain} for unit tests, {@linkcode BtcdChainSource} over btcd's JSON-RPC for
 * regtest.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { Transaction } from "@scure/btc-signer";

/** An unspent output as the chain reports it. */
export interface ChainTxOut {
  /** sat */
  valueSat: bigint;
  pkScript: Uint8Array;
  /** 0 while in the mempool. */
  confirmations: number;
}

/** The server's view of the chain (a strict server checks every deposit against it). */
export interface ChainSource {
  /**
   * The unspent output `txid:vout` (mempool included), or null when it is unknown or spent.
   * @param txid display (byte-reversed) txid hex
   */
  getTxOut(txid: string, vout: number): Promise<ChainTxOut | null>;
  /** Height of the best block. */
  tipHeight(): Promise<number>;
  /**
   * Publishes a fully signed transaction.
   * @returns its display txid
   * @throws Error when the chain refuses it
   */
  publish(rawTx: Uint8Array): Promise<string>;
}

interface MemOutput {
  valueSat: bigint;
  pkScript: Uint8Array;
  /** 0 = unconfirmed. */
  height: number;
  spentBy?: string;
}

/**
 * An in-memory chain: outputs added by the test, a settable tip, and `publish` that spends the inputs of
 * the transaction (refusing a missing or already spent input, as a node would) and adds its outputs as
 * unconfirmed. Script validity is NOT checked (that is what the regtest test is for).
 */
export class MemoryChain implements ChainSource {
  #tip: number;
  readonly #outputs = new Map<string, MemOutput>();
  /** Every transaction published, raw, in order. */
  readonly published: Uint8Array[] = [];

  /** @param tip initial tip height */
  constructor(tip = 1000) {
    this.#tip = tip;
  }

  /** Sets the tip height. */
  setTip(height: number): void {
    this.#tip = height;
  }

  /**
   * Adds an unspent output.
   * @param confirmations 0 = in the mempool; otherwise mined at `tip − confirmations + 1`
   */
  addOutput(txid: string, vout: number, valueSat: bigint, pkScript: Uint8Array, confirmations = 6): void {
    const height = confirmations > 0 ? this.#tip - confirmations + 1 : 0;
    this.#outputs.set(`${txid}:${vout}`, { valueSat, pkScript, height });
  }

  /** Marks an output spent (e.g. by a transaction the server did not see). */
  spend(outpoint: string, by = "external"): void {
    const o = this.#outputs.get(outpoint);
    if (o) o.spentBy = by;
  }

  /** The txid that spent `outpoint`, if any. */
  spentBy(outpoint: string): string | undefined {
    return this.#outputs.get(outpoint)?.spentBy;
  }

  getTxOut(txid: string, vout: number): Promise<ChainTxOut | null> {
    const o = this.#outputs.get(`${txid}:${vout}`);
    if (!o || o.spentBy) return Promise.resolve(null);
    return Promise.resolve({
      valueSat: o.valueSat,
      pkScript: o.pkScript,
      confirmations: o.height === 0 ? 0 : this.#tip - o.height + 1,
    });
  }

  tipHeight(): Promise<number> {
    return Promise.resolve(this.#tip);
  }

  publish(rawTx: Uint8Array): Promise<string> {
    const tx = Transaction.fromRaw(rawTx, { allowUnknownOutputs: true });
    const txid = hex.encode(sha256(sha256(tx.toBytes(true, false))).reverse());
    const ins: MemOutput[] = [];
    for (let i = 0; i < tx.inputsLength; i++) {
      const inp = tx.getInput(i);
      const op = `${hex.encode(inp.txid!)}:${inp.index}`;
      const o = this.#outputs.get(op);
      if (!o) return Promise.reject(new Error(`MemoryChain: input ${op} of ${txid} is unknown`));
      if (o.spentBy) {
        return Promise.reject(new Error(`MemoryChain: input ${op} already spent by ${o.spentBy}`));
      }
      ins.push(o);
    }
    for (const o of ins) o.spentBy = txid;
    for (let i = 0; i < tx.outputsLength; i++) {
      const out = tx.getOutput(i);
      this.#outputs.set(`${txid}:${i}`, { valueSat: out.amount!, pkScript: out.script!, height: 0 });
    }
    this.published.push(rawTx);
    return Promise.resolve(txid);
  }
}

/** The part of `tests/regtest/btcd.ts`'s `BtcdRpc` this module calls. */
export interface BtcdLikeRpc {
  call<T>(method: string, params?: unknown[]): Promise<T>;
}

/** btcd `gettxout` answer (the fields read). */
interface BtcdTxOut {
  confirmations: number;
  /** BTC, as a JSON number. */
  value: number;
  scriptPubKey: { hex: string };
}

/** BTC as a JSON number (at most 8 decimals) to sat, exactly. */
export function btcToSat(value: number): bigint {
  const [whole, frac = ""] = value.toFixed(8).split(".");
  return BigInt(whole) * 100_000_000n + BigInt(frac.padEnd(8, "0"));
}

/** A {@linkcode ChainSource} over btcd's JSON-RPC (`gettxout` with the mempool, `getbestblock`, `sendrawtransaction`). */
export class BtcdChainSource implements ChainSource {
  readonly #rpc: BtcdLikeRpc;

  /** @param rpc e.g. `net.btcd.rpc` of the regtest harness */
  constructor(rpc: BtcdLikeRpc) {
    this.#rpc = rpc;
  }

  async getTxOut(txid: string, vout: number): Promise<ChainTxOut | null> {
    const r = await this.#rpc.call<BtcdTxOut | null>("gettxout", [txid, vout, true]);
    if (!r) return null;
    return {
      valueSat: btcToSat(r.value),
      pkScript: hex.decode(r.scriptPubKey.hex),
      confirmations: r.confirmations,
    };
  }

  async tipHeight(): Promise<number> {
    return (await this.#rpc.call<{ height: number }>("getbestblock")).height;
  }

  publish(rawTx: Uint8Array): Promise<string> {
    return this.#rpc.call<string>("sendrawtransaction", [hex.encode(rawTx)]);
  }
}
