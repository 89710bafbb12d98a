/**
 * Expiry of a deposit and its timeout-path sweep (spec/static-address-and-deposits.md §2.7, §4.7, §4.8).
 *
 * - A deposit with first-confirmation height C > 0 is expired at tip h iff h ≥ C + E (E = the address's
 *   CSV expiry). Unconfirmed deposits never expire.
 * - The sweep is a version-2 transaction, lock time 0, one input (the deposit, nSequence = E), one output
 *   (value − fee) to the deposit's stored `timeout_sweep_pk_script`. The input spends the static address
 *   through its single tapscript leaf: witness `[sig64, leafScript, controlBlock]`, BIP-341 script-path
 *   sighash with SIGHASH_DEFAULT, signed by lnd (`Signer.SignOutputRaw`) with the client key's locator.
 * - Fee: lnd's estimate for `--sweep-conf-target` blocks, floored at lnd's min relay fee and at 253 sat/kw,
 *   times the transaction's exact weight; refused above 20 % of the value (Loop's cap) or when the output
 *   would be dust.
 *
 * This module is pure plus lnd calls; persisting and publishing are `sync.ts`'s job (sweep stored before it
 * is first published, the same bytes republished until 3 confirmations).
 *
 * @module
 */
import { RawTx, Transaction } from "@scure/btc-signer";
import { schnorr } from "@noble/curves/secp256k1.js";
import type { KeyLocator, LndClient, TxOut } from "../../lnd/types.ts";
import { ExitCode, LoopkitError } from "../errors.ts";
import type { StaticAddressRow } from "../db/static_addresses.ts";
import {
  aggregateInternalKey,
  tapLeafHash,
  taprootTweak,
  TAPSCRIPT_LEAF_VERSION,
  timeoutLeafScript,
} from "../staticaddr/script.ts";
import { equalBytes } from "@noble/curves/utils.js";
// The expiry arithmetic lives in expiry.ts (no Bitcoin libraries, so `deposits list` loads light).
export { blocksUntilExpiry, DEFAULT_SWEEP_CONF_TARGET, isExpired } from "./expiry.ts";

/** Confirmations after which the expiry sweep is final and the deposit `Expired` (§4.8, Loop's value). */
export const EXPIRY_SWEEP_CONFS = 3;

/** P2TR dust limit in sat (`DustLimitForSize(34)`, §4.14). */
export const P2TR_DUST_LIMIT_SAT = 330n;

/** Lowest fee rate loopkit pays, sat/kw: lnd's `FeePerKwFloor` (1 sat/vB after rounding). */
export const FEE_RATE_FLOOR_SAT_PER_KW = 253n;

/** The sweep fee may not exceed this percentage of the deposit value (Loop's cap, §4.8). */
export const MAX_SWEEP_FEE_PERCENT = 20n;

/** BIP-341 `SIGHASH_DEFAULT`. */
const SIGHASH_DEFAULT = 0;

/** What spending a static address through its timeout leaf needs (§2.7). */
export interface TimeoutSpendInfo {
  /** The address's pkScript (recomputed, checked against the stored row). */
  pkScript: Uint8Array;
  /** The timeout leaf `<x(client)> OP_CHECKSIGVERIFY <E> OP_CSV`. */
  leafScript: Uint8Array;
  /** `(0xc0 | parity(Q)) || x(P)`, 33 bytes. */
  controlBlock: Uint8Array;
  /** 33-byte compressed client key (signs the leaf). */
  clientPubkey: Uint8Array;
  /** Where lnd holds the client key. */
  keyLocator: KeyLocator;
  /** CSV expiry E in blocks (the input's nSequence). */
  csvExpiry: number;
}

/**
 * Recomputes the timeout-spend data of a stored address from its keys and expiry (§2.2–§2.7).
 * @throws {LoopkitError} `db_corrupt` when the recomputed pkScript differs from the stored one;
 *   `invalid_static_address` for invalid stored keys
 */
export function timeoutSpendInfo(row: StaticAddressRow): TimeoutSpendInfo {
  const leafScript = timeoutLeafScript(row.clientPubkey, row.expiry);
  const internalKey = aggregateInternalKey(row.clientPubkey, row.serverPubkey);
  const { outputKey } = taprootTweak(internalKey.subarray(1), tapLeafHash(leafScript));
  const pkScript = Uint8Array.of(0x51, 0x20, ...outputKey.subarray(1));
  if (!equalBytes(pkScript, row.pkScript)) {
    throw new LoopkitError(
      "db_corrupt",
      `Stored static address ${row.id} has a pkScript that does not match its keys and expiry`,
      ExitCode.Failure,
    );
  }
  const controlBlock = Uint8Array.of(
    TAPSCRIPT_LEAF_VERSION | (outputKey[0] === 0x03 ? 1 : 0),
    ...internalKey.subarray(1),
  );
  return {
    pkScript,
    leafScript,
    controlBlock,
    clientPubkey: Uint8Array.from(row.clientPubkey),
    keyLocator: { family: row.clientKeyFamily, index: row.clientKeyIndex },
    csvExpiry: row.expiry,
  };
}

/** The deposit being swept and where to. */
export interface ExpirySweepParams {
  /** Deposit outpoint txid, display hex. */
  txid: string;
  /** Deposit outpoint index. */
  vout: number;
  /** Deposit value, sat. */
  valueSat: bigint;
  /** How to spend the static address. */
  spend: TimeoutSpendInfo;
  /** The deposit's `timeout_sweep_pk_script` (a wallet address of lnd). */
  sweepPkScript: Uint8Array;
}

const hexToBytes = (h: string) => Uint8Array.from(h.match(/../g)!, (x) => parseInt(x, 16));

function encodeSweep(p: ExpirySweepParams, feeSat: bigint, witness?: Uint8Array[]): Uint8Array {
  return RawTx.encode({
    version: 2,
    segwitFlag: witness !== undefined,
    inputs: [{
      txid: hexToBytes(p.txid),
      index: p.vout,
      finalScriptSig: new Uint8Array(),
      sequence: p.spend.csvExpiry,
    }],
    outputs: [{ amount: p.valueSat - feeSat, script: p.sweepPkScript }],
    witnesses: witness === undefined ? undefined : [witness],
    lockTime: 0,
  });
}

/**
 * The exact weight (WU) of the signed sweep: `3 × stripped size + total size`, with the 64-byte
 * SIGHASH_DEFAULT signature the witness always carries. For a P2TR destination and a 3-byte CSV push this is
 * 517 WU; Loop's constant `ExpirySpendWeight()` is 518 (it assumes a 39-byte leaf, §2.7).
 */
export function expirySweepWeight(p: ExpirySweepParams): number {
  const stripped = encodeSweep(p, 0n).length;
  const full = encodeSweep(p, 0n, [new Uint8Array(64), p.spend.leafScript, p.spend.controlBlock]).length;
  return 3 * stripped + full;
}

/** The fee decision for one sweep. */
export interface SweepFee {
  /** Fee rate used, sat/kw (after the floors). */
  feeRateSatPerKw: bigint;
  /** Weight of the signed sweep, WU. */
  weight: number;
  /** Fee, sat: `ceil(rate × weight / 1000)`. */
  feeSat: bigint;
}

/**
 * Fee of the sweep at `feeRateSatPerKw`, floored at `minRelaySatPerKw` and {@linkcode FEE_RATE_FLOOR_SAT_PER_KW}.
 * @param outpoint for error messages
 * @throws {LoopkitError} `sweep_fee_too_high` when the fee exceeds 20 % of the value (Loop's cap, §4.8) or
 *   leaves an output below the P2TR dust limit (330 sat); nothing is signed, the next sync retries
 */
export function expirySweepFee(
  valueSat: bigint,
  weight: number,
  feeRateSatPerKw: bigint,
  minRelaySatPerKw: bigint,
  outpoint: string,
): SweepFee {
  let rate = feeRateSatPerKw;
  if (rate < minRelaySatPerKw) rate = minRelaySatPerKw;
  if (rate < FEE_RATE_FLOOR_SAT_PER_KW) rate = FEE_RATE_FLOOR_SAT_PER_KW;
  const feeSat = (rate * BigInt(weight) + 999n) / 1000n;
  if (feeSat * 100n > valueSat * MAX_SWEEP_FEE_PERCENT) {
    throw new LoopkitError(
      "sweep_fee_too_high",
      `Expiry sweep of deposit ${outpoint} would pay ${feeSat} sat (${rate} sat/kw × ${weight} WU), more than ` +
        `${MAX_SWEEP_FEE_PERCENT}% of its ${valueSat} sat; not sweeping now, the next sync retries`,
    );
  }
  if (valueSat - feeSat < P2TR_DUST_LIMIT_SAT) {
    throw new LoopkitError(
      "sweep_fee_too_high",
      `Expiry sweep of deposit ${outpoint} would leave ${valueSat - feeSat} sat after a ${feeSat} sat fee, ` +
        `below the ${P2TR_DUST_LIMIT_SAT} sat dust limit`,
    );
  }
  return { feeRateSatPerKw: rate, weight, feeSat };
}

/** BIP-341 script-path sighash (SIGHASH_DEFAULT) of the sweep's only input. */
export function expirySweepSighash(p: ExpirySweepParams, feeSat: bigint): Uint8Array {
  const tx = Transaction.fromRaw(encodeSweep(p, feeSat), { allowUnknownOutputs: true });
  return tx.preimageWitnessV1(
    0,
    [p.spend.pkScript],
    SIGHASH_DEFAULT,
    [p.valueSat],
    -1,
    p.spend.leafScript,
    TAPSCRIPT_LEAF_VERSION,
  );
}

/** A signed, ready-to-publish expiry sweep. */
export interface SignedExpirySweep extends SweepFee {
  /** Serialized transaction with witness. */
  tx: Uint8Array;
  /** Its txid, display hex. */
  txid: string;
}

/** The lnd calls a sweep needs. */
export type SweepSignLnd = Pick<LndClient, "estimateFeeSatPerKw" | "minRelayFeeSatPerKw" | "signOutputRaw">;

/** Display txid of a serialized transaction. */
export function txidOf(tx: Uint8Array): string {
  return Transaction.fromRaw(tx, { allowUnknownOutputs: true, allowUnknownInputs: true }).id;
}

/**
 * Builds and signs the expiry sweep of one deposit (§4.8 steps 1–5): fee from lnd's estimate, signature
 * from lnd `SignOutputRaw` (taproot script spend, client key locator, SIGHASH_DEFAULT), checked here against
 * the client key and the sighash before it is returned, so a wrong key or sighash never reaches the database.
 *
 * @param confTarget blocks for lnd's fee estimate (`--sweep-conf-target`)
 * @throws {LoopkitError} `sweep_fee_too_high`; `sweep_signature_invalid` when lnd's signature does not verify;
 *   lnd errors as mapped by the client (exit 75 when lnd is unreachable)
 */
export async function signExpirySweep(
  lnd: SweepSignLnd,
  p: ExpirySweepParams,
  confTarget: number,
): Promise<SignedExpirySweep> {
  const outpoint = `${p.txid}:${p.vout}`;
  if (p.sweepPkScript.length === 0) {
    throw new LoopkitError(
      "sweep_destination_missing",
      `Expiry sweep of deposit ${outpoint} has no destination script; nothing was signed`,
    );
  }
  const estimate = await lnd.estimateFeeSatPerKw(confTarget);
  const minRelay = await lnd.minRelayFeeSatPerKw();
  const fee = expirySweepFee(p.valueSat, expirySweepWeight(p), estimate, minRelay, outpoint);
  const prevOut: TxOut = { valueSat: p.valueSat, pkScript: p.spend.pkScript };
  const [sig] = await lnd.signOutputRaw(encodeSweep(p, fee.feeSat), [{
    keyDesc: { keyLocator: p.spend.keyLocator, rawKeyBytes: p.spend.clientPubkey },
    witnessScript: p.spend.leafScript,
    output: prevOut,
    sighash: SIGHASH_DEFAULT,
    inputIndex: 0,
    signMethod: "SIGN_METHOD_TAPROOT_SCRIPT_SPEND",
  }], [prevOut]);
  const sighash = expirySweepSighash(p, fee.feeSat);
  if (sig?.length !== 64 || !schnorr.verify(sig, sighash, p.spend.clientPubkey.subarray(1))) {
    throw new LoopkitError(
      "sweep_signature_invalid",
      `lnd's signature for the expiry sweep of deposit ${outpoint} does not verify against client key ` +
        `${p.spend.keyLocator.family}/${p.spend.keyLocator.index}; nothing was stored or published`,
    );
  }
  const tx = encodeSweep(p, fee.feeSat, [sig, p.spend.leafScript, p.spend.controlBlock]);
  const weight = 3 * encodeSweep(p, fee.feeSat).length + tx.length;
  if (weight !== fee.weight) {
    throw new LoopkitError(
      "sweep_weight_mismatch",
      `Expiry sweep weight ${weight} differs from ${fee.weight}`,
    );
  }
  return { ...fee, tx, txid: txidOf(tx) };
}
