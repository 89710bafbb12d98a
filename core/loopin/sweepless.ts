/**
 * Checks of the server's cooperative ("sweepless") sweep request before loopkit signs any of its deposits
 * (spec/static-loop-in.md §4.6; spec/static-loop-in-review.md; Loop's `handleLoopInSweepReq`,
 * `checkChange`, `mapDepositsToIndices` at `5ddf3b88`).
 *
 * loopkit is stricter than Loop: the server's `prevout_info` must cover each input exactly once and agree
 * with loopkit's own record of its deposits (value and pkScript), every signed deposit must be loopkit's,
 * nonces are checked as curve points, and a deposit of ours without a swap mapping is refused instead of
 * silently skipping the change check (spec §8.1).
 *
 * @module
 */
import { equalBytes } from "@noble/curves/utils.js";
import { hex } from "@scure/base";
import { Transaction } from "@scure/btc-signer";
import { parseOutpoint, txidFromBytes } from "../staticaddr/outpoint.ts";
import { keySpendSighashes } from "./htlc_tx.ts";
import { checkServerNonce } from "./validate_server.ts";
import { requireBigint, serverError } from "./_util.ts";
import { LoopkitError } from "../errors.ts";

/** One `PrevoutInfo` (§1.4) with the txid converted to display hex. */
export interface SweeplessPrevout {
  /** `value`, sat. */
  valueSat: bigint;
  /** `pk_script`. */
  pkScript: Uint8Array;
  /** `txid_bytes` as display hex (see `txidFromBytes`). */
  txid: string;
  /** `output_index`. */
  vout: number;
}

/** Inputs of {@linkcode validateSweeplessSweep}. */
export interface SweeplessSweepRequest {
  /** `sweep_tx_psbt`, binary PSBT; only its unsigned transaction is used. */
  psbt: Uint8Array;
  /** `swap_hash`, 32 bytes (the swap was loaded by it). */
  swapHash: Uint8Array;
  /** The swap's stored deposit outpoint snapshot. */
  swapOutpoints: readonly string[];
  /** {@linkcode expectedSweeplessChange} for the sweep's inputs, sat. */
  changeExpectedSat: bigint;
  /** The static address pkScript (the change destination). */
  staticPkScript: Uint8Array;
  /** `deposit_to_nonces`: outpoint → server 66-byte nonce. */
  depositToNonces: ReadonlyMap<string, Uint8Array>;
  /** `prevout_info`, in the server's order. */
  prevoutInfo: readonly SweeplessPrevout[];
  /** Every deposit loopkit knows (any swap): outpoint → its value and pkScript as stored. */
  ourDeposits: ReadonlyMap<string, { valueSat: bigint; pkScript: Uint8Array }>;
}

/** One deposit to sign: a MuSig2 session, the server nonce, then `MuSig2Sign(sighash)`. */
export interface SweeplessSigningTask {
  /** Deposit outpoint (the `signing_info` key). */
  outpoint: string;
  /** Its input index in the sweep. */
  inputIndex: number;
  /** The server's nonce for it, 66 bytes (a copy). */
  serverNonce: Uint8Array;
  /** BIP-341 key-path SIGHASH_DEFAULT digest, 32 bytes. */
  sighash: Uint8Array;
}

/** Result of {@linkcode validateSweeplessSweep}. */
export interface ValidatedSweeplessSweep {
  /** The unsigned sweep transaction. */
  unsignedTx: Uint8Array;
  /** Its txid, display hex (the `txid` field of the push is these bytes reversed: internal order). */
  txid: string;
  /** Deposits to sign, by input index. */
  toSign: SweeplessSigningTask[];
}

function fail(code: string, message: string, cause?: unknown): never {
  throw serverError(code, `sweepless sweep: ${message}`, cause);
}

/**
 * The txid of a sweep PSBT's unsigned transaction, for the "swap not finished yet" answer (spec §4.6 step 3).
 *
 * @returns display hex
 * @throws {LoopkitError} `sweepless_psbt_invalid` (exit 1)
 */
export function sweeplessPsbtTxid(psbt: Uint8Array): string {
  return decodePsbt(psbt).id;
}

function decodePsbt(psbt: Uint8Array): Transaction {
  try {
    return Transaction.fromPSBT(psbt, {
      allowUnknownOutputs: true,
      allowUnknownInputs: true,
      disableScriptCheck: true,
      allowUnknown: true,
    });
  } catch (cause) {
    return fail("sweepless_psbt_invalid", "sweep_tx_psbt is not a valid binary PSBT", cause);
  }
}

/**
 * Validates a `static_loop_in_sweep` request (spec §4.6 steps 2, 4–8) for a swap in `Succeeded`, and
 * returns what to sign. Checks, in order:
 *
 * 1. `swap_hash` 32 bytes → `sweepless_swap_hash_invalid`; the PSBT decodes → `sweepless_psbt_invalid`;
 *    no input spent twice → `sweepless_duplicate_input`;
 * 2. as many inputs as `prevout_info` entries → `sweepless_prevout_count`;
 * 3. every input has exactly one `prevout_info` entry → `sweepless_prevout_mismatch`;
 * 4. for each input that is one of our deposits, `prevout_info` has our value and pkScript →
 *    `sweepless_prevout_mismatch` (loopkit: the sighash commits to these; a lie would make us sign a
 *    different spend than we think);
 * 5. expected change > 0 → an output with exactly that value to the static pkScript →
 *    `sweepless_change_missing` (`couldn't find expected change of <x> satoshis sent to our static address`);
 * 6. `deposit_to_nonces` is not empty → `sweepless_no_deposits`; each key is in the swap's snapshot →
 *    `sweepless_deposit_not_in_swap` (`deposit outpoint not part of loop-in`), an input of the sweep →
 *    `sweepless_deposit_not_in_tx`, and one of our deposits → `sweepless_deposit_unknown`; each nonce is
 *    66 bytes of two curve points → `sweepless_nonce_invalid` (`invalid server nonce for deposit <op>`).
 *
 * @returns the unsigned transaction, its txid, and one task per deposit to sign (by input index)
 * @throws {LoopkitError} exit 1, the codes above; nothing is signed on any of them
 */
export function validateSweeplessSweep(req: SweeplessSweepRequest): ValidatedSweeplessSweep {
  if (!(req.swapHash instanceof Uint8Array) || req.swapHash.length !== 32) {
    fail("sweepless_swap_hash_invalid", "swap_hash must be 32 bytes");
  }
  const tx = decodePsbt(req.psbt);
  const unsignedTx = tx.unsignedTx;
  const inputs: string[] = [];
  for (let i = 0; i < tx.inputsLength; i++) {
    const input = tx.getInput(i);
    if (input.txid === undefined || input.index === undefined) {
      fail("sweepless_psbt_invalid", `input ${i} has no outpoint`);
    }
    const op = `${hex.encode(input.txid)}:${input.index}`;
    if (inputs.includes(op)) fail("sweepless_duplicate_input", `input ${op} is spent twice`);
    inputs.push(op);
  }

  // 2–4. prevout_info.
  if (req.prevoutInfo.length !== inputs.length) {
    fail(
      "sweepless_prevout_count",
      `sweep has ${inputs.length} inputs but prevout_info has ${req.prevoutInfo.length} entries`,
    );
  }
  const prevByOutpoint = new Map<string, SweeplessPrevout>();
  for (const p of req.prevoutInfo) {
    const op = `${p.txid}:${p.vout}`;
    if (prevByOutpoint.has(op)) fail("sweepless_prevout_mismatch", `prevout_info lists ${op} twice`);
    requireBigint(p.valueSat, `prevout_info value of ${op}`);
    prevByOutpoint.set(op, p);
  }
  const prevouts = inputs.map((op, i) => {
    const p = prevByOutpoint.get(op);
    if (p === undefined) fail("sweepless_prevout_mismatch", `input ${i} (${op}) has no prevout_info entry`);
    const ours = req.ourDeposits.get(op);
    if (ours !== undefined && (ours.valueSat !== p.valueSat || !equalBytes(ours.pkScript, p.pkScript))) {
      fail(
        "sweepless_prevout_mismatch",
        `prevout_info for our deposit ${op} says ${p.valueSat} sat to pkScript ${
          hex.encode(p.pkScript)
        }, we have ${ours.valueSat} sat to ${hex.encode(ours.pkScript)}`,
      );
    }
    return { valueSat: p.valueSat, pkScript: p.pkScript };
  });

  // 5. Change.
  requireBigint(req.changeExpectedSat, "expected change");
  if (req.changeExpectedSat > 0n) {
    let found = false;
    for (let i = 0; i < tx.outputsLength; i++) {
      const out = tx.getOutput(i);
      if (
        out.amount === req.changeExpectedSat && out.script !== undefined &&
        equalBytes(out.script, req.staticPkScript)
      ) {
        found = true;
      }
    }
    if (!found) {
      fail(
        "sweepless_change_missing",
        `couldn't find expected change of ${req.changeExpectedSat} satoshis sent to our static address`,
      );
    }
  }

  // 6. The deposits to sign.
  if (req.depositToNonces.size === 0) fail("sweepless_no_deposits", "deposit_to_nonces is empty");
  const tasks: Omit<SweeplessSigningTask, "sighash">[] = [];
  for (const [op, nonce] of req.depositToNonces) {
    if (!req.swapOutpoints.includes(op)) {
      fail("sweepless_deposit_not_in_swap", `deposit outpoint not part of loop-in: ${op}`);
    }
    const idx = inputs.indexOf(op);
    if (idx < 0) fail("sweepless_deposit_not_in_tx", `deposit outpoint ${op} not part of sweep tx`);
    if (!req.ourDeposits.has(op)) {
      fail("sweepless_deposit_unknown", `deposit ${op} is not one of our deposits`);
    }
    try {
      checkServerNonce(nonce, `nonce for deposit ${op}`);
    } catch (cause) {
      fail(
        "sweepless_nonce_invalid",
        `invalid server nonce for deposit ${op}: ${(cause as Error).message}`,
        cause,
      );
    }
    tasks.push({ outpoint: op, inputIndex: idx, serverNonce: Uint8Array.from(nonce) });
  }
  tasks.sort((a, b) => a.inputIndex - b.inputIndex);
  const hashes = keySpendSighashes(unsignedTx, prevouts);
  return {
    unsignedTx,
    txid: tx.id,
    toSign: tasks.map((t) => ({ ...t, sighash: hashes[t.inputIndex] })),
  };
}

/** A stored swap as the change rule needs it. */
export interface SwapAmounts {
  /** Total value of the swap's deposits, sat. */
  totalSat: bigint;
  /** The selected amount, sat (0 = all). */
  selectedSat: bigint;
}

/** Inputs of {@linkcode expectedSweeplessChange}. */
export interface ExpectedChangeRequest {
  /** The sweep's input outpoints. */
  inputOutpoints: readonly string[];
  /** Our deposits: outpoint → hex swap hash of the loop-in that used it, or `null` when none. */
  depositSwapHash: ReadonlyMap<string, string | null>;
  /** The swaps by hex swap hash. */
  swaps: ReadonlyMap<string, SwapAmounts>;
}

/**
 * The change the sweep must pay back to the static address (spec §4.6 step 5): over the distinct swaps
 * that the sweep's inputs belong to (inputs that are not our deposits are ignored), the sum of
 * `total − selected` where `0 < total − selected < total`. Two swaps with the same change add up.
 *
 * @returns sat (0 = no change output required)
 * @throws {LoopkitError} exit 1: `sweepless_deposit_unmapped` (an input is our deposit but in no loop-in;
 *   Loop would skip the change check), `sweepless_swap_unknown` (a mapped swap is not in `swaps`)
 */
export function expectedSweeplessChange(req: ExpectedChangeRequest): bigint {
  const hashes = new Set<string>();
  for (const op of req.inputOutpoints) {
    if (!req.depositSwapHash.has(op)) continue;
    const h = req.depositSwapHash.get(op);
    if (h === null || h === undefined) {
      fail("sweepless_deposit_unmapped", `sweep spends our deposit ${op}, which belongs to no loop-in`);
    }
    hashes.add(h);
  }
  let sum = 0n;
  for (const h of hashes) {
    const s = req.swaps.get(h);
    if (s === undefined) fail("sweepless_swap_unknown", `swap ${h} of a swept deposit is not stored`);
    const change = s.totalSat - s.selectedSat;
    if (change > 0n && change < s.totalSat) sum += change;
  }
  return sum;
}

/** Converts decoded `PrevoutInfo` messages (txid in internal byte order) to {@linkcode SweeplessPrevout}. */
export function prevoutInfoFromWire(
  list: readonly { value: bigint; pkScript: Uint8Array; txidBytes: Uint8Array; outputIndex: number }[],
): SweeplessPrevout[] {
  return list.map((p, i) => {
    try {
      const txid = txidFromBytes(p.txidBytes);
      parseOutpoint(`${txid}:${p.outputIndex}`);
      return { valueSat: p.value, pkScript: Uint8Array.from(p.pkScript), txid, vout: p.outputIndex };
    } catch (cause) {
      if (cause instanceof LoopkitError) {
        fail("sweepless_prevout_mismatch", `prevout_info[${i}]: ${cause.message}`, cause);
      }
      throw cause;
    }
  });
}
