/**
 * Rendering helpers: `--json` output is stable snake_case JSON with 64-bit integers as strings and
 * bytes as hex (like lncli); human text otherwise. Data goes to stdout, diagnostics to stderr.
 *
 * @module
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import { exitCodeOf, LoopkitError } from "../core/errors.ts";

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return bytesToHex(bytes);
}

/**
 * Serialises a value for `--json`: `bigint` → decimal string, `Uint8Array` → hex, `undefined` fields dropped.
 * Keys are emitted as given (callers build snake_case objects).
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Uint8Array) return toHex(v);
    return v;
  }, 2);
}

/** Writes one line to stdout. */
export function out(line: string): void {
  console.log(line);
}

/** Writes one diagnostic line to stderr. */
export function diag(line: string): void {
  console.error(line);
}

/**
 * Reports an error: a single JSON object on stderr with `--json`, else `loopkit: <message>`.
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
    if (!(err instanceof LoopkitError) && err instanceof Error && Deno.env.get("LOOPKIT_DEBUG")) {
      console.error(err.stack);
    }
  }
  return code;
}
