/**
 * The local swap server's static loop-in: it plays Loop's server strictly (spec/static-loop-in-review.md §2),
 * with real keys, real MuSig2 (BIP-327 via @scure/btc-signer/musig2.js) and transactions it builds itself
 * from the spec (./scripts.ts). It shares no code with `core/loopin/` (project decision 7): two independent
 * implementations that must agree.
 *
 * What it does, per RPC:
 * - `LoopInTerms`, `LoopOutTerms`, `LoopInQuote` (fee = base + amount × ppm / 10⁶ + per extra deposit),
 *   `Probe` (recorded);
 * - `ServerStaticAddressLoopIn`: the static address must be one this server issued to the caller's L402
 *   token (pkScript recomputed from client key, server key and CSV expiry); every outpoint pays it, is
 *   unspent (the injected {@linkcode ChainSource}), is in no other live swap and has CSV runway; dust rules
 *   (spec §3.3); the BOLT 11 invoice is for the server's network, its hash is the swap hash and its amount
 *   is swap amount − swap fee; `htlc_expiry` = tip + delta; a fresh HTLC key; 3 × N MuSig2 sessions; fee
 *   rates clamped to the client's caps by the client's weight formula (spec §3.7, §4.3);
 * - `PushStaticAddressHtlcSigs`: an empty push abandons (deposits released, never paid); otherwise every
 *   client partial signature is verified, the server signs, aggregates, checks BIP-340 against the output
 *   key and keeps the three fully witnessed transactions; nothing is broadcast;
 * - then the risk decision on the notification stream and the payment through the injected
 *   {@linkcode InvoicePayer}; after payment a sweepless-sweep request, whose signatures are verified,
 *   aggregated and published through the chain source;
 * - `SubscribeNotifications`: every new subscription gets what is still pending for its token again.
 *
 * Misbehaviour knobs ({@linkcode LoopInKnobs}) drive the unhappy-path tests.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { equalBytes } from "@noble/curves/utils.js";
import { hex } from "@scure/base";
import { Transaction } from "@scure/btc-signer";
import { nonceAggregate, nonceGen, Session } from "@scure/btc-signer/musig2.js";
import { Buffer } from "node:buffer";
import { decodeInvoice } from "../../core/l402/bolt11.ts";
import type { NetworkName } from "../../core/staticaddr/network.ts";
import type { ChainSource } from "./chain.ts";
import {
  buildHtlcTx,
  type DepositPrevout,
  DUST_LIMIT_SAT,
  feeForWeight,
  htlcTxWeight,
  htlcV2Script,
  keySpendSighash,
  maxRateUnderCap,
  p2wshPkScript,
  parseOutpoint,
  type StaticAddressKeys,
  staticAddressKeys,
  txidBytes,
} from "./scripts.ts";
import { StatusError } from "./status.ts";

// deno-lint-ignore no-explicit-any
type Msg = Record<string, any>;

/** The three HTLC fee variants, in the order of the proto fields. */
export const HTLC_VARIANTS = ["standard", "high", "extreme"] as const;
/** One HTLC fee variant. */
export type HtlcVariant = typeof HTLC_VARIANTS[number];

/** Proto field of each variant (server response / client push). */
const VARIANT_FIELD: Record<HtlcVariant, { server: string; client: string; name: string }> = {
  standard: { server: "standardHtlcInfo", client: "standardHtlcInfo", name: "standard_htlc_info" },
  high: { server: "highFeeHtlcInfo", client: "highFeeHtlcInfo", name: "high_fee_htlc_info" },
  extreme: { server: "extremeFeeHtlcInfo", client: "extremeFeeHtlcInfo", name: "extreme_fee_htlc_info" },
};

/** Share of the swap amount the client allows as HTLC fee per variant (loopd defaults, spec §3.7). */
const FEE_CAP_DIVISOR: Record<HtlcVariant, bigint> = { standard: 5n, high: 2n, extreme: 2n };

/** The sweep request answer that means "ask again later" (spec §4.6 step 3). */
export const SWAP_NOT_FINISHED = "swap not finished yet";

/** Pays a BOLT 11 invoice (bob's lnd `SendPaymentV2` in regtest). */
export interface InvoicePayer {
  /**
   * Pays `invoice` and resolves to its 32-byte preimage.
   * @param timeoutSec payment timeout, seconds
   * @throws Error when the payment fails
   */
  pay(invoice: string, timeoutSec: number): Promise<Uint8Array>;
}

/** A static address the server issued, as the loop-in needs it. */
export interface IssuedAddress {
  clientKey: Uint8Array;
  serverKey: Uint8Array;
  /** BIP-32 index of the server key. */
  keyIndex: number;
  expiry: number;
}

/** Sweep-request misbehaviour. */
export type SweepMisbehaviour = "wrong_change" | "foreign_outpoint" | "bad_nonce";

/** Terms, fees and misbehaviour of the loop-in. All can be changed while running. */
export interface LoopInKnobs {
  /** `LoopInTerms` minimum, sat (default 50 000). Also enforced on quote and loop-in. */
  minSwapAmountSat: bigint;
  /** `LoopInTerms` maximum, sat (default 100 000 000). */
  maxSwapAmountSat: bigint;
  /** `LoopOutTerms` (answered for loopd's `loop terms`; loop-outs are not served). */
  loopOut: { minSwapAmountSat: bigint; maxSwapAmountSat: bigint; minCltvDelta: number; maxCltvDelta: number };
  /** Swap fee: fixed part, sat (default 1 000). */
  swapFeeBaseSat: bigint;
  /** Swap fee: proportional part, ppm of the swap amount, rounded down (default 1 000). */
  swapFeePpm: bigint;
  /** Swap fee per deposit beyond the first, sat (default 0). */
  swapFeePerExtraDepositSat: bigint;
  /** `htlc_expiry` = tip + this (default 1 000; any value, for the out-of-window tests). */
  htlcExpiryDelta: number;
  /** A confirmed deposit needs `confirmation height + CSV − tip ≥` this (default 1 050; 0 switches it off). */
  minDepositRunwayBlocks: number;
  /** HTLC fee rates, sat/kw, before clamping to the client's caps (defaults 1 000 / 5 000 / 20 000). */
  feeRates: Record<HtlcVariant, bigint>;
  /** Answer this variant's fee rate one sat/kw above the client's guard. */
  feeOverGuard?: HtlcVariant;
  /** Answer one nonce too few for this variant (or all). */
  shortNonces?: HtlcVariant | "all";
  /** Answer 65-byte nonces (first nonce of every variant). */
  nonce65?: boolean;
  /** Risk decision after the push: accept (default), reject, or none at all. */
  risk: "accept" | "reject" | "none";
  /** Send the risk decision at initiation (before the client signed) instead of after the push. */
  riskAtInit?: boolean;
  /** Pay the invoice (default), or never. */
  pay: "pay" | "never";
  /** Wait this long after the push before paying, ms (default 0). */
  payDelayMs: number;
  /** Publish this signed HTLC variant through the chain source instead of paying (also after a risk rejection). */
  publishHtlc?: HtlcVariant;
  /** Answer the push this long after processing it, ms (default 0). */
  pushAnswerDelayMs: number;
  /** Sweepless sweep after payment: sent automatically (default), or only by `requestSweep`. */
  sweep: "auto" | "manual";
  /** Sweep fee rate, sat/kw (default 1 000). */
  sweepFeeRate: bigint;
  /** Sweep-request misbehaviour. */
  sweepMisbehave?: SweepMisbehaviour;
}

/** Default knobs. */
export function defaultLoopInKnobs(): LoopInKnobs {
  return {
    minSwapAmountSat: 50_000n,
    maxSwapAmountSat: 100_000_000n,
    loopOut: {
      minSwapAmountSat: 250_000n,
      maxSwapAmountSat: 10_000_000n,
      minCltvDelta: 40,
      maxCltvDelta: 1000,
    },
    swapFeeBaseSat: 1_000n,
    swapFeePpm: 1_000n,
    swapFeePerExtraDepositSat: 0n,
    htlcExpiryDelta: 1000,
    minDepositRunwayBlocks: 1050,
    feeRates: { standard: 1_000n, high: 5_000n, extreme: 20_000n },
    risk: "accept",
    pay: "pay",
    payDelayMs: 0,
    pushAnswerDelayMs: 0,
    sweep: "auto",
    sweepFeeRate: 1_000n,
  };
}

/** Server-side state of a loop-in. */
export type LoopInSwapState =
  | "initiated"
  | "abandoned"
  | "signed"
  | "risk_rejected"
  | "paying"
  | "paid"
  | "payment_failed"
  | "htlc_published"
  | "swept";

/** A signed HTLC variant the server holds. */
export interface SignedHtlcTx {
  variant: HtlcVariant;
  /** sat/kw */
  feeRate: bigint;
  /** Display txid. */
  txid: string;
  /** Fully witnessed transaction. */
  rawTx: Uint8Array;
}

/** The sweepless sweep of a swap. */
export interface SweepRecord {
  /** pending: the server still wants signatures; published: done. */
  state: "pending" | "published";
  /** The sweep as sent (binary PSBT v0, inputs with their witness UTXOs). */
  psbt: Uint8Array;
  /** Display txid. */
  txid: string;
  /** Requests sent (each with fresh nonces). */
  requestsSent: number;
  /** The client answered "swap not finished yet"; the request is sent again on the next subscription. */
  askAgain: boolean;
  /** Published transaction, when state is published. */
  rawTx?: Uint8Array;
}

/** One row of the swap table. */
export interface LoopInSwap {
  swapHash: string;
  tokenId: string;
  state: LoopInSwapState;
  /** Display-txid outpoints in request order (= input order). */
  outpoints: string[];
  deposits: DepositPrevout[];
  address: IssuedAddress;
  staticPkScript: Uint8Array;
  totalSat: bigint;
  swapAmountSat: bigint;
  changeSat: bigint;
  swapFeeSat: bigint;
  invoice: string;
  /** The payment timeout the server applies (request value, 0 → 60 s). */
  paymentTimeoutSeconds: number;
  /** `payment_timeout_seconds` as sent. */
  requestedPaymentTimeoutSeconds: number;
  /** `amount` as sent (0 = all). */
  selectedAmountSat: bigint;
  /** `last_hop` as sent (empty or 33 bytes). */
  lastHop: Uint8Array;
  /** `user_agent` as sent. */
  userAgent: string;
  /** `fast` as sent. */
  fast: boolean;
  htlcClientKey: Uint8Array;
  htlcServerKey: Uint8Array;
  htlcServerKeyIndex: number;
  htlcExpiry: number;
  htlcScript: Uint8Array;
  htlcPkScript: Uint8Array;
  feeRates: Record<HtlcVariant, bigint>;
  /** Nonces as answered (possibly malformed under misbehaviour). */
  serverNonces: Record<HtlcVariant, Uint8Array[]>;
  signedHtlcTxs?: Record<HtlcVariant, SignedHtlcTx>;
  riskDecision?: "accepted" | "rejected";
  preimage?: Uint8Array;
  paymentError?: string;
  /** The payment timeout passed while unpaid: the deposits were released (the signatures are kept). */
  paymentTimedOut?: boolean;
  publishedHtlc?: { variant: HtlcVariant; txid: string };
  sweep?: SweepRecord;
}

/** What the loop-in part of the server saw and did. */
export interface LoopInRecords {
  probes: { tokenId: string; amtSat: bigint; target: Uint8Array; protocolVersion: number }[];
  quotes: { tokenId: string; amtSat: bigint; numDeposits: number; fast: boolean; swapFeeSat: bigint }[];
  /** Refused calls: method and the status details. */
  refusals: { method: string; code: number; details: string }[];
  subscriptions: { tokenId: string; version: number }[];
  notifications: { tokenId: string; kind: "risk_accepted" | "risk_rejected" | "sweep"; swapHash: string }[];
  /** Swap hashes of every abandon push received (also refused ones). */
  abandons: string[];
  /** Swap hashes whose HTLC signatures were accepted. */
  htlcSigned: string[];
  payments: { swapHash: string; ok: boolean; error?: string }[];
  htlcsPublished: { swapHash: string; variant: HtlcVariant; txid: string }[];
  sweepPushes: { swapHash: string; errorMessage: string }[];
  sweepsPublished: { swapHash: string; txid: string; rawTx: Uint8Array }[];
}

/** What the engine needs from the server around it. */
export interface LoopInContext {
  network: NetworkName;
  chain?: ChainSource;
  payer?: InvoicePayer;
  /** Static addresses issued to a token, in issue order. */
  addressesForToken(tokenId: string): IssuedAddress[];
  /** Private key of the static-address server key at a BIP-32 index. */
  staticServerPrivKey(index: number): Uint8Array;
  /** HTLC server key pair at a BIP-32 index (a separate branch). */
  htlcKey(index: number): { priv: Uint8Array; pub: Uint8Array };
  /** pkScript of the server wallet the sweepless sweep pays. */
  sweepPkScript: Uint8Array;
}

/** A MuSig2 context for one deposit of one static address. */
interface MuSigKeys {
  keys: StaticAddressKeys;
  serverPriv: Uint8Array;
  serverPub: Uint8Array;
  /** Index of the client key in the sorted key list. */
  clientIdx: number;
}

interface SweepGeneration {
  /** Server public nonces per input index. */
  publicNonces: Uint8Array[];
  /** Secret nonces per input index (consumed once). */
  secretNonces: Uint8Array[];
}

const b = (v: unknown): Uint8Array => (v ? Uint8Array.from(v as Uint8Array) : new Uint8Array(0));
const invalid = (details: string) => new StatusError(grpc.status.INVALID_ARGUMENT, details);
const precondition = (details: string) => new StatusError(grpc.status.FAILED_PRECONDITION, details);

/**
 * The loop-in engine behind the gRPC handlers of the local swap server. Handlers take the decoded request
 * (proto-loader with loopkit's options) and the caller's token ID, and throw {@linkcode StatusError}.
 */
export class LoopInServer {
  /** Current knobs; change them with {@linkcode setKnobs}. */
  knobs: LoopInKnobs;
  /** The swap table by swap hash hex. */
  readonly swaps = new Map<string, LoopInSwap>();
  /** What happened. */
  readonly records: LoopInRecords = {
    probes: [],
    quotes: [],
    refusals: [],
    subscriptions: [],
    notifications: [],
    abandons: [],
    htlcSigned: [],
    payments: [],
    htlcsPublished: [],
    sweepPushes: [],
    sweepsPublished: [],
  };
  readonly #ctx: LoopInContext;
  /** outpoint → swap hash of the live swap holding it. */
  readonly #locks = new Map<string, string>();
  /** swap hash → variant → the server's nonce pairs per input (secret consumed at signing). */
  readonly #htlcSecrets = new Map<
    string,
    Record<HtlcVariant, { public: Uint8Array; secret: Uint8Array }[]>
  >();
  /** swap hash → outstanding sweep-request generations. */
  readonly #sweepGens = new Map<string, SweepGeneration[]>();
  readonly #subscribers = new Map<string, Set<grpc.ServerWritableStream<Msg, Msg>>>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #timers = new Set<{ id: ReturnType<typeof setTimeout>; reject: (e: Error) => void }>();
  #nextHtlcKey = 0;
  #stopped = false;

  constructor(ctx: LoopInContext, knobs?: Partial<LoopInKnobs>) {
    this.#ctx = ctx;
    this.knobs = { ...defaultLoopInKnobs(), ...knobs };
  }

  /** Merges knob changes (later calls see them). */
  setKnobs(k: Partial<LoopInKnobs>): void {
    this.knobs = { ...this.knobs, ...k };
  }

  /** The three signed HTLC transactions of a swap, or undefined before a successful push. */
  signedHtlcTxs(swapHash: Uint8Array | string): Record<HtlcVariant, SignedHtlcTx> | undefined {
    return this.swaps.get(typeof swapHash === "string" ? swapHash : hex.encode(swapHash))?.signedHtlcTxs;
  }

  /** The swap fee for `amountSat` over `numDeposits` deposits (spec §1.7 step 7; the server's own formula). */
  swapFee(amountSat: bigint, numDeposits: number): bigint {
    const k = this.knobs;
    return k.swapFeeBaseSat + (amountSat * k.swapFeePpm) / 1_000_000n +
      k.swapFeePerExtraDepositSat * BigInt(Math.max(0, numDeposits - 1));
  }

  /** Resolves once every background task (risk, payment, sweep) has finished. */
  async settled(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  /** Cancels timers and background tasks, ends the notification streams. */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) {
      clearTimeout(t.id);
      t.reject(new Error("swap server stopped"));
    }
    this.#timers.clear();
    for (const subs of this.#subscribers.values()) for (const c of subs) c.end();
    this.#subscribers.clear();
  }

  /** Records a refused call (called by the server's handler wrapper). */
  noteRefusal(method: string, err: unknown): void {
    if (err instanceof StatusError && err.details !== "payment required") {
      this.records.refusals.push({ method, code: err.code, details: err.details });
    }
  }

  // ---- terms, quote, probe -----------------------------------------------------------------

  loopInTerms(_req: Msg): Msg {
    return {
      minSwapAmount: this.knobs.minSwapAmountSat.toString(),
      maxSwapAmount: this.knobs.maxSwapAmountSat.toString(),
    };
  }

  loopOutTerms(_req: Msg): Msg {
    const o = this.knobs.loopOut;
    return {
      minSwapAmount: o.minSwapAmountSat.toString(),
      maxSwapAmount: o.maxSwapAmountSat.toString(),
      minCltvDelta: o.minCltvDelta,
      maxCltvDelta: o.maxCltvDelta,
    };
  }

  loopInQuote(req: Msg, tokenId: string): Msg {
    const amt = BigInt(req.amt ?? "0");
    this.#checkTerms(amt);
    const n = Number(req.numStaticAddressDeposits ?? 0);
    const swapFeeSat = this.swapFee(amt, Math.max(1, n));
    this.records.quotes.push({ tokenId, amtSat: amt, numDeposits: n, fast: Boolean(req.fast), swapFeeSat });
    return { swapFee: swapFeeSat.toString(), cltvDelta: this.knobs.htlcExpiryDelta };
  }

  probe(req: Msg, tokenId: string): Msg {
    this.records.probes.push({
      tokenId,
      amtSat: BigInt(req.amt ?? "0"),
      target: b(req.target),
      protocolVersion: Number(req.protocolVersion ?? 0),
    });
    return {};
  }

  #checkTerms(amountSat: bigint): void {
    if (amountSat < this.knobs.minSwapAmountSat) {
      throw invalid(
        `swap amount ${amountSat} sat is below the minimum of ${this.knobs.minSwapAmountSat} sat`,
      );
    }
    if (amountSat > this.knobs.maxSwapAmountSat) {
      throw invalid(
        `swap amount ${amountSat} sat is above the maximum of ${this.knobs.maxSwapAmountSat} sat`,
      );
    }
  }

  // ---- notifications -----------------------------------------------------------------------

  /** A new `SubscribeNotifications` stream for `tokenId`: registers it and re-sends what is pending. */
  subscribe(call: grpc.ServerWritableStream<Msg, Msg>, tokenId: string): void {
    this.records.subscriptions.push({ tokenId, version: Number(call.request?.version ?? 0) });
    let subs = this.#subscribers.get(tokenId);
    if (!subs) this.#subscribers.set(tokenId, subs = new Set());
    subs.add(call);
    const drop = () => subs.delete(call);
    call.on("cancelled", drop);
    call.on("close", drop);
    call.on("error", drop);
    for (const swap of this.swaps.values()) {
      if (swap.tokenId !== tokenId) continue;
      const decisionPending = swap.riskDecision !== undefined &&
        (swap.state === "initiated" || swap.state === "signed" || swap.state === "paying" ||
          swap.state === "risk_rejected" || swap.state === "htlc_published");
      if (decisionPending) this.#sendRisk(swap, [call]);
      if (swap.sweep?.state === "pending") {
        swap.sweep.askAgain = false;
        this.#sendSweep(swap, [call]);
      }
    }
  }

  #send(tokenId: string, msg: Msg, to?: Iterable<grpc.ServerWritableStream<Msg, Msg>>): number {
    let n = 0;
    for (const c of to ?? this.#subscribers.get(tokenId) ?? []) {
      if (c.cancelled || c.writableEnded) continue;
      c.write(msg);
      n++;
    }
    return n;
  }

  #sendRisk(swap: LoopInSwap, to?: Iterable<grpc.ServerWritableStream<Msg, Msg>>): void {
    const accepted = swap.riskDecision === "accepted";
    const body = { swapHash: Buffer.from(hex.decode(swap.swapHash)) };
    const msg = accepted ? { staticLoopInRiskAccepted: body } : { staticLoopInRiskRejected: body };
    if (this.#send(swap.tokenId, msg, to) > 0) {
      this.records.notifications.push({
        tokenId: swap.tokenId,
        kind: accepted ? "risk_accepted" : "risk_rejected",
        swapHash: swap.swapHash,
      });
    }
  }

  // ---- ServerStaticAddressLoopIn -----------------------------------------------------------

  async serverStaticAddressLoopIn(req: Msg, tokenId: string): Promise<Msg> {
    const chain = this.#ctx.chain;
    if (!chain) throw precondition("the local swap server has no chain source: loop-ins are not served");
    const k = this.knobs;
    if (Number(req.protocolVersion ?? 0) !== 0) {
      throw invalid(`unsupported static address protocol version ${req.protocolVersion}`);
    }
    const swapHash = b(req.swapHash);
    if (swapHash.length !== 32) throw invalid(`swap_hash must be 32 bytes, got ${swapHash.length}`);
    const hashHex = hex.encode(swapHash);
    if (this.swaps.has(hashHex)) {
      throw new StatusError(grpc.status.ALREADY_EXISTS, `swap ${hashHex} already exists`);
    }
    const lastHop = b(req.lastHop);
    if (lastHop.length !== 0 && lastHop.length !== 33) {
      throw invalid(`last_hop must be 33 bytes, got ${lastHop.length}`);
    }
    const htlcClientKey = b(req.htlcClientPubKey);
    try {
      if (htlcClientKey.length !== 33) throw new Error(`${htlcClientKey.length} bytes`);
      secp256k1.Point.fromBytes(htlcClientKey).assertValidity();
    } catch (e) {
      throw invalid(`htlc_client_pub_key is not a compressed public key: ${(e as Error).message}`);
    }

    // Outpoints: well formed, distinct, not locked by another live swap.
    const outpoints: string[] = (req.depositOutpoints ?? []).map(String);
    if (outpoints.length === 0) throw invalid("deposit_outpoints is empty");
    const parsed = outpoints.map((op) => {
      try {
        return parseOutpoint(op);
      } catch (e) {
        throw invalid(`deposit_outpoints: ${(e as Error).message}`);
      }
    });
    const canonical = parsed.map((p) => `${p.txid}:${p.vout}`);
    if (new Set(canonical).size !== canonical.length) throw invalid("deposit_outpoints has duplicates");
    this.#checkUnlocked(canonical);

    // The static address: one this server issued to this token; every deposit pays it.
    const issued = this.#ctx.addressesForToken(tokenId).flatMap((a) => {
      try {
        return [{ address: a, keys: staticAddressKeys(a.clientKey, a.serverKey, a.expiry) }];
      } catch {
        return []; // a malformed key answered under misbehaviour
      }
    });
    if (issued.length === 0) throw precondition("no static address was issued to this L402 token");
    const tip = await chain.tipHeight();
    const deposits: DepositPrevout[] = [];
    let owner: (typeof issued)[number] | undefined;
    for (let i = 0; i < parsed.length; i++) {
      const op = canonical[i];
      const out = await chain.getTxOut(parsed[i].txid, parsed[i].vout);
      if (!out) throw precondition(`deposit ${op} is unknown or already spent`);
      const match = issued.find((a) => equalBytes(a.keys.pkScript, out.pkScript));
      if (!match) throw precondition(`deposit ${op} does not pay this token's static address`);
      if (owner && owner !== match) throw precondition(`deposit ${op} pays a different static address`);
      owner = match;
      if (out.confirmations > 0 && k.minDepositRunwayBlocks > 0) {
        const confHeight = tip - out.confirmations + 1;
        const left = confHeight + match.address.expiry - tip;
        if (left < k.minDepositRunwayBlocks) {
          throw precondition(
            `deposit ${op} expires in ${left} blocks, need at least ${k.minDepositRunwayBlocks} of CSV runway`,
          );
        }
      }
      deposits.push({ outpoint: op, ...parsed[i], valueSat: out.valueSat, pkScript: out.pkScript });
    }
    const { address, keys } = owner!;

    // Amounts and dust rules (spec §3.3), terms.
    const totalSat = deposits.reduce((s, d) => s + d.valueSat, 0n);
    const selected = BigInt(req.amount ?? "0");
    if (selected > 0n && selected < DUST_LIMIT_SAT) throw invalid(`amount ${selected} sat is dust`);
    if (totalSat < DUST_LIMIT_SAT) throw invalid(`total deposit value ${totalSat} sat is dust`);
    if (selected > totalSat) throw invalid(`amount ${selected} sat exceeds the deposits' ${totalSat} sat`);
    const swapAmountSat = selected === 0n ? totalSat : selected;
    const changeSat = totalSat - swapAmountSat;
    if (changeSat > 0n && changeSat < DUST_LIMIT_SAT) {
      throw invalid(`amount ${selected} sat leaves dust change ${changeSat} sat`);
    }
    this.#checkTerms(swapAmountSat);

    // Invoice: right network, hash = swap hash, amount = swap amount − swap fee.
    const invoice = String(req.swapInvoice ?? "");
    let decoded;
    try {
      decoded = decodeInvoice(invoice, this.#ctx.network);
    } catch (e) {
      throw invalid(`swap_invoice: ${(e as Error).message}`);
    }
    if (!equalBytes(decoded.paymentHash, swapHash)) {
      throw invalid("swap_invoice payment hash is not the swap hash");
    }
    const fees = new Set<bigint>([this.swapFee(swapAmountSat, deposits.length)]);
    for (const q of this.records.quotes) {
      if (
        q.tokenId === tokenId && q.amtSat === swapAmountSat && Math.max(1, q.numDeposits) === deposits.length
      ) {
        fees.add(q.swapFeeSat);
      }
    }
    const invoiceSat = decoded.amountMsat === null ? -1n : decoded.amountMsat / 1000n;
    const swapFeeSat = [...fees].find((f) => decoded.amountMsat === (swapAmountSat - f) * 1000n);
    if (swapFeeSat === undefined) {
      throw invalid(
        `swap_invoice amount ${
          decoded.amountMsat ?? "none"
        } msat is not swap amount ${swapAmountSat} sat − swap fee ${
          [...fees].join(" or ")
        } sat (${invoiceSat} sat)`,
      );
    }

    // HTLC: expiry, fresh server key, script.
    const htlcExpiry = tip + k.htlcExpiryDelta;
    const htlcServerKeyIndex = this.#nextHtlcKey++;
    const htlcServerKey = this.#ctx.htlcKey(htlcServerKeyIndex).pub;
    const htlcScript = htlcV2Script(htlcClientKey, htlcServerKey, swapHash, htlcExpiry);

    // Fee rates within the client's caps by the client's weight formula (spec §3.7, §4.3).
    const weight = htlcTxWeight(deposits.length, changeSat > 0n);
    const feeRates = {} as Record<HtlcVariant, bigint>;
    for (const v of HTLC_VARIANTS) {
      const guard = maxRateUnderCap(swapAmountSat / FEE_CAP_DIVISOR[v], weight);
      const keepDust = maxRateUnderCap(swapAmountSat - DUST_LIMIT_SAT, weight);
      let rate = k.feeRates[v];
      if (rate > guard) rate = guard;
      if (rate > keepDust) rate = keepDust;
      if (k.feeOverGuard === v) rate = guard + 1n;
      feeRates[v] = rate;
    }

    // 3 × N MuSig2 sessions: server nonces (BIP-327 NonceGen with the tweaked aggregate key).
    const mu = this.#muSigKeys(address, keys);
    const secrets = {} as Record<HtlcVariant, { public: Uint8Array; secret: Uint8Array }[]>;
    const serverNonces = {} as Record<HtlcVariant, Uint8Array[]>;
    const response: Msg = {
      htlcServerPubKey: Buffer.from(htlcServerKey),
      htlcExpiry,
    };
    for (const v of HTLC_VARIANTS) {
      const pairs = deposits.map(() => nonceGen(mu.serverPub, mu.serverPriv, keys.outputKeyXOnly));
      secrets[v] = pairs;
      let answered = pairs.map((p) => p.public);
      if (k.shortNonces === v || k.shortNonces === "all") answered = answered.slice(0, -1);
      if (k.nonce65 && answered.length > 0) answered = [answered[0].slice(0, 65), ...answered.slice(1)];
      serverNonces[v] = answered;
      response[VARIANT_FIELD[v].server] = {
        nonces: answered.map((n) => Buffer.from(n)),
        feeRate: feeRates[v].toString(),
      };
    }

    // Lock (re-checked synchronously after the awaits above) and store.
    this.#checkUnlocked(canonical);
    const swap: LoopInSwap = {
      swapHash: hashHex,
      tokenId,
      state: "initiated",
      outpoints: canonical,
      deposits,
      address,
      staticPkScript: keys.pkScript,
      totalSat,
      swapAmountSat,
      changeSat,
      swapFeeSat,
      invoice,
      paymentTimeoutSeconds: Number(req.paymentTimeoutSeconds ?? 0) || 60,
      requestedPaymentTimeoutSeconds: Number(req.paymentTimeoutSeconds ?? 0),
      selectedAmountSat: selected,
      lastHop,
      userAgent: String(req.userAgent ?? ""),
      fast: Boolean(req.fast),
      htlcClientKey,
      htlcServerKey,
      htlcServerKeyIndex,
      htlcExpiry,
      htlcScript,
      htlcPkScript: p2wshPkScript(htlcScript),
      feeRates,
      serverNonces,
    };
    for (const op of canonical) this.#locks.set(op, hashHex);
    this.swaps.set(hashHex, swap);
    this.#htlcSecrets.set(hashHex, secrets);
    if (k.riskAtInit && k.risk !== "none") {
      swap.riskDecision = k.risk === "accept" ? "accepted" : "rejected";
      this.#sendRisk(swap);
    }
    return response;
  }

  #checkUnlocked(outpoints: string[]): void {
    for (const op of outpoints) {
      const holder = this.#locks.get(op);
      if (holder) throw precondition(`deposit ${op} is already used by swap ${holder}`);
    }
  }

  #release(swap: LoopInSwap): void {
    for (const op of swap.outpoints) if (this.#locks.get(op) === swap.swapHash) this.#locks.delete(op);
  }

  #muSigKeys(address: IssuedAddress, keys: StaticAddressKeys): MuSigKeys {
    const serverPriv = this.#ctx.staticServerPrivKey(address.keyIndex);
    const serverPub = secp256k1.getPublicKey(serverPriv, true);
    if (!equalBytes(serverPub, address.serverKey)) {
      throw new Error("static server key does not match its index");
    }
    const clientIdx = keys.sortedKeys.findIndex((key) => equalBytes(key, address.clientKey));
    return { keys, serverPriv, serverPub, clientIdx };
  }

  /** Client and server nonces in signer (sorted key) order. */
  #orderedNonces(mu: MuSigKeys, client: Uint8Array, server: Uint8Array): Uint8Array[] {
    return mu.clientIdx === 0 ? [client, server] : [server, client];
  }

  // ---- PushStaticAddressHtlcSigs -----------------------------------------------------------

  #ownedSwap(req: Msg, tokenId: string): LoopInSwap {
    const swapHash = b(req.swapHash);
    if (swapHash.length !== 32) throw invalid(`swap_hash must be 32 bytes, got ${swapHash.length}`);
    const swap = this.swaps.get(hex.encode(swapHash));
    if (!swap) throw new StatusError(grpc.status.NOT_FOUND, `swap ${hex.encode(swapHash)} not found`);
    if (swap.tokenId !== tokenId) {
      throw new StatusError(
        grpc.status.PERMISSION_DENIED,
        `swap ${swap.swapHash} belongs to another L402 token`,
      );
    }
    return swap;
  }

  async pushHtlcSigs(req: Msg, tokenId: string): Promise<Msg> {
    const swap = this.#ownedSwap(req, tokenId);
    const infos = HTLC_VARIANTS.map((v) => req[VARIANT_FIELD[v].client] as Msg | null | undefined);
    if (infos.every((i) => !i)) {
      this.records.abandons.push(swap.swapHash);
      if (swap.state === "initiated" || swap.state === "risk_rejected") {
        swap.state = "abandoned";
        this.#release(swap);
        this.#htlcSecrets.delete(swap.swapHash);
      } else if (swap.state !== "abandoned") {
        throw precondition(
          `swap ${swap.swapHash} is ${swap.state}: an abandon push cannot take back signatures`,
        );
      }
      return {};
    }
    if (swap.state !== "initiated") {
      throw precondition(`swap ${swap.swapHash} is ${swap.state}, not awaiting signatures`);
    }
    const secrets = this.#htlcSecrets.get(swap.swapHash);
    if (!secrets) throw precondition(`swap ${swap.swapHash} has no open signing sessions`);
    const n = swap.deposits.length;
    const mu = this.#muSigKeys(
      swap.address,
      staticAddressKeys(swap.address.clientKey, swap.address.serverKey, swap.address.expiry),
    );
    const prevouts = swap.deposits.map((d) => ({ pkScript: d.pkScript, valueSat: d.valueSat }));

    // 1. Shape and every client partial signature, before the server signs anything.
    const plans = HTLC_VARIANTS.map((v, vi) => {
      const name = VARIANT_FIELD[v].name;
      const info = infos[vi];
      if (!info) throw invalid(`${name} is missing`);
      const nonces: Uint8Array[] = (info.nonces ?? []).map(b);
      const sigs: Uint8Array[] = (info.sigs ?? []).map(b);
      if (nonces.length !== n) throw invalid(`${name}: ${nonces.length} nonces for ${n} deposits`);
      if (sigs.length !== n) throw invalid(`${name}: ${sigs.length} partial signatures for ${n} deposits`);
      const fee = feeForWeight(swap.feeRates[v], htlcTxWeight(n, swap.changeSat > 0n));
      const tx = buildHtlcTx({
        deposits: swap.deposits,
        htlcPkScript: swap.htlcPkScript,
        htlcValueSat: swap.swapAmountSat - fee,
        changeSat: swap.changeSat,
        staticPkScript: swap.staticPkScript,
      });
      const sessions = swap.deposits.map((d, i) => {
        const where = `${name} input ${i} (deposit ${d.outpoint})`;
        if (nonces[i].length !== 66) throw invalid(`${where}: nonce is ${nonces[i].length} bytes, want 66`);
        if (sigs[i].length !== 32) {
          throw invalid(`${where}: partial signature is ${sigs[i].length} bytes, want 32`);
        }
        const serverNonce = secrets[v][i].public;
        const ordered = this.#orderedNonces(mu, nonces[i], serverNonce);
        const sighash = keySpendSighash(tx, i, prevouts);
        let session: Session;
        let ok = false;
        try {
          session = new Session(nonceAggregate(ordered), mu.keys.sortedKeys, sighash, [mu.keys.tapTweak], [
            true,
          ]);
          ok = session.partialSigVerify(sigs[i], ordered, mu.clientIdx);
        } catch (e) {
          throw invalid(`${where}: cannot verify the partial signature: ${(e as Error).message}`);
        }
        if (!ok) throw invalid(`invalid partial signature for ${where}`);
        return { session: session!, sighash, clientSig: sigs[i] };
      });
      return { v, tx, sessions };
    });

    // 2. Sign, aggregate, check BIP-340 against the output key, witness.
    const signed = {} as Record<HtlcVariant, SignedHtlcTx>;
    for (const { v, tx, sessions } of plans) {
      sessions.forEach((s, i) => {
        const serverSig = s.session.sign(secrets[v][i].secret, mu.serverPriv);
        const psigs = mu.clientIdx === 0 ? [s.clientSig, serverSig] : [serverSig, s.clientSig];
        const sig = s.session.partialSigAgg(psigs);
        if (!schnorr.verify(sig, s.sighash, mu.keys.outputKeyXOnly)) {
          throw new StatusError(
            grpc.status.INTERNAL,
            `${VARIANT_FIELD[v].name} input ${i}: aggregate signature does not verify`,
          );
        }
        tx.updateInput(i, { finalScriptWitness: [sig] });
      });
      const rawTx = tx.extract();
      signed[v] = { variant: v, feeRate: swap.feeRates[v], txid: tx.id, rawTx };
    }
    this.#htlcSecrets.delete(swap.swapHash);
    swap.signedHtlcTxs = signed;
    swap.state = "signed";
    this.records.htlcSigned.push(swap.swapHash);
    this.#spawn(() => this.#afterPush(swap));
    if (this.knobs.pushAnswerDelayMs > 0) await this.#sleep(this.knobs.pushAnswerDelayMs);
    return {};
  }

  /**
   * Publishes one of a swap's signed HTLC variants through the chain source, at any time (e.g. after the
   * client's payment deadline). The swap's state becomes `htlc_published`; it is not paid afterwards.
   *
   * @returns the display txid the chain source reported
   * @throws Error for an unknown or unsigned swap, a missing chain source, or the chain's refusal
   */
  async publishHtlc(swapHash: Uint8Array | string, variant: HtlcVariant): Promise<string> {
    const hashHex = typeof swapHash === "string" ? swapHash : hex.encode(swapHash);
    const swap = this.swaps.get(hashHex);
    if (!swap?.signedHtlcTxs) throw new Error(`swap ${hashHex} has no signed HTLC transactions`);
    if (!this.#ctx.chain) throw new Error("no chain source configured");
    const txid = await this.#ctx.chain.publish(swap.signedHtlcTxs[variant].rawTx);
    swap.state = "htlc_published";
    swap.publishedHtlc = { variant, txid };
    this.records.htlcsPublished.push({ swapHash: hashHex, variant, txid });
    return txid;
  }

  async #afterPush(swap: LoopInSwap): Promise<void> {
    const k = this.knobs;
    if (!k.riskAtInit && k.risk !== "none") {
      swap.riskDecision = k.risk === "accept" ? "accepted" : "rejected";
      this.#sendRisk(swap);
    }
    if (k.publishHtlc) {
      // A server that publishes instead of paying (after accepting or rejecting the risk).
      await this.publishHtlc(swap.swapHash, k.publishHtlc);
      return;
    }
    if (swap.riskDecision === "rejected") {
      swap.state = "risk_rejected"; // never paid; the server keeps the signatures but releases the deposits
      this.#release(swap);
      return;
    }
    // Like a real server, stop holding the deposits once the payment timeout has passed unpaid (the
    // signatures stay with the server: `publishHtlc` can still publish a variant).
    this.#after(swap.paymentTimeoutSeconds * 1000, () => {
      if (swap.state === "signed" || swap.state === "paying") {
        swap.paymentTimedOut = true;
        this.#release(swap);
      }
    });
    if (k.pay === "never") return;
    if (!this.#ctx.payer) {
      swap.paymentError = "no invoice payer configured";
      this.records.payments.push({ swapHash: swap.swapHash, ok: false, error: swap.paymentError });
      return;
    }
    if (k.payDelayMs > 0) await this.#sleep(k.payDelayMs);
    swap.state = "paying";
    try {
      const preimage = await this.#ctx.payer.pay(swap.invoice, swap.paymentTimeoutSeconds);
      if (!equalBytes(sha256(preimage), hex.decode(swap.swapHash))) {
        throw new Error("payer returned a preimage that does not hash to the swap hash");
      }
      swap.preimage = preimage;
      swap.state = "paid";
      this.#release(swap);
      this.records.payments.push({ swapHash: swap.swapHash, ok: true });
    } catch (e) {
      swap.state = "payment_failed";
      this.#release(swap);
      swap.paymentError = (e as Error).message;
      this.records.payments.push({ swapHash: swap.swapHash, ok: false, error: swap.paymentError });
      return;
    }
    if (this.knobs.sweep === "auto") this.requestSweep(swap.swapHash);
  }

  // ---- sweepless sweep ---------------------------------------------------------------------

  /**
   * Builds (once) the sweepless sweep of a paid swap and sends a request with fresh nonces to the
   * token's current subscribers; it stays pending (re-sent on every new subscription) until published.
   *
   * @throws Error for an unknown swap or one that is not paid
   */
  requestSweep(swapHash: Uint8Array | string): void {
    const hashHex = typeof swapHash === "string" ? swapHash : hex.encode(swapHash);
    const swap = this.swaps.get(hashHex);
    if (!swap) throw new Error(`swap ${hashHex} not found`);
    if (swap.state !== "paid") throw new Error(`swap ${hashHex} is ${swap.state}, not paid`);
    if (!swap.sweep) {
      const tx = this.#buildSweep(swap);
      swap.sweep = {
        state: "pending",
        psbt: tx.toPSBT(0),
        txid: tx.id,
        requestsSent: 0,
        askAgain: false,
      };
    }
    if (swap.sweep.state === "pending") this.#sendSweep(swap);
  }

  #buildSweep(swap: LoopInSwap): Transaction {
    const k = this.knobs;
    const tx = new Transaction({ version: 2, lockTime: 0, allowUnknownOutputs: true });
    const inputs = [...swap.deposits];
    if (k.sweepMisbehave === "foreign_outpoint") {
      const txid = hex.encode(crypto.getRandomValues(new Uint8Array(32)));
      inputs.push({ outpoint: `${txid}:0`, txid, vout: 0, valueSat: 10_000n, pkScript: swap.staticPkScript });
    }
    for (const d of inputs) {
      tx.addInput({
        txid: d.txid,
        index: d.vout,
        sequence: 0xffff_fffd,
        witnessUtxo: { script: d.pkScript, amount: d.valueSat },
      });
    }
    const total = inputs.reduce((s, d) => s + d.valueSat, 0n);
    const change = swap.changeSat > 0n && k.sweepMisbehave === "wrong_change"
      ? swap.changeSat - 1n
      : swap.changeSat;
    const outs = change > 0n ? 2 : 1;
    const weight = htlcTxWeight(inputs.length, outs === 2); // same shape: N key spends, 1–2 outputs of 43 bytes
    const fee = feeForWeight(k.sweepFeeRate, weight);
    tx.addOutput({ script: this.#ctx.sweepPkScript, amount: total - change - fee });
    if (change > 0n) tx.addOutput({ script: swap.staticPkScript, amount: change });
    return tx;
  }

  #sendSweep(swap: LoopInSwap, to?: Iterable<grpc.ServerWritableStream<Msg, Msg>>): void {
    const sweep = swap.sweep!;
    const tx = Transaction.fromPSBT(sweep.psbt, { allowUnknownOutputs: true });
    const mu = this.#muSigKeys(
      swap.address,
      staticAddressKeys(swap.address.clientKey, swap.address.serverKey, swap.address.expiry),
    );
    const gen: SweepGeneration = { publicNonces: [], secretNonces: [] };
    const depositToNonces: Record<string, Buffer> = {};
    const prevoutInfo: Msg[] = [];
    for (let i = 0; i < tx.inputsLength; i++) {
      const inp = tx.getInput(i);
      const op = `${hex.encode(inp.txid!)}:${inp.index}`;
      const pair = nonceGen(mu.serverPub, mu.serverPriv, mu.keys.outputKeyXOnly);
      gen.publicNonces.push(pair.public);
      gen.secretNonces.push(pair.secret);
      let nonce = pair.public;
      if (this.knobs.sweepMisbehave === "bad_nonce" && i === 0) nonce = nonce.slice(0, 65);
      depositToNonces[op] = Buffer.from(nonce);
      const d = swap.deposits.find((x) => x.outpoint === op);
      prevoutInfo.push({
        value: (d?.valueSat ?? inp.witnessUtxo!.amount).toString(),
        pkScript: Buffer.from(d?.pkScript ?? inp.witnessUtxo!.script),
        txidBytes: Buffer.from(inp.txid!).reverse(),
        outputIndex: inp.index,
      });
    }
    const msg = {
      staticLoopInSweep: {
        sweepTxPsbt: Buffer.from(sweep.psbt),
        swapHash: Buffer.from(hex.decode(swap.swapHash)),
        depositToNonces,
        prevoutInfo,
      },
    };
    if (this.#send(swap.tokenId, msg, to) > 0) {
      let gens = this.#sweepGens.get(swap.swapHash);
      if (!gens) this.#sweepGens.set(swap.swapHash, gens = []);
      gens.push(gen);
      sweep.requestsSent++;
      this.records.notifications.push({ tokenId: swap.tokenId, kind: "sweep", swapHash: swap.swapHash });
    }
  }

  async pushSweeplessSigs(req: Msg, tokenId: string): Promise<Msg> {
    const swap = this.#ownedSwap(req, tokenId);
    const sweep = swap.sweep;
    if (!sweep) throw precondition(`swap ${swap.swapHash} has no sweep request`);
    const errorMessage = String(req.errorMessage ?? "");
    this.records.sweepPushes.push({ swapHash: swap.swapHash, errorMessage });
    const txid = b(req.txid);
    if (!equalBytes(txid, txidBytes(sweep.txid))) {
      throw invalid(
        `txid ${hex.encode(txid)} is not the sweep's ${hex.encode(txidBytes(sweep.txid))} (internal order)`,
      );
    }
    if (errorMessage !== "") {
      if (errorMessage === SWAP_NOT_FINISHED) sweep.askAgain = true;
      return {};
    }
    if (sweep.state === "published") return {};
    const tx = Transaction.fromPSBT(sweep.psbt, { allowUnknownOutputs: true });
    const info: Record<string, Msg> = req.signingInfo ?? {};
    const ops: string[] = [];
    for (let i = 0; i < tx.inputsLength; i++) {
      const inp = tx.getInput(i);
      ops.push(`${hex.encode(inp.txid!)}:${inp.index}`);
    }
    for (const key of Object.keys(info)) {
      if (!ops.includes(key)) throw invalid(`signing_info names ${key}, not an input of the sweep`);
    }
    const prevouts = ops.map((op, i) => {
      const d = swap.deposits.find((x) => x.outpoint === op);
      const w = tx.getInput(i).witnessUtxo!;
      return { pkScript: d?.pkScript ?? w.script, valueSat: d?.valueSat ?? w.amount };
    });
    const mu = this.#muSigKeys(
      swap.address,
      staticAddressKeys(swap.address.clientKey, swap.address.serverKey, swap.address.expiry),
    );
    const client = ops.map((op, i) => {
      const s = info[op];
      if (!s) throw invalid(`signing_info has no entry for sweep input ${i} (deposit ${op})`);
      const nonce = b(s.nonce);
      const sig = b(s.sig);
      if (nonce.length !== 66) {
        throw invalid(`sweep input ${i} (deposit ${op}): nonce is ${nonce.length} bytes, want 66`);
      }
      if (sig.length !== 32) {
        throw invalid(`sweep input ${i} (deposit ${op}): partial signature is ${sig.length} bytes, want 32`);
      }
      return { nonce, sig, sighash: keySpendSighash(tx, i, prevouts) };
    });
    const gens = this.#sweepGens.get(swap.swapHash) ?? [];
    let firstFailure = "no sweep request with server nonces is outstanding";
    for (let g = gens.length - 1; g >= 0; g--) {
      const gen = gens[g];
      const sessions: Session[] = [];
      let ok = true;
      for (let i = 0; i < client.length && ok; i++) {
        const ordered = this.#orderedNonces(mu, client[i].nonce, gen.publicNonces[i]);
        try {
          const s = new Session(nonceAggregate(ordered), mu.keys.sortedKeys, client[i].sighash, [
            mu.keys.tapTweak,
          ], [true]);
          ok = s.partialSigVerify(client[i].sig, ordered, mu.clientIdx);
          sessions.push(s);
        } catch (e) {
          ok = false;
          if (g === gens.length - 1) {
            firstFailure = `sweep input ${i} (deposit ${ops[i]}): ${(e as Error).message}`;
          }
        }
        if (!ok && g === gens.length - 1 && firstFailure.startsWith("no sweep")) {
          firstFailure = `invalid partial signature for sweep input ${i} (deposit ${ops[i]})`;
        }
      }
      if (!ok) continue;
      sessions.forEach((s, i) => {
        const serverSig = s.sign(gen.secretNonces[i], mu.serverPriv);
        const psigs = mu.clientIdx === 0 ? [client[i].sig, serverSig] : [serverSig, client[i].sig];
        const sig = s.partialSigAgg(psigs);
        if (!schnorr.verify(sig, client[i].sighash, mu.keys.outputKeyXOnly)) {
          throw new StatusError(
            grpc.status.INTERNAL,
            `sweep input ${i}: aggregate signature does not verify`,
          );
        }
        tx.updateInput(i, { finalScriptWitness: [sig] });
      });
      this.#sweepGens.delete(swap.swapHash);
      const rawTx = tx.extract();
      let published: string;
      try {
        published = await this.#ctx.chain!.publish(rawTx);
      } catch (e) {
        throw new StatusError(grpc.status.INTERNAL, `publishing the sweep failed: ${(e as Error).message}`);
      }
      sweep.state = "published";
      sweep.rawTx = rawTx;
      swap.state = "swept";
      this.records.sweepsPublished.push({ swapHash: swap.swapHash, txid: published, rawTx });
      return {};
    }
    throw invalid(firstFailure);
  }

  // ---- background ----------------------------------------------------------------------------

  #spawn(fn: () => Promise<void>): void {
    const p: Promise<void> = fn().catch((e) => {
      if (!this.#stopped) console.error(`local swap server: background task failed: ${(e as Error).message}`);
    }).finally(() => this.#tasks.delete(p));
    this.#tasks.add(p);
  }

  /** Runs `fn` after `ms` unless the server stops first (not a background task: `settled()` does not wait). */
  #after(ms: number, fn: () => void): void {
    if (this.#stopped) return;
    const t = {
      id: setTimeout(() => {
        this.#timers.delete(t);
        fn();
      }, ms),
      reject: () => {},
    };
    this.#timers.add(t);
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.reject(new Error("swap server stopped"));
    return new Promise((resolve, reject) => {
      const t = {
        id: setTimeout(() => {
          this.#timers.delete(t);
          resolve();
        }, ms),
        reject,
      };
      this.#timers.add(t);
    });
  }
}
