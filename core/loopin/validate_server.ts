/**
 * Validation of the server's `ServerStaticAddressLoopInResponse` (spec/static-loop-in.md §1.4, §1.7 step 18,
 * §3.7; spec/static-loop-in-review.md §1.4, §1.5, §5). Every failure here means: abandon push, cancel the
 * invoice, fail the swap (§2.3) — and keep the real reason (review §5).
 *
 * @module
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { checkHtlcFeeGuards, htlcTxWeight } from "./htlc_tx.ts";
import { LOCKTIME_THRESHOLD } from "./htlc.ts";
import {
  DEPOSIT_HTLC_DELTA,
  HTLC_EXPIRY_MAX_DELTA,
  HTLC_EXPIRY_MIN_DELTA,
  HTLC_VARIANTS,
  type HtlcVariant,
  MUSIG2_PUBNONCE_BYTES,
} from "./types.ts";
import { requireBigint, requireHeight, serverError } from "./_util.ts";

/** One `ServerHtlcSigningInfo` as decoded (camelCase). */
export interface ServerHtlcSigningInfo {
  /** One 66-byte MuSig2 public nonce per deposit, deposit order. */
  nonces: readonly Uint8Array[];
  /** `fee_rate`, sat/kw. */
  feeRateSatPerKw: bigint;
}

/** The fields of `ServerStaticAddressLoopInResponse` loopkit uses (§1.4); a missing variant is `undefined`. */
export interface ServerLoopInResponse {
  /** `htlc_server_pub_key` (1). */
  htlcServerPubKey: Uint8Array;
  /** `htlc_expiry` (2), absolute CLTV height. */
  htlcExpiry: number;
  /** `standard_htlc_info` (3). */
  standard?: ServerHtlcSigningInfo;
  /** `high_fee_htlc_info` (4). */
  high?: ServerHtlcSigningInfo;
  /** `extreme_fee_htlc_info` (5). */
  extreme?: ServerHtlcSigningInfo;
}

/** What the client knows when the answer arrives. */
export interface ServerResponseContext {
  /** Tip height stored as the swap's initiation height. */
  initiationHeight: number;
  /** Number of selected deposits N. */
  numDeposits: number;
  /** Swap amount A, sat. */
  swapAmountSat: bigint;
  /** Change, sat (0 = no change output). */
  changeSat: bigint;
  /**
   * Smallest `confirmation_height + csv_expiry` among the selected confirmed deposits, or `null` when none
   * is confirmed.
   */
  earliestConfirmedDepositExpiryHeight: number | null;
  /**
   * The static address's CSV expiry, blocks. With `hasUnconfirmedDeposits` it bounds the expiry of a
   * deposit that is still unconfirmed: it confirms at `initiationHeight + 1` at the earliest, so expires at
   * `initiationHeight + 1 + csvExpiry` at the earliest.
   */
  csvExpiry?: number;
  /** True when a selected deposit is unconfirmed (see `csvExpiry`). */
  hasUnconfirmedDeposits?: boolean;
}

/** The validated answer. All byte arrays are copies. */
export interface ValidatedServerResponse {
  /** Server HTLC key, 33-byte compressed, on the curve. */
  serverHtlcPubkey: Uint8Array;
  /** HTLC CLTV height. */
  htlcExpiry: number;
  /** Server nonces per variant, N each, 66 bytes each, deposit order. */
  nonces: Record<HtlcVariant, Uint8Array[]>;
  /** Fee rate per variant, sat/kw. */
  feeRates: Record<HtlcVariant, bigint>;
  /** HTLC tx fee per variant, sat (at the §4.3 weight). */
  fees: Record<HtlcVariant, bigint>;
}

const FIELD: Record<HtlcVariant, string> = {
  standard: "standard_htlc_info",
  high: "high_fee_htlc_info",
  extreme: "extreme_fee_htlc_info",
};

/**
 * Checks that `nonce` is a BIP-327 public nonce: 66 bytes, two compressed points on secp256k1.
 *
 * @param what names the nonce in the error, e.g. `standard_htlc_info.nonces[2]`
 * @throws {LoopkitError} exit 1: `server_nonce_length`, `server_nonce_invalid`
 */
export function checkServerNonce(nonce: Uint8Array, what: string): void {
  if (!(nonce instanceof Uint8Array) || nonce.length !== MUSIG2_PUBNONCE_BYTES) {
    const len = nonce instanceof Uint8Array ? `${nonce.length} bytes` : typeof nonce;
    throw serverError("server_nonce_length", `server ${what} is ${len}, want ${MUSIG2_PUBNONCE_BYTES} bytes`);
  }
  for (const half of [nonce.subarray(0, 33), nonce.subarray(33)]) {
    try {
      secp256k1.Point.fromBytes(half).assertValidity();
    } catch (cause) {
      throw serverError(
        "server_nonce_invalid",
        `server ${what} is not two compressed secp256k1 points`,
        cause,
      );
    }
  }
}

/**
 * Validates the server's loop-in answer, in this order (spec §1.7 step 18 plus the review's rules):
 *
 * 1. `htlc_server_pub_key`: 33-byte compressed, on the curve → `server_htlc_key_invalid`;
 * 2. `htlc_expiry` window from the initiation height H: `htlc_expiry − H > 1500` →
 *    `server_htlc_expiry_too_far`; `htlc_expiry < H + 100` → `server_htlc_expiry_too_soon` (§3.7);
 * 3. `htlc_expiry + 50 >` the earliest expiry height of the selected deposits →
 *    `server_htlc_expiry_after_deposit_expiry` (review §1.4: the deposit must not become sweepable by the
 *    client's CSV path before the HTLC's CLTV, with 50 blocks to spare);
 * 4. each variant present → `server_htlc_info_missing`; exactly N nonces → `server_nonce_count`
 *    (review §1.5); each 66 bytes → `server_nonce_length`; each two valid points → `server_nonce_invalid`;
 * 5. fee guards at the §4.3 weight → `server_htlc_fee_too_high` / `server_htlc_output_dust` /
 *    `server_htlc_fee_rate_invalid`.
 *
 * @returns the validated values
 * @throws {LoopkitError} exit 1, the codes above; messages name the field and the values
 */
export function validateLoopInResponse(
  resp: ServerLoopInResponse,
  ctx: ServerResponseContext,
): ValidatedServerResponse {
  const H = requireHeight(ctx.initiationHeight, "initiation height");
  const n = ctx.numDeposits;
  if (!Number.isInteger(n) || n < 1) {
    throw serverError("loopin_invalid_argument", `number of deposits ${n} must be at least 1`);
  }
  requireBigint(ctx.swapAmountSat, "swap amount");
  requireBigint(ctx.changeSat, "change");

  // 1. Server HTLC key.
  const key = resp.htlcServerPubKey;
  if (!(key instanceof Uint8Array) || key.length !== 33 || (key[0] !== 0x02 && key[0] !== 0x03)) {
    const got = key instanceof Uint8Array
      ? `${key.length} bytes${key.length > 0 ? ` with prefix 0x${key[0].toString(16).padStart(2, "0")}` : ""}`
      : "missing";
    throw serverError(
      "server_htlc_key_invalid",
      `server htlc_server_pub_key is not a compressed public key: got ${got}, want 33 bytes with prefix 0x02 or 0x03`,
    );
  }
  try {
    secp256k1.Point.fromBytes(key).assertValidity();
  } catch (cause) {
    throw serverError(
      "server_htlc_key_invalid",
      "server htlc_server_pub_key is not a point on secp256k1",
      cause,
    );
  }

  // 2. Expiry window.
  const expiry = resp.htlcExpiry;
  if (!Number.isInteger(expiry) || expiry < 1 || expiry >= LOCKTIME_THRESHOLD) {
    throw serverError(
      "server_htlc_expiry_invalid",
      `server htlc_expiry ${String(expiry)} is not a block height`,
    );
  }
  if (expiry - H > HTLC_EXPIRY_MAX_DELTA) {
    throw serverError(
      "server_htlc_expiry_too_far",
      `swap expiry too far: server htlc_expiry ${expiry} is ${
        expiry - H
      } blocks above the initiation height ${H}, at most ${HTLC_EXPIRY_MAX_DELTA} allowed`,
    );
  }
  if (expiry < H + HTLC_EXPIRY_MIN_DELTA) {
    throw serverError(
      "server_htlc_expiry_too_soon",
      `swap expiry too soon: server htlc_expiry ${expiry} is ${
        expiry - H
      } blocks above the initiation height ${H}, at least ${HTLC_EXPIRY_MIN_DELTA} required`,
    );
  }

  // 3. Against the deposits' own expiry.
  let earliest = ctx.earliestConfirmedDepositExpiryHeight;
  let earliestWhat = "the earliest selected deposit expiry height";
  if (ctx.hasUnconfirmedDeposits && ctx.csvExpiry !== undefined) {
    const unconfirmed = H + 1 + requireHeight(ctx.csvExpiry, "CSV expiry");
    if (earliest === null || unconfirmed < earliest) {
      earliest = unconfirmed;
      earliestWhat = "the earliest possible expiry height of an unconfirmed selected deposit";
    }
  }
  if (earliest !== null && expiry + DEPOSIT_HTLC_DELTA > earliest) {
    throw serverError(
      "server_htlc_expiry_after_deposit_expiry",
      `server htlc_expiry ${expiry} + ${DEPOSIT_HTLC_DELTA} blocks is past ${earliestWhat} ${earliest}`,
    );
  }

  // 4. Nonces.
  const nonces = {} as Record<HtlcVariant, Uint8Array[]>;
  const feeRates = {} as Record<HtlcVariant, bigint>;
  for (const v of HTLC_VARIANTS) {
    const info = resp[v];
    if (info === undefined || info === null) {
      throw serverError("server_htlc_info_missing", `server response has no ${FIELD[v]}`);
    }
    const list = info.nonces ?? [];
    if (list.length !== n) {
      throw serverError(
        "server_nonce_count",
        `server ${FIELD[v]}.nonces has ${list.length} nonces, want exactly ${n} (one per deposit)`,
      );
    }
    list.forEach((nonce, i) => checkServerNonce(nonce, `${FIELD[v]}.nonces[${i}]`));
    nonces[v] = list.map((x) => Uint8Array.from(x));
    feeRates[v] = info.feeRateSatPerKw;
  }

  // 5. Fee guards.
  const fees = checkHtlcFeeGuards({
    swapAmountSat: ctx.swapAmountSat,
    weight: htlcTxWeight(n, ctx.changeSat > 0n),
    rates: feeRates,
  });
  return { serverHtlcPubkey: Uint8Array.from(key), htlcExpiry: expiry, nonces, feeRates, fees };
}
