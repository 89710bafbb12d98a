/**
 * L402 pay-and-retry around a unary call (Aperture `l402.ClientInterceptor`, v0.4.0;
 * spec/static-loop-in.md §5.1–§5.3).
 *
 * Per call, serialised (one call at a time per client, and token acquisition under a lock file
 * shared by every loopkit process using the same store):
 * 1. read the current token; attach the credential only when it is paid;
 * 2. invoke; anything but "payment required" is returned as it is;
 * 3. obtain a paid token: a pending token is resolved by `TrackPaymentV2` (never paid twice:
 *    SUCCEEDED completes it, FAILED removes it and pays the current challenge, anything else is an
 *    error asking to retry or look at the file); without a token, the challenge is parsed, the
 *    invoice checked (network, amount ≤ max cost, payment hash = the macaroon's), the pending token
 *    written **before** paying, the invoice paid through lnd, the paid token stored;
 * 4. invoke again with the credential; a server that still refuses a paid token gives
 *    `l402_rejected` (a paid token is never replaced automatically).
 *
 * The credential is gRPC metadata `macaroon` = lower-case hex of the V2 macaroon with one added
 * first-party caveat `preimage=<hex>` (signature chained `HMAC(sig, caveat)`).
 *
 * Transport-neutral: the caller supplies an `invoke(credential, timeoutMs)` function and errors
 * shaped like gRPC status errors (`code`, `details`, `metadata.get()`), as `@grpc/grpc-js` throws.
 *
 * @module
 */
import { base64, hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { ExitCode, LoopkitError, tempFailure } from "../errors.ts";
import type { PaymentResult } from "../../lnd/types.ts";
import type { NetworkName } from "../staticaddr/network.ts";
import { decodeInvoice } from "./bolt11.ts";
import { decodeL402Identifier, type L402Identifier, tokenIdHex } from "./identifier.ts";
import { addFirstPartyCaveat, decodeMacaroonV2, encodeMacaroonV2, type Macaroon } from "./macaroon.ts";
import { type L402TokenStore, MANUAL_RETRY_HINT, paidTokenProblem, type StoredToken } from "./store.ts";

/** gRPC status `Unknown`. */
const GRPC_UNKNOWN = 2;
/** gRPC status `Internal`: what Aperture answers with "payment required". */
const GRPC_INTERNAL = 13;
/** gRPC status `PermissionDenied`. */
const GRPC_PERMISSION_DENIED = 7;
/** gRPC status `Unauthenticated`. */
const GRPC_UNAUTHENTICATED = 16;
/** gRPC status `AlreadyExists`. */
const GRPC_ALREADY_EXISTS = 6;
/** gRPC status `NotFound`: lnd's TrackPaymentV2 for a payment it never initiated ("payment isn't initiated"). */
const GRPC_NOT_FOUND = 5;

/** True for lnd's answer to TrackPaymentV2 of a payment hash it has never seen. */
export function isPaymentNotInitiated(err: unknown): boolean {
  const e = err as { grpcCode?: unknown; code?: unknown; details?: unknown; message?: unknown };
  if (e?.grpcCode === GRPC_NOT_FOUND) return true;
  return typeof e?.code === "number" && e.code === GRPC_NOT_FOUND;
}

/** Default maximum L402 price paid automatically, sat, routing fee excluded (Aperture `DefaultMaxCostSats`). */
export const DEFAULT_MAX_COST_SAT = 1000n;
/** Default maximum routing fee for the L402 payment, sat (Aperture `DefaultMaxRoutingFeeSats`). */
export const DEFAULT_MAX_ROUTING_FEE_SAT = 10n;
/** Limit for paying or tracking the L402 invoice, seconds (Aperture `PaymentTimeout`). */
export const DEFAULT_PAYMENT_TIMEOUT_SEC = 60;
/** Deadline of each server call, ms (Loop's swap-server call timeout). */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
/** gRPC metadata key that carries the credential. */
export const CREDENTIAL_METADATA_KEY = "macaroon";
/** gRPC metadata key of the challenge (HTTP `WWW-Authenticate`). */
export const CHALLENGE_METADATA_KEY = "www-authenticate";

/**
 * The challenge pattern: Aperture v0.4.0 sends `macaroon="…"`; newer Aperture also `token="…"`
 * and an optional `version="…", ` prefix. Both forms are accepted.
 */
const CHALLENGE_RE = /(LSAT|L402) (?:version="[^"]*", )?(?:token|macaroon)="([^"]+)", invoice="([^"]+)"/;

/** The lnd payment calls the client needs (a subset of {@linkcode LndClient}). */
export interface L402Payer {
  /** `routerrpc.Router/SendPaymentV2`; see `LndClient.sendPaymentV2`. */
  sendPaymentV2(invoice: string, feeLimitSat: bigint, timeoutSec: number): Promise<PaymentResult>;
  /** `routerrpc.Router/TrackPaymentV2`; see `LndClient.trackPaymentV2`. */
  trackPaymentV2(paymentHash: Uint8Array, opts?: { timeoutMs?: number }): Promise<PaymentResult>;
}

/** The credential attached to a call. */
export interface L402Credential {
  /** Metadata key, always {@linkcode CREDENTIAL_METADATA_KEY}. */
  key: typeof CREDENTIAL_METADATA_KEY;
  /** Lower-case hex of the V2 macaroon with its `preimage=` caveat. */
  value: string;
  /** Token ID (hex) of the token used. */
  tokenId: string;
}

/**
 * One attempt of the wrapped call.
 *
 * @param credential the credential to attach as metadata, or null for none
 * @param timeoutMs the deadline of this attempt
 * @throws a gRPC-status-shaped error (`code`, `details`, `metadata`) on failure
 */
export type L402Invoke<T> = (credential: L402Credential | null, timeoutMs: number) => Promise<T>;

/** Options of {@linkcode L402Client}. */
export interface L402ClientOptions {
  /** The token store (network data directory). */
  store: L402TokenStore;
  /** lnd's payment calls. */
  payer: L402Payer;
  /** Active network: the challenge invoice must be for it. */
  network: NetworkName;
  /** Maximum price paid automatically, sat (default {@linkcode DEFAULT_MAX_COST_SAT}). */
  maxCostSat?: bigint;
  /** Maximum routing fee, sat (default {@linkcode DEFAULT_MAX_ROUTING_FEE_SAT}). */
  maxRoutingFeeSat?: bigint;
  /** Payment / tracking limit, seconds (default {@linkcode DEFAULT_PAYMENT_TIMEOUT_SEC}). */
  paymentTimeoutSec?: number;
  /** Deadline per call attempt, ms (default {@linkcode DEFAULT_CALL_TIMEOUT_MS}). */
  callTimeoutMs?: number;
  /** Clock for the token creation time, Unix ns (default: now). */
  nowNs?: () => bigint;
}

/** What happened to the token during the last {@linkcode L402Client.call}. */
export type L402Acquisition =
  | "none"
  | "paid"
  | "completed_pending"
  | "replaced_failed_pending"
  | "replaced_unseen_pending";

/** A gRPC status error as `@grpc/grpc-js` throws it. */
interface StatusLike {
  code?: unknown;
  details?: unknown;
  message?: unknown;
  metadata?: { get(key: string): unknown[] };
}

function statusOf(err: unknown): StatusLike | null {
  return typeof err === "object" && err !== null ? err as StatusLike : null;
}

function detailsOf(err: unknown): string {
  const s = statusOf(err);
  if (s && typeof s.details === "string") return s.details;
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * True when `err` is Aperture's "payment required" answer: a gRPC status `Internal` (13) or
 * `Unknown` (2) whose lower-cased message contains `payment required` (spec §5.1).
 */
export function isPaymentRequired(err: unknown): boolean {
  const s = statusOf(err);
  if (!s || (s.code !== GRPC_INTERNAL && s.code !== GRPC_UNKNOWN)) return false;
  const msg = typeof s.details === "string" ? s.details : typeof s.message === "string" ? s.message : "";
  return msg.toLowerCase().includes("payment required");
}

/** A parsed L402 challenge. */
export interface L402Challenge {
  /** `LSAT` or `L402`. */
  scheme: "LSAT" | "L402";
  /** The base macaroon, V2 binary. */
  macaroonBytes: Uint8Array;
  /** The decoded base macaroon. */
  macaroon: Macaroon;
  /** Its L402 identifier. */
  identifier: L402Identifier;
  /** The BOLT 11 invoice. */
  invoice: string;
}

function challengeError(message: string, cause?: unknown): LoopkitError {
  return new LoopkitError("l402_bad_challenge", message, ExitCode.Failure, cause ? { cause } : undefined);
}

/**
 * Parses the challenge from the `www-authenticate` values of a "payment required" answer: the
 * first value matching `(LSAT|L402) macaroon="…", invoice="…"` (spec §5.1). Values joined by a
 * proxy or HTTP/2 library into one comma-separated line are handled (the first match wins).
 *
 * @param values the metadata values, in order
 * @returns the challenge with its macaroon and identifier decoded
 * @throws {LoopkitError} `l402_bad_challenge`: `auth header not found in response`,
 *   `invalid auth header format: <first value>`, bad base64, macaroon or identifier
 */
export function parseChallenge(values: readonly unknown[]): L402Challenge {
  const strings = values.map((v) => typeof v === "string" ? v : new TextDecoder().decode(v as Uint8Array));
  if (strings.length === 0) throw challengeError("L402: auth header not found in response");
  let m: RegExpExecArray | null = null;
  for (const s of strings) {
    m = CHALLENGE_RE.exec(s);
    if (m) break;
  }
  if (!m) throw challengeError(`L402: invalid auth header format: ${strings[0]}`);
  let macaroonBytes: Uint8Array;
  try {
    macaroonBytes = base64.decode(m[2]);
  } catch (e) {
    throw challengeError(`L402: base64 decode of macaroon failed: ${(e as Error).message}`, e);
  }
  let macaroon: Macaroon;
  let identifier: L402Identifier;
  try {
    macaroon = decodeMacaroonV2(macaroonBytes);
    identifier = decodeL402Identifier(macaroon.identifier);
  } catch (e) {
    throw challengeError(`L402: the challenge macaroon is invalid: ${(e as Error).message}`, e);
  }
  return { scheme: m[1] as "LSAT" | "L402", macaroonBytes, macaroon, identifier, invoice: m[3] };
}

/**
 * The credential for a paid token: the base macaroon plus the caveat `preimage=<hex>`, V2 binary,
 * lower-case hex (spec §5.2).
 *
 * @param token a paid token (macaroon bytes and 32-byte preimage)
 * @throws {LoopkitError} `l402_token_invalid` when the token is not paid or its macaroon does not decode
 */
export function credentialFor(token: { macaroonBytes: Uint8Array; preimage: Uint8Array }): L402Credential {
  if (token.preimage.length !== 32 || token.preimage.every((b) => b === 0)) {
    throw new LoopkitError("l402_token_invalid", "L402 token is not paid: its preimage is zero");
  }
  let base: Macaroon;
  try {
    base = decodeMacaroonV2(token.macaroonBytes);
  } catch (e) {
    throw new LoopkitError("l402_token_invalid", `L402 token macaroon is invalid: ${(e as Error).message}`);
  }
  const withPreimage = addFirstPartyCaveat(base, `preimage=${hex.encode(token.preimage)}`);
  return {
    key: CREDENTIAL_METADATA_KEY,
    value: hex.encode(encodeMacaroonV2(withPreimage)),
    tokenId: tokenIdHex(decodeL402Identifier(base.identifier).tokenId),
  };
}

function isAlreadyExists(err: unknown): boolean {
  const e = err as { grpcCode?: unknown; code?: unknown; details?: unknown; message?: unknown };
  if (e?.grpcCode === GRPC_ALREADY_EXISTS || e?.code === GRPC_ALREADY_EXISTS) return true;
  const text = `${typeof e?.details === "string" ? e.details : ""} ${
    typeof e?.message === "string" ? e.message : ""
  }`;
  return /already exists|already paid|payment is in transition/i.test(text);
}

function nowNsDefault(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/** A promise-chain mutex: one critical section at a time, in call order. */
class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.then(() => {}, () => {});
    return next;
  }
}

/**
 * L402 pay-and-retry client; one per swap-server connection.
 *
 * @example
 * ```ts ignore
 * const store = await L402TokenStore.open(`${loopDir}/regtest`);
 * const l402 = new L402Client({ store, payer: lnd, network: "regtest" });
 * const res = await l402.call("ServerNewAddress", (cred, timeoutMs) => grpcCall(req, cred, timeoutMs));
 * ```
 */
export class L402Client {
  readonly #store: L402TokenStore;
  readonly #payer: L402Payer;
  readonly #network: NetworkName;
  readonly #maxCostMsat: bigint;
  readonly #maxFeeSat: bigint;
  readonly #paymentTimeoutSec: number;
  readonly #callTimeoutMs: number;
  readonly #nowNs: () => bigint;
  readonly #mutex = new Mutex();
  #lastAcquisition: L402Acquisition = "none";

  /**
   * @param opts store, payer, network and limits
   * @throws {RangeError} for a negative max cost or fee, or a non-positive timeout
   */
  constructor(opts: L402ClientOptions) {
    const maxCost = opts.maxCostSat ?? DEFAULT_MAX_COST_SAT;
    const maxFee = opts.maxRoutingFeeSat ?? DEFAULT_MAX_ROUTING_FEE_SAT;
    if (maxCost < 0n) throw new RangeError(`L402: max cost ${maxCost} sat is negative`);
    if (maxFee < 0n) throw new RangeError(`L402: max routing fee ${maxFee} sat is negative`);
    const payTimeout = opts.paymentTimeoutSec ?? DEFAULT_PAYMENT_TIMEOUT_SEC;
    const callTimeout = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    if (!(Number.isInteger(payTimeout) && payTimeout > 0)) {
      throw new RangeError(`L402: payment timeout ${payTimeout} s is not a positive integer`);
    }
    if (!(callTimeout > 0)) throw new RangeError(`L402: call timeout ${callTimeout} ms is not positive`);
    this.#store = opts.store;
    this.#payer = opts.payer;
    this.#network = opts.network;
    this.#maxCostMsat = maxCost * 1000n;
    this.#maxFeeSat = maxFee;
    this.#paymentTimeoutSec = payTimeout;
    this.#callTimeoutMs = callTimeout;
    this.#nowNs = opts.nowNs ?? nowNsDefault;
  }

  /** The token store. */
  get store(): L402TokenStore {
    return this.#store;
  }

  /** What the last completed or failed {@linkcode call} did to the token (for logs and `--json`). */
  get lastAcquisition(): L402Acquisition {
    return this.#lastAcquisition;
  }

  /**
   * Runs one unary call with L402 pay-and-retry (spec §5.3). Calls on one client run one at a time.
   *
   * @param method the RPC name, for messages (e.g. `ServerNewAddress`)
   * @param invoke performs one attempt with the given credential and deadline
   * @returns the call's result
   * @throws the call's own error when it is not "payment required"; {@linkcode LoopkitError} with
   *   code `l402_cost_too_high` (nothing paid), `l402_bad_challenge`, `invoice_invalid` (nothing
   *   paid), `l402_payment_failed` (pending file kept; the next call tracks it),
   *   `l402_payment_pending` (exit 75: still in flight, run again), `l402_payment_unknown`
   *   (lnd cannot say what happened to the pending payment: look at the pending file),
   *   `l402_rejected` (the server refuses our paid token), `l402_token_invalid`,
   *   `l402_token_exists`, `l402_store_io`
   */
  call<T>(method: string, invoke: L402Invoke<T>): Promise<T> {
    return this.#mutex.run(() => this.#call(method, invoke));
  }

  async #call<T>(method: string, invoke: L402Invoke<T>): Promise<T> {
    this.#lastAcquisition = "none";
    const token = await this.#store.currentToken();
    const credential = token?.paid ? this.#credential(token) : null;
    let challenge: unknown;
    try {
      return await invoke(credential, this.#callTimeoutMs);
    } catch (err) {
      if (credential && this.#isRefusal(err)) throw this.#rejected(method, credential, token!, err);
      if (!isPaymentRequired(err)) throw err;
      challenge = err;
    }
    const paid = await this.#store.withLock(() => this.#obtainPaidToken(challenge));
    const credential2 = this.#credential(paid);
    try {
      return await invoke(credential2, this.#callTimeoutMs);
    } catch (err) {
      if (this.#isRefusal(err)) throw this.#rejected(method, credential2, paid, err);
      throw err;
    }
  }

  /** An answer meaning "this credential is not good enough". */
  #isRefusal(err: unknown): boolean {
    const code = statusOf(err)?.code;
    return isPaymentRequired(err) || code === GRPC_UNAUTHENTICATED || code === GRPC_PERMISSION_DENIED;
  }

  #rejected(method: string, cred: L402Credential, token: StoredToken, err: unknown): LoopkitError {
    return new LoopkitError(
      "l402_rejected",
      `The swap server refused the paid L402 token ${cred.tokenId} from "${token.path}" on ${method}: ${
        detailsOf(err)
      }. loopkit never replaces a paid token (the static address is bound to it): check that --swapserver ` +
        `is the server that issued it and that --network is right`,
      ExitCode.Failure,
      { cause: err },
    );
  }

  #credential(token: StoredToken): L402Credential {
    const problem = paidTokenProblem({
      paymentHash: token.paymentHash,
      preimage: token.preimage,
      identifierPaymentHash: token.identifier.paymentHash,
    });
    if (problem) {
      throw new LoopkitError(
        "l402_token_invalid",
        `L402 token file "${token.path}" cannot be used: ${problem}`,
      );
    }
    return credentialFor(token);
  }

  /** Steps 4 of spec §5.3, under the store lock. */
  async #obtainPaidToken(challengeErr: unknown): Promise<StoredToken> {
    // Re-read under the lock: another process may have finished meanwhile.
    const token = await this.#store.currentToken();
    if (token?.paid) return token;
    if (token) {
      const outcome = await this.#track(token);
      if (outcome !== "failed" && outcome !== "never_seen") {
        this.#lastAcquisition = "completed_pending";
        return outcome;
      }
      // FAILED is final; "never seen" means lnd has no payment for this hash at all, so the pending
      // token was never paid (e.g. lnd refused SendPaymentV2 for permissions): discard it safely.
      await this.#store.removePendingToken(token.bytes);
      const replaced = await this.#payChallenge(challengeErr);
      this.#lastAcquisition = outcome === "never_seen"
        ? "replaced_unseen_pending"
        : "replaced_failed_pending";
      return replaced;
    }
    const paid = await this.#payChallenge(challengeErr);
    this.#lastAcquisition = "paid";
    return paid;
  }

  /**
   * Resolves a pending token through TrackPaymentV2: the paid token, "failed", or "never_seen" when lnd
   * answers NOT_FOUND ("payment isn't initiated": lnd has no payment for this hash, so it was never
   * paid through this node and cannot settle later).
   */
  async #track(pending: StoredToken): Promise<StoredToken | "failed" | "never_seen"> {
    const hashHex = hex.encode(pending.paymentHash);
    let res: PaymentResult;
    try {
      res = await this.#payer.trackPaymentV2(pending.paymentHash, {
        timeoutMs: this.#paymentTimeoutSec * 1000,
      });
    } catch (err) {
      if (err instanceof LoopkitError && err.exitCode === ExitCode.TempFail) throw err;
      if (isPaymentNotInitiated(err)) return "never_seen";
      throw new LoopkitError(
        "l402_payment_unknown",
        `L402: payment tracking failed for pending token "${pending.path}" (payment hash ${hashHex}): ${
          detailsOf(err)
        }. ${MANUAL_RETRY_HINT}. Remove the pending file only if you are sure the invoice was never paid`,
        ExitCode.Failure,
        { cause: err },
      );
    }
    switch (res.status) {
      case "SUCCEEDED":
        return await this.#storePaid(pending, res);
      case "FAILED":
        return "failed";
      default:
        throw tempFailure(
          `L402: payment of pending token "${pending.path}" (payment hash ${hashHex}) is ${res.status} after ` +
            `${this.#paymentTimeoutSec} s; run again later to track it. ${MANUAL_RETRY_HINT}`,
          "l402_payment_pending",
        );
    }
  }

  /** Parses the challenge, checks it, writes the pending token, pays, stores the paid token. */
  async #payChallenge(challengeErr: unknown): Promise<StoredToken> {
    const values = statusOf(challengeErr)?.metadata?.get(
      CHALLENGE_METADATA_KEY,
    ) ?? [];
    const challenge = parseChallenge(values);
    const invoice = decodeInvoice(challenge.invoice, this.#network);
    if (invoice.amountMsat === null) {
      throw challengeError("L402: the challenge invoice has no amount; refusing to pay it");
    }
    if (invoice.amountMsat > this.#maxCostMsat) {
      throw new LoopkitError(
        "l402_cost_too_high",
        `cannot pay for L402 automatically, cost of ${invoice.amountMsat} msat exceeds configured max cost of ${this.#maxCostMsat} msat`,
        ExitCode.Failure,
      );
    }
    if (hex.encode(invoice.paymentHash) !== hex.encode(challenge.identifier.paymentHash)) {
      throw challengeError(
        `L402: the challenge invoice pays hash ${hex.encode(invoice.paymentHash)} but the macaroon is for ${
          hex.encode(challenge.identifier.paymentHash)
        }; refusing to pay it`,
      );
    }
    const fields = {
      macaroonBytes: challenge.macaroonBytes,
      paymentHash: invoice.paymentHash,
      preimage: new Uint8Array(32),
      amountPaidMsat: 0n,
      routingFeePaidMsat: 0n,
      createdAtNs: this.#nowNs(),
    };
    // Pending first: an interrupted payment is found and tracked next time, never paid twice.
    await this.#store.storeToken(fields);
    const pending = await this.#store.pendingToken();
    if (!pending) {
      throw new LoopkitError("l402_store_io", `L402: pending token "${this.#store.pendingPath}" vanished`);
    }

    let res: PaymentResult;
    try {
      res = await this.#payer.sendPaymentV2(challenge.invoice, this.#maxFeeSat, this.#paymentTimeoutSec);
    } catch (err) {
      if (!isAlreadyExists(err)) {
        // Did lnd start the payment at all? If it has never seen the hash (the call was refused, e.g. a
        // macaroon without offchain permissions), nothing was paid: discard the pending token now.
        const seen = await this.#track(pending).catch(() => "unknown" as const);
        const discarded = seen === "never_seen" && await this.#store.removePendingToken(pending.bytes);
        throw new LoopkitError(
          "l402_payment_failed",
          `L402: paying the token invoice failed: ${detailsOf(err)} (` +
            (discarded
              ? `lnd never saw the payment, so nothing was paid; pending token "${pending.path}" discarded`
              : `pending token "${pending.path}" kept; the next call tracks it`) +
            ")",
          err instanceof LoopkitError ? err.exitCode : ExitCode.Failure,
          { cause: err },
        );
      }
      const tracked = await this.#track(pending);
      if (tracked === "failed" || tracked === "never_seen") {
        throw new LoopkitError(
          "l402_payment_failed",
          `L402: the token payment failed (pending token "${pending.path}" kept; the next call pays a new invoice)`,
        );
      }
      return tracked;
    }
    switch (res.status) {
      case "SUCCEEDED":
        return await this.#storePaid(pending, res);
      case "FAILED":
        throw new LoopkitError(
          "l402_payment_failed",
          `L402: the token payment failed: ${res.failureReason} (pending token "${pending.path}" kept; the next ` +
            `call confirms the failure with lnd and pays a new invoice)`,
        );
      default:
        throw tempFailure(
          `L402: payment timed out. try again to track payment. ${MANUAL_RETRY_HINT} (pending token ` +
            `"${pending.path}", status ${res.status})`,
          "l402_payment_pending",
        );
    }
  }

  async #storePaid(pending: StoredToken, res: PaymentResult): Promise<StoredToken> {
    const preimage = res.preimage;
    if (
      !preimage || preimage.length !== 32 || hex.encode(sha256(preimage)) !== hex.encode(pending.paymentHash)
    ) {
      throw new LoopkitError(
        "l402_payment_failed",
        `L402: lnd reported the token payment ${
          hex.encode(pending.paymentHash)
        } as succeeded without a matching ` +
          `preimage (pending token "${pending.path}" kept)`,
      );
    }
    await this.#store.storeToken({
      macaroonBytes: pending.macaroonBytes,
      paymentHash: pending.paymentHash,
      preimage,
      amountPaidMsat: res.valueMsat,
      routingFeePaidMsat: res.feeMsat,
      createdAtNs: pending.createdAtNs,
    });
    const paid = await this.#store.currentToken();
    if (!paid?.paid) {
      throw new LoopkitError("l402_store_io", `L402: paid token "${this.#store.paidPath}" vanished`);
    }
    return paid;
  }
}
