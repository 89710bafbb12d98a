/**
 * Error reporting with no dependencies beyond core/errors.ts, so `cli/main.ts` can report before (or
 * without) loading anything else.
 *
 * @module
 */
import { exitCodeOf, LoopkitError } from "../core/errors.ts";
import { parseBooleanEnv } from "../core/config/config.ts";

/** `LOOPKIT_DEBUG` is true (an invalid value was refused at start-up by `cli/main.ts`). */
function debugOn(): boolean {
  try {
    return parseBooleanEnv("LOOPKIT_DEBUG", Deno.env.get("LOOPKIT_DEBUG")) === true;
  } catch {
    return false;
  }
}

/**
 * Reports an error: a single JSON object on stderr with `--json`, else `loopkit: <message>` (with the stack
 * when `LOOPKIT_DEBUG` is true and the error is not one of loopkit's own).
 * @returns the process exit code for the error
 */
export function reportError(err: unknown, json: boolean): number {
  const code = exitCodeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  if (json) {
    const errCode = err instanceof LoopkitError ? err.code : "internal_error";
    console.error(JSON.stringify({ error: { code: errCode, message, exit_code: code } }));
  } else {
    console.error(`loopkit: ${message}`);
    if (!(err instanceof LoopkitError) && err instanceof Error && debugOn()) {
      console.error(err.stack);
    }
  }
  return code;
}
