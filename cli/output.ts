/**
 * Rendering helpers: `--json` output is stable snake_case JSON with 64-bit integers as strings and
 * bytes as hex (like lncli); human text otherwise. Data goes to stdout, diagnostics to stderr.
 *
 * @module
 */
import { bytesToHex } from "@noble/hashes/utils.js";

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

export { reportError } from "./report.ts";
