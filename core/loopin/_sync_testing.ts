/**
 * In-process fakes for sync_test.ts: an lnd that answers the calls `loopin sync` makes from settable state
 * (invoices, confirmations, spends, a real ECDSA signer for the HTLC key), a swap server that delivers queued
 * notifications and records pushes, and a helper that stores a swap armed in `MonitorInvoiceAndHtlcTx` with
 * real HTLC transactions. Not part of the public surface.
 *
 * @module
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { Transaction } from "@scure/btc-signer";
import type {
  ConfirmationDetails,
  InvoiceInfo,
  InvoiceState,
  LndInfo,
  MuSig2Session,
  SignDescriptor,
  SpendDetails,
  TxOut,
  Utxo,
} from "../../lnd/types.ts";
import { LndError } from "../../lnd/lnd_error.ts";
import type { ServerNotification } from "../swapserver/client.ts";
import type {
  PushStaticAddressHtlcSigsRequest,
  PushStaticAddressSweeplessSigsRequest,
} from "../swapserver/client.ts";
import { standInPrivateKey } from "../deposits/_testing.ts";
import { htlcP2wshPkScript, htlcV2Script } from "./htlc.ts";
import { buildHtlcTx, htlcFeeCapSat } from "./htlc_tx.ts";
import { HTLC_VARIANTS, type HtlcVariant } from "./types.ts";
import type { SyncLoopInLnd, SyncLoopInServer } from "./sync.ts";
import { LoopInSwapStore } from "./store.ts";
import { newSwap, tempLoopInDb } from "./_store_testing.ts";

/** The server's HTLC key in the tests. */
export const SERVER_HTLC_PUBKEY = secp256k1.getPublicKey(new Uint8Array(32).fill(0x42), true);

/** An lnd error like the gRPC client raises for an unreachable lnd. */
export const unavailable = (rpc: string) =>
  new LndError(rpc, "unavailable", "connection refused", { code: "lnd_unreachable", exitCode: 75 });

/** Fake lnd for `loopin sync`. */
export class FakeSyncLnd implements SyncLoopInLnd {
  tip = 300;
  invoices = new Map<string, InvoiceState | null>();
  /** CancelInvoice fails with this error (once per set). */
  cancelError: Error | null = null;
  /** Cancel moves OPEN/ACCEPTED to this state (default CANCELED; "OPEN" = lnd ignores the cancel). */
  cancelResult: InvoiceState = "CANCELED";
  /** Confirmation heights by txid. */
  confirmations = new Map<string, number>();
  /** Raw transactions by txid, given with their confirmation (lnd's `raw_tx`). */
  rawTxs = new Map<string, Uint8Array>();
  /** Spends by outpoint (RegisterSpendNtfn's answer; such an outpoint is not listed by ListUnspent either). */
  spends = new Map<string, SpendDetails>();
  /** lnd's wallet outputs (ListUnspent, unconfirmed included); `armedSwap` puts the swap's deposits here. */
  utxos: Utxo[] = [];
  /** Outpoints the wallet knows spent by an unconfirmed transaction: left out of ListUnspent, no spend event. */
  mempoolSpent = new Set<string>();
  /**
   * A slow lnd: its confirmation and spend answers arrive after the query's window (null, as the gRPC client
   * reports a stream it ended at `timeoutMs`), while request/response calls answer as usual.
   */
  slowChain = false;
  feeRate = 2_000n;
  published: Uint8Array[] = [];
  publishError: Error | null = null;
  /** GetInfo's `synced_to_chain`. */
  synced = true;
  /** Calls by method name, in order. */
  calls: string[] = [];
  /** Fail the next call of this method with an unreachable error. */
  failNext = new Set<string>();
  signCalls: SignDescriptor[][] = [];
  sessions: string[] = [];
  #sessionCount = 0;

  #enter(name: string): void {
    this.calls.push(name);
    if (this.failNext.has(name)) {
      this.failNext.delete(name);
      throw unavailable(name);
    }
  }

  getInfo(): Promise<LndInfo> {
    this.#enter("getInfo");
    return Promise.resolve({
      identityPubkey: "",
      blockHeight: this.tip,
      blockHash: "",
      chains: [{ chain: "bitcoin", network: "regtest" }],
      syncedToChain: this.synced,
      version: "test",
    });
  }
  lookupInvoice(h: Uint8Array): Promise<InvoiceInfo | null> {
    this.#enter("lookupInvoice");
    const state = this.invoices.get(hexOf(h));
    if (state === undefined || state === null) return Promise.resolve(null);
    return Promise.resolve({
      state,
      valueMsat: 1n,
      amtPaidMsat: 0n,
      settleDate: 0,
      paymentRequest: "lnbcrt1",
    });
  }
  cancelInvoice(h: Uint8Array): Promise<void> {
    this.#enter("cancelInvoice");
    if (this.cancelError) {
      const e = this.cancelError;
      this.cancelError = null;
      return Promise.reject(e);
    }
    const k = hexOf(h);
    const state = this.invoices.get(k);
    if (state === undefined || state === null) {
      return Promise.reject(
        new LndError("Invoices.CancelInvoice", "not_found", "not found", { code: "lnd_invoice_not_found" }),
      );
    }
    if (state === "SETTLED") {
      return Promise.reject(
        new LndError("Invoices.CancelInvoice", "failed_precondition", "settled", {
          code: "lnd_invoice_settled",
        }),
      );
    }
    this.invoices.set(k, this.cancelResult);
    return Promise.resolve();
  }
  registerConfirmation(
    txid: string | null,
    _pk: Uint8Array,
    _n: number,
    _hint: number,
  ): Promise<ConfirmationDetails | null> {
    this.#enter("registerConfirmation");
    if (this.slowChain) return Promise.resolve(null);
    const h = txid ? this.confirmations.get(txid) : undefined;
    if (h === undefined || h > this.tip) return Promise.resolve(null);
    return Promise.resolve({
      blockHeight: h,
      blockHash: "",
      txIndex: 0,
      rawTx: this.rawTxs.get(txid!) ?? new Uint8Array(),
    });
  }
  registerSpend(o: { txid: string; vout: number }): Promise<SpendDetails | null> {
    this.#enter("registerSpend");
    if (this.slowChain) return Promise.resolve(null);
    return Promise.resolve(this.spends.get(`${o.txid}:${o.vout}`) ?? null);
  }
  listUnspent(
    _min: number,
    _max: number,
    opts?: { account?: string; pkScripts?: readonly Uint8Array[] },
  ): Promise<Utxo[]> {
    this.#enter("listUnspent");
    const wanted = opts?.pkScripts?.map(hexOf);
    return Promise.resolve(this.utxos.filter((u) => {
      const op = `${u.txid}:${u.vout}`;
      if (this.spends.has(op) || this.mempoolSpent.has(op)) return false;
      return !wanted || wanted.includes(hexOf(u.pkScript));
    }));
  }
  signOutputRaw(tx: Uint8Array, descs: SignDescriptor[], _prev: TxOut[]): Promise<Uint8Array[]> {
    this.#enter("signOutputRaw");
    this.signCalls.push(descs);
    const t = Transaction.fromRaw(tx, {
      allowUnknownOutputs: true,
      allowUnknownInputs: true,
      disableScriptCheck: true,
    });
    return Promise.resolve(descs.map((d) => {
      const digest = t.preimageWitnessV0(d.inputIndex, d.witnessScript!, d.sighash, d.output.valueSat);
      const priv = standInPrivateKey(d.keyDesc.keyLocator.family, d.keyDesc.keyLocator.index);
      return secp256k1.sign(digest, priv, { prehash: false, lowS: true, format: "der" });
    }));
  }
  publishTransaction(tx: Uint8Array): Promise<void> {
    this.#enter("publishTransaction");
    this.published.push(tx);
    if (this.publishError) return Promise.reject(this.publishError);
    return Promise.resolve();
  }
  estimateFeeSatPerKw(): Promise<bigint> {
    this.#enter("estimateFeeSatPerKw");
    return Promise.resolve(this.feeRate);
  }
  muSig2CreateSession(): Promise<MuSig2Session> {
    this.#enter("muSig2CreateSession");
    const id = new Uint8Array(32).fill(++this.#sessionCount);
    this.sessions.push(`create ${id[0]}`);
    return Promise.resolve({
      sessionId: id,
      combinedKey: new Uint8Array(32),
      taprootInternalKey: new Uint8Array(32),
      localPublicNonces: new Uint8Array(66).fill(id[0]),
      haveAllNonces: false,
    } as MuSig2Session);
  }
  muSig2RegisterNonces(id: Uint8Array): Promise<boolean> {
    this.#enter("muSig2RegisterNonces");
    this.sessions.push(`nonces ${id[0]}`);
    return Promise.resolve(true);
  }
  muSig2Sign(id: Uint8Array): Promise<Uint8Array> {
    this.#enter("muSig2Sign");
    this.sessions.push(`sign ${id[0]}`);
    return Promise.resolve(new Uint8Array(32).fill(0x50 + id[0]));
  }
  muSig2Cleanup(id: Uint8Array): Promise<void> {
    this.#enter("muSig2Cleanup");
    this.sessions.push(`cleanup ${id[0]}`);
    return Promise.resolve();
  }
}

/** Fake swap server: queued notifications are delivered on subscribe, then the stream stays open until abort. */
export class FakeSyncServer implements SyncLoopInServer {
  queue: ServerNotification[] = [];
  subscriptions = 0;
  htlcPushes: PushStaticAddressHtlcSigsRequest[] = [];
  sweeplessPushes: PushStaticAddressSweeplessSigsRequest[] = [];
  /** Called after each delivered notification (to change lnd's state, e.g. settle the invoice). */
  afterDeliver?: (n: ServerNotification) => void;

  async subscribeNotifications(o: {
    signal: AbortSignal;
    onNotification: (n: ServerNotification) => void | Promise<void>;
  }): Promise<void> {
    this.subscriptions++;
    for (const n of this.queue) {
      if (o.signal.aborted) return;
      await o.onNotification(n);
      this.afterDeliver?.(n);
    }
    if (o.signal.aborted) return;
    await new Promise<void>((resolve) => o.signal.addEventListener("abort", () => resolve(), { once: true }));
  }
  pushStaticAddressHtlcSigs(r: PushStaticAddressHtlcSigsRequest): Promise<void> {
    this.htlcPushes.push(r);
    return Promise.resolve();
  }
  pushStaticAddressSweeplessSigs(r: PushStaticAddressSweeplessSigsRequest): Promise<void> {
    this.sweeplessPushes.push(r);
    return Promise.resolve();
  }
}

export function hexOf(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Fee rates of the three variants in the tests, sat/kw. */
export const FEE_RATES: Record<HtlcVariant, bigint> = { standard: 1_000n, high: 2_000n, extreme: 5_000n };

/** One armed swap of {@linkcode armedSwaps}. */
export interface ArmedSwapFixture {
  rec: ReturnType<typeof newSwap>;
  hash: Uint8Array;
  /** Its two deposit outpoints. */
  outpoints: string[];
  txids: Record<HtlcVariant, string>;
  txs: Record<HtlcVariant, Uint8Array>;
  htlcScript: Uint8Array;
  htlcPkScript: Uint8Array;
}

/**
 * A temp database with `n` swaps, each over two deposits (1 000 000 + 2 000 000 sat, confirmed at 100) with
 * 500 000 sat change, armed and in `MonitorInvoiceAndHtlcTx`, HTLC CLTV `cltv` (default 1200), their invoices
 * OPEN and their deposits listed unspent in the fake lnd.
 */
export async function armedSwaps(
  n: number,
  opts: { cltv?: number; now?: () => Date; depositConfHeight?: number; dir?: string } = {},
) {
  const t = await tempLoopInDb({
    amounts: Array.from({ length: 2 * n }, (_, i) => (i % 2 ? 2_000_000n : 1_000_000n)),
    confirmationHeight: opts.depositConfHeight,
    dir: opts.dir,
  });
  const now = opts.now ?? (() => new Date("2026-01-02T00:00:00Z"));
  const store = new LoopInSwapStore(t.db, { now });
  const cltv = opts.cltv ?? 1200;
  const lnd = new FakeSyncLnd();
  const depositHeight = opts.depositConfHeight ?? 100;
  const swaps: ArmedSwapFixture[] = [];
  for (let k = 0; k < n; k++) {
    const outpoints = t.outpoints.slice(2 * k, 2 * k + 2);
    const rec = newSwap(outpoints, 3_000_000n, k + 1, {
      swapAmountSat: 2_500_000n,
      selectedAmountSat: 2_500_000n,
    });
    await store.createSwap(rec);
    await store.setInvoice(rec.swapHash, "lnbcrt1");
    const script = htlcV2Script({
      senderPubkey: rec.htlcKey.rawKeyBytes,
      receiverPubkey: SERVER_HTLC_PUBKEY,
      swapHash: rec.swapHash,
      cltvExpiry: cltv,
    });
    const htlcPkScript = htlcP2wshPkScript(script);
    const txs = {} as Record<HtlcVariant, Uint8Array>;
    const txids = {} as Record<HtlcVariant, string>;
    for (const v of HTLC_VARIANTS) {
      const b = buildHtlcTx({
        deposits: [
          { txid: outpoints[0].split(":")[0], vout: 0, valueSat: 1_000_000n },
          { txid: outpoints[1].split(":")[0], vout: 0, valueSat: 2_000_000n },
        ],
        swapAmountSat: 2_500_000n,
        changeSat: 500_000n,
        feeRateSatPerKw: FEE_RATES[v],
        htlcPkScript,
        staticPkScript: t.address.pkScript,
        maxFeeSat: htlcFeeCapSat(v, 2_500_000n),
      });
      txs[v] = b.tx;
      txids[v] = b.txid;
    }
    await store.recordServerParams(rec.swapHash, {
      htlcServerPubKey: SERVER_HTLC_PUBKEY,
      htlcExpiry: cltv,
      feeRates: FEE_RATES,
      htlcTxids: txids,
      htlcTxs: txs,
      timeoutSweepPkScript: Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(7)),
    });
    await store.markArmed(rec.swapHash);
    await store.transition(rec.swapHash, "SignHtlcTx", "OnHtlcTxSigned");
    await store.releaseOwner(rec.swapHash);
    lnd.invoices.set(hexOf(rec.swapHash), "OPEN");
    lnd.utxos.push(...outpoints.map((op, i) => ({
      txid: op.split(":")[0],
      vout: Number(op.split(":")[1]),
      amountSat: [1_000_000n, 2_000_000n][i],
      pkScript: t.address.pkScript,
      confirmations: depositHeight > 0 ? Math.max(0, lnd.tip - depositHeight + 1) : 0,
      address: "",
    })));
    swaps.push({ rec, hash: rec.swapHash, outpoints, txids, txs, htlcScript: script, htlcPkScript });
  }
  return { t, store, lnd, cltv, swaps };
}

/**
 * A temp database with two deposits (1 000 000 + 2 000 000 sat, confirmed at 100) and one swap over both with
 * 500 000 sat change, armed and in `MonitorInvoiceAndHtlcTx`, HTLC CLTV `cltv` (default 1200), its invoice OPEN
 * in the fake lnd. Returns the store, the swap hash and the three HTLC txids.
 */
export async function armedSwap(
  opts: { cltv?: number; now?: () => Date; depositConfHeight?: number; dir?: string } = {},
) {
  const { t, store, lnd, cltv, swaps: [s] } = await armedSwaps(1, opts);
  return {
    t,
    store,
    rec: s.rec,
    hash: s.hash,
    txids: s.txids,
    txs: s.txs,
    htlcScript: s.htlcScript,
    htlcPkScript: s.htlcPkScript,
    lnd,
    cltv,
  };
}
