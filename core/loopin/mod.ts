/**
 * Static address loop-in: the pure rules (no I/O). State machine, deposit selection, amounts, fee caps,
 * HTLC script and transactions, server-answer validation, timeout sweep and sweepless-sweep checks.
 *
 * Sources: spec/static-loop-in.md, spec/static-loop-in-review.md (its MUST rules override the
 * reference), spec/README.md decision 6. See README.md beside this file for what the package owns.
 *
 * @module
 */
export * from "./types.ts";
export * from "./fsm.ts";
export * from "./amount.ts";
export * from "./select.ts";
export * from "./fee_cap.ts";
export * from "./label.ts";
export * from "./warning.ts";
export * from "./htlc.ts";
export * from "./htlc_tx.ts";
export * from "./validate_server.ts";
export * from "./availability.ts";
export * from "./timeout_sweep.ts";
export * from "./sweepless.ts";
