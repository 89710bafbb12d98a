/**
 * The HTLC timeout sweep: the client takes back an HTLC output after its CLTV (spec/static-loop-in.md §4.5;
 * spec/static-loop-in-review.md §5; spec/README.md decision 6; Loop's `createHtlcSweepTx` at `5ddf3b88`).
 *
 * Differences from Loop, on purpose:
 * - the input is whichever HTLC variant confirmed (the caller passes that variant's txid and output 0 value),
 *   not the reconstructed standard variant (decision 6, spec §8.1);
 * - the fee is capped so the output never goes negative or below the 330 sat dust limit, and a sweep that
 *   cannot pay the relay minimum is refused (review §5);
 * - nLockTime below the CLTV is refused instead of producing a transaction no node accepts.
 *
 * Same as Loop: version 2, one input with sequence 1 (`SuccessSequence()`, non-final so CLTV is enforced and
 * BIP-125 replaceable), one output, SIGHASH_ALL, and the weight estimate that sizes the witness like the
 * success witness (583 or 584 WU for a P2TR destination; the real timeout witness is 2 WU larger).
 *
 * @module
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { equalBytes } from "@noble/curves/utils.js";
import { hex } from "@scure/base";
import { RawTx } from "@scure/btc-signer";
import { parseOutpoint } from "../staticaddr/outpoint.ts";
import {
  hash160,
  htlcP2wshPkScript,
  htlcTimeoutWitness,
  LOCKTIME_THRESHOLD,
  parseHtlcV2Script,
  SIGHASH_ALL,
} from "./htlc.ts";
import { decodeRawTx, feeForWeight, txidOfRaw } from "./htlc_tx.ts";
import { DUST_LIMIT_SAT } from "./types.ts";
import { loopinError, requireBigint } from "./_util.ts";
import { ExitCode } from "../errors.ts";

/** Sequence of the timeout-sweep input: Loop's `SuccessSequence()` of the V2 HTLC (spec §4.5). */
export const TIMEOUT_SWEEP_SEQUENCE = 1;

/** lnd's fee-rate floor, sat/kw (`chainfee.FeePerKwFloor`, 1 sat/vB): the sweep never pays less. */
export const MIN_RELAY_FEE_RATE_SAT_PER_KW = 253n;

/**
 * Loop's weight estimate of the timeout sweep (spec §4.5, review §5): one P2WSH input whose witness is sized
 * like the success witness, `1 + 1 + 73 + 1 + 32 + 1 + len(script)`, and one output.
 *
 * `W = 4 × (4 + 1 + 41 + 1 + (9 + len(pkScript)) + 4) + 2 + 109 + len(script)`
 *
 * @param htlcScript the V2 HTLC script (96 bytes for a 2-byte CLTV number, 97 for a 3-byte one)
 * @param sweepPkScriptLength destination pkScript length, bytes (34 for the P2TR address Loop uses)
 * @returns weight units: 583 or 584 with a P2TR destination and a mainnet-sized CLTV
 */
export function timeoutSweepWeight(htlcScript: Uint8Array, sweepPkScriptLength = 34): number {
  const witness = 1 + 1 + 73 + 1 + 32 + 1 + htlcScript.length;
  const output = 8 + (sweepPkScriptLength < 0xfd ? 1 : 3) + sweepPkScriptLength;
  return 4 * (4 + 1 + 41 + 1 + output + 4) + 2 + witness;
}

/** Inputs of {@linkcode buildHtlcTimeoutSweep}. */
export interface HtlcTimeoutSweepParams {
  /** Txid of the HTLC variant that confirmed, display hex. */
  htlcTxid: string;
  /** Output index of the HTLC: always 0 (spec §4.3; scenario 30: never the change output). */
  htlcVout: number;
  /** Value of that variant's output 0, sat. */
  htlcValueSat: bigint;
  /** The V2 HTLC script. */
  htlcScript: Uint8Array;
  /** The HTLC's P2WSH pkScript; must be `htlcP2wshPkScript(htlcScript)`. */
  htlcPkScript: Uint8Array;
  /** The swap's CLTV (`htlc_expiry`); must be the script's. */
  cltvExpiry: number;
  /** nLockTime: the current tip (Loop), at least `cltvExpiry`. */
  lockTime: number;
  /** Destination pkScript (the swap's persisted sweep address). */
  sweepPkScript: Uint8Array;
  /** Fee rate, sat/kw (lnd `EstimateFee{conf_target 3}`); raised to 253 if lower. */
  feeRateSatPerKw: bigint;
  /** Optional cap on the fee, sat. */
  maxFeeSat?: bigint;
}

/** Result of {@linkcode buildHtlcTimeoutSweep}. */
export interface HtlcTimeoutSweep {
  /** Unsigned transaction, serialized without witness. */
  tx: Uint8Array;
  /** Its txid, display hex (the same once signed). */
  txid: string;
  /** Fee, sat. */
  feeSat: bigint;
  /** Rate the fee was computed at, sat/kw (after the 253 floor). */
  feeRateSatPerKw: bigint;
  /** Weight estimate, WU. */
  weight: number;
  /** Output value, sat (≥ 330). */
  outputValueSat: bigint;
  /** True when the fee was lowered to keep the output at the dust limit or to `maxFeeSat`. */
  feeCapped: boolean;
}

function sweepError(code: string, message: string, exitCode: 1 | 2 = ExitCode.Failure): never {
  throw loopinError(code, `htlc timeout sweep: ${message}`, exitCode);
}

/**
 * Builds the unsigned timeout sweep of an HTLC variant's output 0 (spec §4.5 with the review's guards).
 *
 * Fee: `floor(max(rate, 253) × W / 1000)` with W = {@linkcode timeoutSweepWeight}; lowered to `maxFeeSat`
 * if given, and to `htlcValue − 330` so the output stays at or above dust.
 *
 * @returns see {@linkcode HtlcTimeoutSweep}
 * @throws {LoopkitError} `timeout_sweep_wrong_output` (vout ≠ 0), `timeout_sweep_script_mismatch`
 *   (pkScript is not the script's P2WSH), `timeout_sweep_cltv_mismatch`, `timeout_sweep_locktime_too_early`
 *   (nLockTime below the CLTV, or a timestamp), `timeout_sweep_value_too_small` (the HTLC value cannot pay
 *   the 253 sat/kw minimum and keep 330 sat), `timeout_sweep_pkscript_invalid`, all exit 1;
 *   `timeout_sweep_max_fee_too_low` (exit 2: `maxFeeSat` below the relay minimum)
 */
export function buildHtlcTimeoutSweep(p: HtlcTimeoutSweepParams): HtlcTimeoutSweep {
  parseOutpoint(`${p.htlcTxid}:${p.htlcVout}`);
  if (p.htlcVout !== 0) {
    sweepError(
      "timeout_sweep_wrong_output",
      `the HTLC is output 0 of its transaction, not output ${p.htlcVout}`,
    );
  }
  requireBigint(p.htlcValueSat, "HTLC value");
  const parsed = parseHtlcV2Script(p.htlcScript);
  if (
    !(p.htlcPkScript instanceof Uint8Array) || !equalBytes(p.htlcPkScript, htlcP2wshPkScript(p.htlcScript))
  ) {
    sweepError("timeout_sweep_script_mismatch", "HTLC pkScript is not the P2WSH of the HTLC script");
  }
  if (parsed.cltvExpiry !== p.cltvExpiry) {
    sweepError(
      "timeout_sweep_cltv_mismatch",
      `swap CLTV ${p.cltvExpiry} differs from the HTLC script's CLTV ${parsed.cltvExpiry}`,
    );
  }
  if (!Number.isInteger(p.lockTime) || p.lockTime < p.cltvExpiry || p.lockTime >= LOCKTIME_THRESHOLD) {
    sweepError(
      "timeout_sweep_locktime_too_early",
      `nLockTime ${
        String(p.lockTime)
      } is below the HTLC CLTV ${p.cltvExpiry} (or not a block height); wait for height ${p.cltvExpiry}`,
    );
  }
  if (
    !(p.sweepPkScript instanceof Uint8Array) || p.sweepPkScript.length === 0 ||
    p.sweepPkScript.length > 10_000
  ) {
    sweepError("timeout_sweep_pkscript_invalid", "sweep pkScript is empty or oversized");
  }
  requireBigint(p.feeRateSatPerKw, "fee rate");
  const rate = p.feeRateSatPerKw < MIN_RELAY_FEE_RATE_SAT_PER_KW
    ? MIN_RELAY_FEE_RATE_SAT_PER_KW
    : p.feeRateSatPerKw;
  const weight = timeoutSweepWeight(p.htlcScript, p.sweepPkScript.length);
  const minFee = feeForWeight(MIN_RELAY_FEE_RATE_SAT_PER_KW, weight);
  let feeSat = feeForWeight(rate, weight);
  let feeCapped = false;
  if (p.maxFeeSat !== undefined) {
    requireBigint(p.maxFeeSat, "maximum fee");
    if (p.maxFeeSat < minFee) {
      sweepError(
        "timeout_sweep_max_fee_too_low",
        `maximum fee ${p.maxFeeSat} sat is below the relay minimum ${minFee} sat (${MIN_RELAY_FEE_RATE_SAT_PER_KW} sat/kw × ${weight} WU)`,
        ExitCode.Usage,
      );
    }
    if (feeSat > p.maxFeeSat) {
      feeSat = p.maxFeeSat;
      feeCapped = true;
    }
  }
  const room = p.htlcValueSat - DUST_LIMIT_SAT;
  if (room < minFee) {
    sweepError(
      "timeout_sweep_value_too_small",
      `HTLC value ${p.htlcValueSat} sat cannot pay the relay minimum fee ${minFee} sat and keep a ${DUST_LIMIT_SAT} sat output`,
    );
  }
  if (feeSat > room) {
    feeSat = room;
    feeCapped = true;
  }
  const outputValueSat = p.htlcValueSat - feeSat;
  const tx = RawTx.encode({
    version: 2,
    segwitFlag: false,
    inputs: [{
      txid: hex.decode(p.htlcTxid),
      index: p.htlcVout,
      finalScriptSig: new Uint8Array(),
      sequence: TIMEOUT_SWEEP_SEQUENCE,
    }],
    outputs: [{ amount: outputValueSat, script: Uint8Array.from(p.sweepPkScript) }],
    lockTime: p.lockTime,
  });
  return { tx, txid: txidOfRaw(tx), feeSat, feeRateSatPerKw: rate, weight, outputValueSat, feeCapped };
}

/**
 * BIP-143 (segwit v0) sighash of one input, computed by `@scure/btc-signer` — what lnd's `SignOutputRaw`
 * signs with `SIGN_METHOD_WITNESS_V0` (spec §4.5).
 *
 * @param tx serialized transaction
 * @param inputIndex the input
 * @param witnessScript the script code (the HTLC script for a P2WSH input)
 * @param valueSat value of the output being spent, sat
 * @param sighashType default SIGHASH_ALL (0x01)
 * @returns 32-byte digest
 * @throws {LoopkitError} `tx_undecodable` (exit 1)
 */
export function witnessV0Sighash(
  tx: Uint8Array,
  inputIndex: number,
  witnessScript: Uint8Array,
  valueSat: bigint,
  sighashType: number = SIGHASH_ALL,
): Uint8Array {
  return decodeRawTx(tx).preimageWitnessV0(
    inputIndex,
    witnessScript,
    sighashType,
    requireBigint(valueSat, "value"),
  );
}

/**
 * Adds the timeout witness (spec §4.2) to an unsigned timeout sweep.
 *
 * With `htlcValueSat` the signature is first verified against the BIP-143 sighash and the sender key, so a
 * wrong key, value or transaction never leaves this function as a "signed" sweep: pass it.
 *
 * @param unsignedTx from {@linkcode buildHtlcTimeoutSweep} (one input, no witness)
 * @param sig the client HTLC key's ECDSA signature, DER without the sighash byte (lnd `SignOutputRaw`)
 * @param senderPubkey the client HTLC key, 33 bytes
 * @param htlcScript the V2 HTLC script
 * @param htlcValueSat the HTLC output value, sat (enables the signature check)
 * @returns the signed transaction
 * @throws {LoopkitError} exit 1: `timeout_sweep_tx_invalid`, `timeout_sweep_signature_invalid`, and the
 *   witness errors of `htlcTimeoutWitness`
 */
export function finalizeHtlcTimeoutSweep(
  unsignedTx: Uint8Array,
  sig: Uint8Array,
  senderPubkey: Uint8Array,
  htlcScript: Uint8Array,
  htlcValueSat?: bigint,
): Uint8Array {
  let decoded;
  try {
    decoded = RawTx.decode(unsignedTx);
  } catch (cause) {
    throw loopinError(
      "timeout_sweep_tx_invalid",
      "htlc timeout sweep: transaction does not decode",
      ExitCode.Failure,
      cause,
    );
  }
  if (decoded.inputs.length !== 1 || decoded.segwitFlag) {
    sweepError("timeout_sweep_tx_invalid", "want an unsigned transaction with exactly one input");
  }
  const witness = htlcTimeoutWitness(sig, senderPubkey, htlcScript);
  if (htlcValueSat !== undefined) {
    const digest = witnessV0Sighash(unsignedTx, 0, htlcScript, htlcValueSat);
    const der = witness[0].subarray(0, witness[0].length - 1);
    const compact = secp256k1.Signature.fromBytes(der, "der").toBytes("compact");
    const ok = equalBytes(hash160(senderPubkey), parseHtlcV2Script(htlcScript).senderPubkeyHash) &&
      secp256k1.verify(compact, digest, senderPubkey, { prehash: false, lowS: true });
    if (!ok) {
      sweepError(
        "timeout_sweep_signature_invalid",
        "the signature does not verify against the sweep's sighash and the HTLC key",
      );
    }
  }
  return RawTx.encode({ ...decoded, segwitFlag: true, witnesses: [witness] });
}
