/**
 * Private helpers of core/loopin: error construction and input checks shared by the rule files.
 *
 * @module
 */
import { ExitCode, type ExitCodeValue, LoopkitError } from "../errors.ts";

/** A {@linkcode LoopkitError} for a bad server answer (exit 1). */
export function serverError(code: string, message: string, cause?: unknown): LoopkitError {
  return new LoopkitError(code, message, ExitCode.Failure, cause === undefined ? undefined : { cause });
}

/** A {@linkcode LoopkitError} for bad user input (exit 2). */
export function inputError(code: string, message: string): LoopkitError {
  return new LoopkitError(code, message, ExitCode.Usage);
}

/** A {@linkcode LoopkitError} with an explicit exit code. */
export function loopinError(
  code: string,
  message: string,
  exitCode: ExitCodeValue,
  cause?: unknown,
): LoopkitError {
  return new LoopkitError(code, message, exitCode, cause === undefined ? undefined : { cause });
}

/** Throws `code` unless `value` is a bigint (amounts are bigint sat throughout core/loopin). */
export function requireBigint(value: unknown, field: string, code = "loopin_invalid_argument"): bigint {
  if (typeof value !== "bigint") {
    throw loopinError(code, `${field} must be a bigint amount, got ${typeof value}`, ExitCode.Failure);
  }
  return value;
}

/** Throws unless `value` is a non-negative safe integer (heights, block counts, indexes). */
export function requireHeight(value: unknown, field: string, code = "loopin_invalid_argument"): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw loopinError(
      code,
      `${field} must be a non-negative integer, got ${String(value)}`,
      ExitCode.Failure,
    );
  }
  return value;
}
