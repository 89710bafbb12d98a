/**
 * The three HTLC transactions of a static loop-in: weight, fee, construction, BIP-341 key-path sighashes
 * and the server fee guards (spec/static-loop-in.md §3.7, §4.3, §4.4).
 *
 * Layout (§4.3): version 2, nLockTime 0; inputs = the deposits in snapshot order, sequence 0, empty
 * scriptSig; output 0 = the HTLC P2WSH (swap amount − fee); output 1 = the change to the static address,
 * only when the change is > 0.
 *
 * @module
 */
import { RawTx, SigHash, Transaction } from "@scure/btc-signer";
import { hex } from "@scure/base";
import { parseOutpoint } from "../staticaddr/outpoint.ts";
import {
  BACKUP_FEE_CAP_PERCENT,
  DUST_LIMIT_SAT,
  HTLC_VARIANTS,
  type HtlcVariant,
  STANDARD_FEE_CAP_PERCENT,
} from "./types.ts";
import { loopinError, requireBigint, serverError } from "./_util.ts";
import { ExitCode } from "../errors.ts";

/** Size of a Bitcoin compact-size integer, bytes. */
function varintSize(n: number): number {
  if (n < 0xfd) return 1;
  if (n <= 0xffff) return 3;
  if (n <= 0xffff_ffff) return 5;
  return 9;
}

/** Non-witness bytes of one input: outpoint 36 + scriptSig length 1 (empty) + sequence 4. */
const INPUT_BYTES = 41;
/** Bytes of a P2WSH or P2TR output: value 8 + script length 1 + 34-byte script. */
const OUTPUT_BYTES = 43;
/** Witness bytes of a key-path SIGHASH_DEFAULT input: item count 1 + length 1 + 64-byte signature. */
const KEY_SPEND_WITNESS_BYTES = 66;
/** Version 4 + nLockTime 4. */
const VERSION_LOCKTIME_BYTES = 8;
/** Segwit marker and flag, counted once per transaction at witness weight. */
const SEGWIT_MARKER_FLAG = 2;

/**
 * Weight estimate of an HTLC transaction (spec §4.3, lnd `TxWeightEstimator` with N taproot key-spend
 * inputs, one P2WSH output and one P2TR output when there is change):
 *
 * `W = 4 × (8 + varint(N) + 41·N + varint(outs) + 43·outs) + 2 + 66·N`
 *
 * @param numInputs deposits N (≥ 1)
 * @param hasChange true when a change output exists (change > 0)
 * @returns weight units (444 for one input without change, 616 with change)
 * @throws {LoopkitError} `loopin_invalid_argument` (exit 1) for N < 1
 */
export function htlcTxWeight(numInputs: number, hasChange: boolean): number {
  if (!Number.isInteger(numInputs) || numInputs < 1) {
    throw loopinError(
      "loopin_invalid_argument",
      `HTLC tx needs at least one input, got ${numInputs}`,
      ExitCode.Failure,
    );
  }
  const outs = hasChange ? 2 : 1;
  const base = VERSION_LOCKTIME_BYTES + varintSize(numInputs) + INPUT_BYTES * numInputs + varintSize(outs) +
    OUTPUT_BYTES * outs;
  return 4 * base + SEGWIT_MARKER_FLAG + KEY_SPEND_WITNESS_BYTES * numInputs;
}

/**
 * `floor(rate × weight / 1000)` (spec "Conventions"; lnd `SatPerKWeight.FeeForWeight`).
 *
 * @param rateSatPerKw fee rate, sat per 1000 weight units (≥ 0)
 * @param weightWu weight units
 * @returns fee, sat
 */
export function feeForWeight(rateSatPerKw: bigint, weightWu: number): bigint {
  requireBigint(rateSatPerKw, "fee rate");
  if (rateSatPerKw < 0n) {
    throw loopinError(
      "loopin_invalid_argument",
      `fee rate ${rateSatPerKw} sat/kw is negative`,
      ExitCode.Failure,
    );
  }
  return (rateSatPerKw * BigInt(weightWu)) / 1000n;
}

/** A deposit spent by the HTLC transaction. */
export interface HtlcTxDeposit {
  /** Funding txid, display hex. */
  txid: string;
  /** Output index. */
  vout: number;
  /** Value, sat. */
  valueSat: bigint;
}

/** Inputs of {@linkcode buildHtlcTx}. */
export interface HtlcTxParams {
  /** The deposits in snapshot order (= input order). */
  deposits: readonly HtlcTxDeposit[];
  /** Swap amount, sat (from `deduceSwapAmount`). */
  swapAmountSat: bigint;
  /** Change back to the static address, sat (0 = no change output). */
  changeSat: bigint;
  /** The variant's fee rate from the server, sat/kw. */
  feeRateSatPerKw: bigint;
  /** P2WSH pkScript of the HTLC (`htlcP2wshPkScript`), 34 bytes. */
  htlcPkScript: Uint8Array;
  /** The static address pkScript (P2TR), 34 bytes: the change destination. */
  staticPkScript: Uint8Array;
  /** Optional cap on the fee, sat (Loop re-checks the fee guard while building, spec §3.7). */
  maxFeeSat?: bigint;
}

/** Result of {@linkcode buildHtlcTx}. */
export interface HtlcTx {
  /** The unsigned transaction, serialized without witness. */
  tx: Uint8Array;
  /** Its txid, display hex (witness-independent: it is the txid of the signed transaction too). */
  txid: string;
  /** Value of output 0, sat. */
  htlcValueSat: bigint;
  /** Fee, sat (inputs − outputs). */
  feeSat: bigint;
  /** Weight estimate used for the fee, WU. */
  weight: number;
}

function txError(code: string, message: string): never {
  throw loopinError(code, `htlc tx: ${message}`, ExitCode.Failure);
}

function checkScript(script: Uint8Array, prefix: number, name: string): void {
  if (!(script instanceof Uint8Array) || script.length !== 34 || script[0] !== prefix || script[1] !== 0x20) {
    txError(
      "htlc_tx_script_invalid",
      `${name} must be a 34-byte ${prefix === 0 ? "P2WSH" : "P2TR"} pkScript`,
    );
  }
}

/**
 * Builds one HTLC transaction (spec §4.3), unsigned.
 *
 * @returns see {@linkcode HtlcTx}
 * @throws {LoopkitError} exit 1: `htlc_tx_amounts_mismatch` (deposits ≠ swap amount + change),
 *   `htlc_tx_change_dust` (0 < change < 330), `htlc_tx_fee_too_high` (fee above `maxFeeSat`:
 *   `htlc tx fee <f> sat exceeds max fee <m> sat`, or no HTLC value left), `htlc_tx_script_invalid`,
 *   `htlc_tx_no_inputs`, `invalid_outpoint`
 */
export function buildHtlcTx(params: HtlcTxParams): HtlcTx {
  const { deposits, swapAmountSat, changeSat, feeRateSatPerKw, htlcPkScript, staticPkScript } = params;
  requireBigint(swapAmountSat, "swap amount");
  requireBigint(changeSat, "change");
  if (deposits.length === 0) txError("htlc_tx_no_inputs", "no deposits to spend");
  checkScript(htlcPkScript, 0x00, "HTLC pkScript");
  checkScript(staticPkScript, 0x51, "static address pkScript");
  for (const d of deposits) {
    parseOutpoint(`${d.txid}:${d.vout}`);
    requireBigint(d.valueSat, `value of ${d.txid}:${d.vout}`);
  }
  const total = deposits.reduce((s, d) => s + d.valueSat, 0n);
  if (changeSat < 0n || swapAmountSat <= 0n || total !== swapAmountSat + changeSat) {
    txError(
      "htlc_tx_amounts_mismatch",
      `deposits total ${total} sat but swap amount ${swapAmountSat} sat + change ${changeSat} sat = ${
        swapAmountSat + changeSat
      } sat`,
    );
  }
  if (changeSat > 0n && changeSat < DUST_LIMIT_SAT) {
    txError("htlc_tx_change_dust", `change ${changeSat} sat is below the ${DUST_LIMIT_SAT} sat dust limit`);
  }
  const weight = htlcTxWeight(deposits.length, changeSat > 0n);
  const feeSat = feeForWeight(feeRateSatPerKw, weight);
  if (params.maxFeeSat !== undefined && feeSat > params.maxFeeSat) {
    txError("htlc_tx_fee_too_high", `htlc tx fee ${feeSat} sat exceeds max fee ${params.maxFeeSat} sat`);
  }
  const htlcValueSat = swapAmountSat - feeSat;
  if (htlcValueSat <= 0n) {
    txError(
      "htlc_tx_fee_too_high",
      `htlc tx fee ${feeSat} sat leaves nothing of swap amount ${swapAmountSat} sat`,
    );
  }
  const outputs = [{ amount: htlcValueSat, script: Uint8Array.from(htlcPkScript) }];
  if (changeSat > 0n) outputs.push({ amount: changeSat, script: Uint8Array.from(staticPkScript) });
  const tx = RawTx.encode({
    version: 2,
    segwitFlag: false,
    // RawTx takes the txid in display order and writes it reversed (internal order) on the wire.
    inputs: deposits.map((d) => ({
      txid: hex.decode(d.txid),
      index: d.vout,
      finalScriptSig: new Uint8Array(),
      sequence: 0,
    })),
    outputs,
    lockTime: 0,
  });
  return { tx, txid: txidOfRaw(tx), htlcValueSat, feeSat, weight };
}

/** Display txid of a serialized transaction (witness ignored). */
export function txidOfRaw(tx: Uint8Array): string {
  return Transaction.fromRaw(tx, RAW_TX_OPTIONS).id;
}

/** How loopkit decodes the raw transactions it builds or signs: any script, no standardness checks. */
const RAW_TX_OPTIONS = {
  allowUnknownOutputs: true,
  allowUnknownInputs: true,
  disableScriptCheck: true,
} as const;

/**
 * Decodes a raw transaction (witness optional) for sighash computation.
 * @throws {LoopkitError} `tx_undecodable` (exit 1)
 */
export function decodeRawTx(tx: Uint8Array): Transaction {
  try {
    return Transaction.fromRaw(tx, RAW_TX_OPTIONS);
  } catch (cause) {
    throw loopinError("tx_undecodable", "transaction bytes do not decode", ExitCode.Failure, cause);
  }
}

/** A previous output: what a BIP-341 sighash commits to for every input. */
export interface Prevout {
  /** Value, sat. */
  valueSat: bigint;
  /** pkScript. */
  pkScript: Uint8Array;
}

/**
 * BIP-341 key-path sighashes, SIGHASH_DEFAULT (0x00), one per input (spec §4.4 step 2), computed by
 * `@scure/btc-signer`.
 *
 * @param tx serialized transaction (witness optional)
 * @param prevouts one per input, in input order (every deposit: value and the static pkScript)
 * @returns 32-byte digests, index i for input i (the `message_digest` of `MuSig2Sign`)
 * @throws {LoopkitError} `sighash_prevouts_mismatch` (exit 1) when the counts differ; `tx_undecodable`
 */
export function keySpendSighashes(tx: Uint8Array, prevouts: readonly Prevout[]): Uint8Array[] {
  const parsed = decodeRawTx(tx);
  if (prevouts.length !== parsed.inputsLength) {
    throw loopinError(
      "sighash_prevouts_mismatch",
      `transaction has ${parsed.inputsLength} inputs but ${prevouts.length} prevouts were given`,
      ExitCode.Failure,
    );
  }
  const scripts = prevouts.map((p) => p.pkScript);
  const amounts = prevouts.map((p) => requireBigint(p.valueSat, "prevout value"));
  const out: Uint8Array[] = [];
  for (let i = 0; i < prevouts.length; i++) {
    out.push(parsed.preimageWitnessV1(i, scripts, SigHash.DEFAULT, amounts));
  }
  return out;
}

/** Inputs of {@linkcode checkHtlcFeeGuards}. */
export interface HtlcFeeGuardParams {
  /** Swap amount A, sat. */
  swapAmountSat: bigint;
  /** HTLC tx weight W ({@linkcode htlcTxWeight}), WU. */
  weight: number;
  /** The server's fee rate per variant, sat/kw. */
  rates: Readonly<Record<HtlcVariant, bigint>>;
}

/** The cap of one variant: floor(A × 20 / 100) standard, floor(A × 50 / 100) high and extreme (spec §3.7). */
export function htlcFeeCapSat(variant: HtlcVariant, swapAmountSat: bigint): bigint {
  const pct = variant === "standard" ? STANDARD_FEE_CAP_PERCENT : BACKUP_FEE_CAP_PERCENT;
  return (swapAmountSat * BigInt(pct)) / 100n;
}

/**
 * The server's HTLC fee guards (spec §3.7): per variant, `fee(rate, W) ≤ floor(A × 20 %)` (standard) or
 * `≤ floor(A × 50 %)` (high, extreme). loopkit also refuses a variant whose HTLC output would be below the
 * 330 sat dust limit (no relay node would accept it).
 *
 * @returns the fee of each variant, sat
 * @throws {LoopkitError} exit 1: `server_htlc_fee_too_high` (`server htlc tx fee is higher than the
 *   configured allowed maximum: …`, naming the variant, fee, rate, weight and cap),
 *   `server_htlc_output_dust`, `server_htlc_fee_rate_invalid` (negative or missing rate)
 */
export function checkHtlcFeeGuards(params: HtlcFeeGuardParams): Record<HtlcVariant, bigint> {
  const { swapAmountSat, weight, rates } = params;
  requireBigint(swapAmountSat, "swap amount");
  const fees = {} as Record<HtlcVariant, bigint>;
  for (const v of HTLC_VARIANTS) {
    const rate = rates[v];
    if (typeof rate !== "bigint" || rate < 0n) {
      throw serverError(
        "server_htlc_fee_rate_invalid",
        `server ${v} HTLC fee rate ${String(rate)} sat/kw is invalid`,
      );
    }
    const fee = feeForWeight(rate, weight);
    const cap = htlcFeeCapSat(v, swapAmountSat);
    if (fee > cap) {
      const pct = v === "standard" ? STANDARD_FEE_CAP_PERCENT : BACKUP_FEE_CAP_PERCENT;
      throw serverError(
        "server_htlc_fee_too_high",
        `server htlc tx fee is higher than the configured allowed maximum: ${v} fee ${fee} sat (${rate} sat/kw × ${weight} WU) exceeds ${pct} % of the swap amount ${swapAmountSat} sat (${cap} sat)`,
      );
    }
    if (swapAmountSat - fee < DUST_LIMIT_SAT) {
      throw serverError(
        "server_htlc_output_dust",
        `server ${v} HTLC fee ${fee} sat (${rate} sat/kw) leaves an HTLC output of ${
          swapAmountSat - fee
        } sat, below the ${DUST_LIMIT_SAT} sat dust limit`,
      );
    }
    fees[v] = fee;
  }
  return fees;
}
