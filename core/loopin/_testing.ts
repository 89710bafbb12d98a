/**
 * Test helpers of core/loopin (not part of the public surface).
 *
 * @module
 */
import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { LoopkitError } from "../errors.ts";

/** Asserts `fn` throws a LoopkitError with `code` and `exitCode`, whose message includes every `parts`. */
export function assertLoopkitError(
  fn: () => unknown,
  code: string,
  exitCode: number,
  ...parts: string[]
): LoopkitError {
  const err = assertThrows(fn, LoopkitError);
  assertEquals(err.code, code, `code of: ${err.message}`);
  assertEquals(err.exitCode, exitCode, `exit code of ${code}`);
  for (const p of parts) {
    if (!err.message.includes(p)) {
      throw new Error(`message ${JSON.stringify(err.message)} lacks ${JSON.stringify(p)}`);
    }
  }
  return err;
}

/** A deterministic display txid for test deposit `n`. */
export function txidOf(n: number): string {
  return n.toString(16).padStart(64, "0");
}

/** Outpoint `txidOf(n):vout`. */
export function op(n: number, vout = 0): string {
  return `${txidOf(n)}:${vout}`;
}
