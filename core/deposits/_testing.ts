/**
 * Test and bench helpers for core/deposits: an in-process stand-in for the lnd calls `deposits sync` makes,
 * with a real signer (BIP-341 script-path signatures produced by @scure/btc-signer's own PSBT signing path,
 * not by loopkit's sighash code), and a temp database with one static address.
 *
 * @module
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { Transaction } from "@scure/btc-signer";
import type {
  ConfirmationDetails,
  LndInfo,
  SignDescriptor,
  SpendDetails,
  TxOut,
  Utxo,
} from "../../lnd/types.ts";
import { LndError } from "../../lnd/lnd_error.ts";
import { type Db, openDb } from "../db/db.ts";
import { insertStaticAddress, type StaticAddressRow } from "../db/static_addresses.ts";
import { staticAddress } from "../staticaddr/script.ts";
import type { SyncLnd } from "./sync.ts";

/** Deterministic private key of a key locator in the stand-in's key ring. */
export function standInPrivateKey(family: number, index: number): Uint8Array {
  const k = new Uint8Array(32);
  new DataView(k.buffer).setUint32(0, family + 1);
  new DataView(k.buffer).setUint32(4, index + 1);
  k[31] = 7;
  return k;
}

/** In-process stand-in for the lnd calls sync makes. Fields are settable by tests. */
export class WalletStandIn implements SyncLnd {
  utxos: Utxo[] = [];
  height = 100;
  nextAddrCalls = 0;
  listUnspentCalls = 0;
  /** The account filter of each ListUnspent call, in order ("" = none: the whole wallet). */
  listUnspentAccounts: string[] = [];
  /**
   * Outputs paying one of these scripts are in lnd's `imported` account, all others in `default`; null:
   * an lnd that ignores the account filter (every call lists the whole wallet).
   */
  importedPkScripts: Uint8Array[] | null = null;
  /** Text of an lnd error to answer an account-filtered ListUnspent with ("" = none). */
  accountFilterError = "";
  feeRate = 2_500n;
  minRelay = 253n;
  /** Text of a publish error to answer with ("" = success). */
  publishError = "";
  published: Uint8Array[] = [];
  signCalls: { tx: Uint8Array; descs: SignDescriptor[]; prev: TxOut[] }[] = [];
  /** Confirmations by txid for registerConfirmation. */
  confirmations = new Map<string, ConfirmationDetails>();
  confirmationCalls = 0;
  /** Spends by outpoint (`txid:vout`) for registerSpend; absent: no spend within the wait. */
  spends = new Map<string, SpendDetails>();
  /** The outpoint and height hint of each registerSpend call, in order. */
  spendCalls: { outpoint: string; heightHint: number }[] = [];
  /** Text of an lnd error to answer registerSpend with ("" = none). */
  spendError = "";
  /** Sign with this locator instead of the requested one (to test a wrong-key lnd). */
  signWithWrongKey = false;
  /** Runs (once) while a signature is being made, before it is returned: to interleave another sync. */
  duringSign?: () => Promise<void>;

  getInfo(): Promise<LndInfo> {
    return Promise.resolve({
      identityPubkey: "",
      blockHeight: this.height,
      blockHash: "",
      chains: [{ chain: "bitcoin", network: "regtest" }],
      syncedToChain: true,
      version: "test",
    });
  }
  /** Like lnd: a non-empty `account` keeps that account's outputs only; an unknown name lists nothing. */
  listUnspent(_min = 0, _max = 0, opts?: { account?: string }): Promise<Utxo[]> {
    this.listUnspentCalls++;
    const account = opts?.account ?? "";
    this.listUnspentAccounts.push(account);
    if (account && this.accountFilterError) {
      return Promise.reject(new LndError("WalletKit.ListUnspent", "unknown", this.accountFilterError));
    }
    const imported = this.importedPkScripts;
    const accountOf = (u: Utxo) =>
      imported?.some((p) => p.length === u.pkScript.length && p.every((b, i) => b === u.pkScript[i]))
        ? "imported"
        : "default";
    return Promise.resolve(
      this.utxos.filter((u) => !account || imported === null || accountOf(u) === account).map((u) => ({
        ...u,
      })),
    );
  }
  nextSweepPkScript(): Promise<Uint8Array> {
    this.nextAddrCalls++;
    const n = this.nextAddrCalls;
    return Promise.resolve(Uint8Array.of(0x51, 0x20, ...new Uint8Array(28).fill(0xee), ...u32(n)));
  }
  estimateFeeSatPerKw(): Promise<bigint> {
    return Promise.resolve(this.feeRate);
  }
  minRelayFeeSatPerKw(): Promise<bigint> {
    return Promise.resolve(this.minRelay);
  }
  publishTransaction(tx: Uint8Array): Promise<void> {
    this.published.push(tx);
    if (this.publishError) {
      return Promise.reject(new LndError("WalletKit.PublishTransaction", "unknown", this.publishError));
    }
    return Promise.resolve();
  }
  registerConfirmation(txid: string | null): Promise<ConfirmationDetails | null> {
    this.confirmationCalls++;
    return Promise.resolve(txid ? this.confirmations.get(txid) ?? null : null);
  }
  registerSpend(
    outpoint: { txid: string; vout: number },
    _pkScript: Uint8Array,
    heightHint: number,
  ): Promise<SpendDetails | null> {
    const op = `${outpoint.txid}:${outpoint.vout}`;
    this.spendCalls.push({ outpoint: op, heightHint });
    if (this.spendError) {
      return Promise.reject(new LndError("ChainNotifier.RegisterSpendNtfn", "unavailable", this.spendError));
    }
    return Promise.resolve(this.spends.get(op) ?? null);
  }
  /** Signs each descriptor through @scure/btc-signer's PSBT tapscript signing (its own sighash code). */
  async signOutputRaw(tx: Uint8Array, descs: SignDescriptor[], prev: TxOut[]): Promise<Uint8Array[]> {
    this.signCalls.push({ tx, descs, prev });
    const hook = this.duringSign;
    this.duringSign = undefined;
    await hook?.();
    return descs.map((d) => {
      const loc = d.keyDesc.keyLocator;
      const priv = standInPrivateKey(loc.family, this.signWithWrongKey ? loc.index + 1 : loc.index);
      const t = Transaction.fromRaw(tx, { allowUnknownOutputs: true, disableScriptCheck: true });
      const xonly = secp256k1.getPublicKey(priv, true).subarray(1);
      const leaf = this.signWithWrongKey
        ? Uint8Array.of(0x20, ...xonly, ...d.witnessScript!.subarray(33))
        : d.witnessScript!;
      t.updateInput(d.inputIndex, {
        witnessUtxo: { script: prev[d.inputIndex].pkScript, amount: prev[d.inputIndex].valueSat },
        tapLeafScript: [[
          { version: 0xc0, internalKey: xonly, merklePath: [] },
          Uint8Array.of(...leaf, 0xc0),
        ]],
      }, true);
      t.signIdx(priv, d.inputIndex);
      const sigs = t.getInput(d.inputIndex).tapScriptSig;
      if (!sigs?.length) throw new Error("stand-in: btc-signer produced no tapscript signature");
      return sigs[0][1];
    });
  }
}

function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** A static address whose client key is the stand-in's key (42060, 0). */
export function standInAddress(csvExpiry = 144, serverSeed = 3): Omit<StaticAddressRow, "id"> {
  const clientPubkey = secp256k1.getPublicKey(standInPrivateKey(42060, 0), true);
  const serverPriv = new Uint8Array(32);
  serverPriv[31] = serverSeed;
  const serverPubkey = secp256k1.getPublicKey(serverPriv, true);
  const a = staticAddress({ clientPubkey, serverPubkey, csvExpiry, network: "regtest" });
  return {
    clientPubkey,
    serverPubkey,
    expiry: csvExpiry,
    clientKeyFamily: 42060,
    clientKeyIndex: 0,
    pkScript: a.pkScript,
    protocolVersion: 0,
    initiationHeight: 1,
  };
}

/** A temp database with one stand-in static address; dispose to close and remove it. */
export async function tempDepositsDb(opts: { csvExpiry?: number; dir?: string } = {}): Promise<{
  db: Db;
  dir: string;
  address: Omit<StaticAddressRow, "id">;
  [Symbol.asyncDispose](): Promise<void>;
}> {
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "loopkit-deposits-" });
  const db = await openDb({ url: `file:${dir}/loopkit.db`, network: "regtest" });
  const address = standInAddress(opts.csvExpiry);
  await db.write((tx) => insertStaticAddress(tx, address));
  return {
    db,
    dir,
    address,
    async [Symbol.asyncDispose]() {
      db.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Display-hex txid number `n`. */
export const txidN = (n: number) => n.toString(16).padStart(64, "0");
