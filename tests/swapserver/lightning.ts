/**
 * An in-process Lightning stand-in for unit tests of the L402 flow: it issues REAL signed BOLT 11
 * invoices (bech32 from @scure/base, recoverable ECDSA from @noble/curves, BOLT 11 field layout)
 * and "pays" them by revealing the preimage it holds, with lnd's payment-state semantics
 * (SendPaymentV2 refuses a hash it already paid or is paying; TrackPaymentV2 answers NOT_FOUND for
 * an unknown hash).
 *
 * It is a test peer for core/l402 (the invoice source of the local swap server and the payer of
 * the client), not a mock of loopkit code. In regtest the invoice source is a real lnd.
 *
 * @module
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bech32, hex } from "@scure/base";
import { INVOICE_NETWORK_PREFIX } from "../../core/l402/bolt11.ts";
import type { NetworkName } from "../../core/staticaddr/network.ts";
import type { PaymentResult, PaymentStatus } from "../../lnd/types.ts";

/** What the local swap server needs to issue L402 challenges (bob's lnd `AddInvoice` in regtest). */
export interface InvoiceSource {
  /**
   * Creates an invoice.
   * @param amountSat amount, sat
   * @param memo description
   * @returns the BOLT 11 payment request and its 32-byte payment hash
   */
  addInvoice(amountSat: bigint, memo: string): Promise<{ paymentRequest: string; paymentHash: Uint8Array }>;
}

/** Fields of {@linkcode encodeInvoice}. */
export interface InvoiceFields {
  /** Network (decides the `ln…` prefix). */
  network: NetworkName;
  /** Amount, msat; omitted for an amount-less invoice. Must be a whole number of pico-BTC / 10. */
  amountMsat?: bigint;
  /** 32-byte payment hash (`p`). */
  paymentHash: Uint8Array;
  /** 32-byte payment secret (`s`); random when omitted. */
  paymentSecret?: Uint8Array;
  /** Description (`d`). */
  description?: string;
  /** Creation time, Unix seconds (default now). */
  timestampSec?: number;
  /** Expiry, seconds (`x`, default 3600). */
  expirySec?: number;
  /** Final CLTV delta (`c`, default 80). */
  minFinalCltvExpiry?: number;
  /** 32-byte node private key that signs the invoice. */
  nodeKey: Uint8Array;
  /** Feature bits of the `9` field (default lnd's: 8 and 14 required, 17 optional). */
  featureBits?: number[];
  /** Which standard fields to write, in order (default `["p", "s", "d", "x", "c", "9"]`). */
  fieldOrder?: ("p" | "s" | "d" | "x" | "c" | "9")[];
  /** Extra raw tagged fields appended after the standard ones (for malformed-invoice tests). */
  extraFields?: { tag: number; words: number[] }[];
}

const TAG = { p: 1, s: 16, d: 13, x: 6, c: 24, features: 5 } as const;

function uintWords(value: number, minWords = 1): number[] {
  const out: number[] = [];
  let v = value;
  do {
    out.unshift(v % 32);
    v = Math.floor(v / 32);
  } while (v > 0);
  while (out.length < minWords) out.unshift(0);
  return out;
}

function tagged(tag: number, words: number[]): number[] {
  if (words.length >= 1024) throw new RangeError(`tagged field ${tag} too long`);
  return [tag, words.length >> 5, words.length & 31, ...words];
}

/** Shortest BOLT 11 amount string for `msat` (p = 0.1 msat units, so msat × 10 pico-BTC). */
function amountString(msat: bigint): string {
  // 1 BTC = 1e11 msat. Multipliers: m = 1e-3 BTC = 1e8 msat, u = 1e5 msat, n = 100 msat, p = 0.1 msat.
  if (msat <= 0n) throw new RangeError(`invoice amount ${msat} msat must be positive`);
  if (msat % 100_000_000n === 0n) return `${msat / 100_000_000n}m`;
  if (msat % 100_000n === 0n) return `${msat / 100_000n}u`;
  if (msat % 100n === 0n) return `${msat / 100n}n`;
  return `${msat * 10n}p`;
}

/** Feature bits lnd sets on invoices: var_onion_optin (8), payment_secret (14) required, basic_mpp (17) optional. */
const LND_FEATURE_BITS = [8, 14, 17];

function featureWords(bits: number[]): number[] {
  const top = Math.max(...bits);
  const n = Math.floor(top / 5) + 1;
  const words = new Array<number>(n).fill(0);
  for (const b of bits) words[n - 1 - Math.floor(b / 5)] |= 1 << (b % 5);
  return words;
}

/**
 * Encodes and signs a BOLT 11 invoice: `hrp = "ln" + network prefix + amount`, data = 35-bit
 * timestamp ‖ tagged fields ‖ 65-byte signature (r ‖ s ‖ recovery id) over
 * `SHA-256(hrp bytes ‖ data bytes)`.
 *
 * @param f the fields
 * @returns the payment request, lower case
 */
export function encodeInvoice(f: InvoiceFields): string {
  if (f.paymentHash.length !== 32) throw new RangeError("payment hash must be 32 bytes");
  const hrp = `ln${INVOICE_NETWORK_PREFIX[f.network]}${
    f.amountMsat === undefined ? "" : amountString(f.amountMsat)
  }`;
  const ts = f.timestampSec ?? Math.floor(Date.now() / 1000);
  const words: number[] = [...uintWords(ts, 7)];
  if (words.length !== 7) throw new RangeError("timestamp does not fit 35 bits");
  const secret = f.paymentSecret ?? crypto.getRandomValues(new Uint8Array(32));
  for (const field of f.fieldOrder ?? ["p", "s", "d", "x", "c", "9"]) {
    switch (field) {
      case "p":
        words.push(...tagged(TAG.p, bech32.toWords(f.paymentHash)));
        break;
      case "s":
        words.push(...tagged(TAG.s, bech32.toWords(secret)));
        break;
      case "d":
        words.push(...tagged(TAG.d, bech32.toWords(new TextEncoder().encode(f.description ?? ""))));
        break;
      case "x":
        words.push(...tagged(TAG.x, uintWords(f.expirySec ?? 3600)));
        break;
      case "c":
        words.push(...tagged(TAG.c, uintWords(f.minFinalCltvExpiry ?? 80)));
        break;
      case "9":
        words.push(...tagged(TAG.features, featureWords(f.featureBits ?? LND_FEATURE_BITS)));
        break;
    }
  }
  for (const x of f.extraFields ?? []) words.push(...tagged(x.tag, x.words));
  const dataBytes = wordsToBytesPadded(words);
  const message = new Uint8Array([...new TextEncoder().encode(hrp), ...dataBytes]);
  const recovered = secp256k1.sign(message, f.nodeKey, { prehash: true, format: "recovered", lowS: true });
  const sig = new Uint8Array(65);
  sig.set(recovered.subarray(1), 0);
  sig[64] = recovered[0];
  return bech32.encode(hrp, [...words, ...bech32.toWords(sig)], false);
}

/** 5-bit words to bytes, zero-padding the last byte (BOLT 11 signing data). */
function wordsToBytesPadded(words: number[]): Uint8Array {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const w of words) {
    acc = (acc << 5) | w;
    bits += 5;
    while (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out.push((acc << (8 - bits)) & 0xff);
  return Uint8Array.from(out);
}

/**
 * Recovers the signing node key of a BOLT 11 invoice (for tests that check {@linkcode encodeInvoice}
 * signs what BOLT 11 says).
 *
 * @param invoice the payment request
 * @returns the 33-byte compressed node key
 */
export function recoverInvoicePayee(invoice: string): Uint8Array {
  const { prefix, words } = bech32.decode(invoice as `${string}1${string}`, false);
  const data = words.slice(0, -104);
  const sig = bech32.fromWords(words.slice(-104));
  const message = new Uint8Array([...new TextEncoder().encode(prefix), ...wordsToBytesPadded(data)]);
  const recovered = new Uint8Array(65);
  recovered[0] = sig[64];
  recovered.set(sig.subarray(0, 64), 1);
  return secp256k1.recoverPublicKey(recovered, message, { prehash: true });
}

/** An invoice held by {@linkcode InProcessLightning}. */
export interface HeldInvoice {
  paymentRequest: string;
  paymentHash: Uint8Array;
  preimage: Uint8Array;
  amountMsat: bigint;
  memo: string;
}

/** A payment made by an {@linkcode InProcessPayer}, as lnd's control tower would record it. */
interface PaymentRecord {
  status: PaymentStatus;
  preimage?: Uint8Array;
  valueMsat: bigint;
  feeMsat: bigint;
}

/** An error shaped like lnd's gRPC errors as `lnd/grpc_client.ts` reports them. */
export class FakeLndPaymentError extends Error {
  constructor(readonly grpcCode: number, readonly details: string) {
    super(`lnd Router payment failed: ${details}`);
    this.name = "FakeLndPaymentError";
  }
}

/** How a scripted {@linkcode InProcessPayer.sendPaymentV2} ends. */
export type SendOutcome = "succeed" | "fail" | "in_flight" | "throw";

/**
 * The invoice side: a node key and the preimages of the invoices it issued.
 */
export class InProcessLightning implements InvoiceSource {
  /** Network of the invoices. */
  readonly network: NetworkName;
  /** 32-byte node private key. */
  readonly nodeKey: Uint8Array;
  /** 33-byte node public key (the invoices' payee). */
  readonly nodePubkey: Uint8Array;
  /** Every invoice issued, by payment-hash hex. */
  readonly invoices = new Map<string, HeldInvoice>();

  /**
   * @param network the invoices' network
   * @param nodeKey 32-byte private key (default: random)
   */
  constructor(network: NetworkName, nodeKey?: Uint8Array) {
    this.network = network;
    this.nodeKey = nodeKey ?? secp256k1.utils.randomSecretKey();
    this.nodePubkey = secp256k1.getPublicKey(this.nodeKey, true);
  }

  /** Issues an invoice with a fresh random preimage. */
  addInvoice(amountSat: bigint, memo: string): Promise<{ paymentRequest: string; paymentHash: Uint8Array }> {
    const preimage = crypto.getRandomValues(new Uint8Array(32));
    const paymentHash = sha256(preimage);
    const amountMsat = amountSat * 1000n;
    const paymentRequest = encodeInvoice({
      network: this.network,
      amountMsat,
      paymentHash,
      description: memo,
      nodeKey: this.nodeKey,
    });
    this.invoices.set(hex.encode(paymentHash), { paymentRequest, paymentHash, preimage, amountMsat, memo });
    return Promise.resolve({ paymentRequest, paymentHash });
  }

  /** A payer that pays this node's invoices (a fresh control tower per payer). */
  payer(): InProcessPayer {
    return new InProcessPayer(this);
  }
}

/**
 * The paying side (lnd's `SendPaymentV2` / `TrackPaymentV2`), for invoices of one
 * {@linkcode InProcessLightning}; satisfies `L402Payer` (core/l402/client.ts). Behaviour is
 * scriptable per test.
 */
export class InProcessPayer {
  readonly #ln: InProcessLightning;
  readonly #payments = new Map<string, PaymentRecord>();
  /** Invoices passed to `sendPaymentV2`, in order (including refused ones). */
  readonly sendCalls: { invoice: string; feeLimitSat: bigint; timeoutSec: number }[] = [];
  /** Hashes passed to `trackPaymentV2` (hex), in order. */
  readonly trackCalls: string[] = [];
  /** Called at the start of every `sendPaymentV2`, before anything else (may throw). */
  onSend?: (invoice: string) => void | Promise<void>;
  /** Outcome of the next `sendPaymentV2` calls (default "succeed"). */
  sendOutcome: SendOutcome = "succeed";
  /** Routing fee reported for successful payments, msat. */
  feeMsat = 1000n;

  constructor(ln: InProcessLightning) {
    this.#ln = ln;
  }

  /** Number of invoices actually paid (SUCCEEDED). */
  get paidCount(): number {
    let n = 0;
    for (const p of this.#payments.values()) if (p.status === "SUCCEEDED") n++;
    return n;
  }

  /** Sets (or replaces) the recorded state of a payment, as if lnd had recorded it earlier. */
  recordPayment(paymentHash: Uint8Array, status: PaymentStatus): void {
    const held = this.#ln.invoices.get(hex.encode(paymentHash));
    this.#payments.set(hex.encode(paymentHash), {
      status,
      preimage: status === "SUCCEEDED" ? held?.preimage : undefined,
      valueMsat: held?.amountMsat ?? 0n,
      feeMsat: status === "SUCCEEDED" ? this.feeMsat : 0n,
    });
  }

  /** Pays an invoice of the linked node: SUCCEEDED with its preimage unless scripted otherwise. */
  async sendPaymentV2(invoice: string, feeLimitSat: bigint, timeoutSec: number): Promise<PaymentResult> {
    this.sendCalls.push({ invoice, feeLimitSat, timeoutSec });
    await this.onSend?.(invoice);
    const held = [...this.#ln.invoices.values()].find((i) => i.paymentRequest === invoice);
    if (!held) throw new FakeLndPaymentError(2, "invoice not known to the in-process node");
    const key = hex.encode(held.paymentHash);
    const existing = this.#payments.get(key);
    if (existing?.status === "SUCCEEDED") throw new FakeLndPaymentError(6, "invoice is already paid");
    if (existing?.status === "IN_FLIGHT") throw new FakeLndPaymentError(6, "payment is in transition");
    switch (this.sendOutcome) {
      case "throw":
        throw new FakeLndPaymentError(2, "unable to find a path to destination");
      case "fail":
        this.recordPayment(held.paymentHash, "FAILED");
        break;
      case "in_flight":
        this.recordPayment(held.paymentHash, "IN_FLIGHT");
        break;
      default:
        this.recordPayment(held.paymentHash, "SUCCEEDED");
    }
    return this.#result(key);
  }

  /** Reports the recorded state; NOT_FOUND (code 5) for a payment never made. */
  trackPaymentV2(paymentHash: Uint8Array, _opts?: { timeoutMs?: number }): Promise<PaymentResult> {
    const key = hex.encode(paymentHash);
    this.trackCalls.push(key);
    if (!this.#payments.has(key)) {
      return Promise.reject(new FakeLndPaymentError(5, "payment isn't initiated"));
    }
    return Promise.resolve(this.#result(key));
  }

  #result(key: string): PaymentResult {
    const p = this.#payments.get(key)!;
    const out: PaymentResult = {
      paymentHash: key,
      status: p.status,
      feeMsat: p.feeMsat,
      valueMsat: p.valueMsat,
      failureReason: p.status === "FAILED" ? "FAILURE_REASON_NO_ROUTE" : "FAILURE_REASON_NONE",
    };
    if (p.preimage) out.preimage = p.preimage;
    return out;
  }
}
