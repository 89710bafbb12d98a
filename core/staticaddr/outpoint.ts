/**
 * Outpoint strings (`<txid>:<vout>`) and txid byte order.
 *
 * Loop identifies deposits by the outpoint *string* (it compares, sorts, de-duplicates and keys
 * server maps with it), so loopkit accepts exactly one spelling per outpoint: the txid as 64
 * lower-case display hex and the output index as canonical decimal. Anything else is rejected
 * rather than normalised, because a second spelling of the same outpoint would not match Loop's
 * keys (spec/static-address-and-deposits.md §0, spec/static-loop-in.md "Conventions").
 *
 * Byte order: the display hex is the byte-reverse of the txid's internal (wire) bytes. Protobuf
 * `bytes` txid fields and database hash columns use the internal order.
 *
 * @module
 */
import { hex } from "@scure/base";
import { ExitCode, LoopkitError } from "../errors.ts";

/** A transaction output reference. */
export interface Outpoint {
  /** Txid as display hex: 64 lower-case hex digits, byte-reversed relative to the wire bytes. */
  readonly txid: string;
  /** Output index, an unsigned 32-bit integer. */
  readonly vout: number;
}

const TXID_RE = /^[0-9a-f]{64}$/;
const VOUT_RE = /^(0|[1-9][0-9]{0,9})$/;
const MAX_VOUT = 0xffff_ffff;

function invalid(input: string, detail: string): LoopkitError {
  return new LoopkitError(
    "invalid_outpoint",
    `outpoint: cannot parse ${JSON.stringify(input)}: ${detail}`,
    ExitCode.Usage,
  );
}

/** Why `txid` is not a canonical display txid, or `undefined` when it is. */
function txidProblem(txid: string): string | undefined {
  if (TXID_RE.test(txid)) return undefined;
  if (/^[0-9a-fA-F]{64}$/.test(txid)) return "txid has upper-case hex digits; write it in lower case";
  return `txid is not 64 hex digits (got ${txid.length} characters)`;
}

/** True when `txid` is 64 lower-case hex digits (the only txid spelling loopkit accepts). */
export function isTxid(txid: string): boolean {
  return TXID_RE.test(txid);
}

/**
 * Parses `"<txid>:<vout>"` strictly.
 *
 * Accepted: exactly one `:`; txid of 64 hex digits in any case, as lncli accepts them (returned in lower
 * case); vout in canonical decimal (no sign, no leading zeros, no spaces) from 0 to 4294967295.
 *
 * @param input outpoint string, e.g. `"5f…c1:0"`
 * @returns the parsed outpoint
 * @throws {LoopkitError} code `invalid_outpoint` (exit 2) naming the input and the problem, e.g.
 *   `outpoint: cannot parse "ab…:01": output index "01" is not a decimal number without leading zeros`
 *
 * @example
 * ```ts
 * import { parseOutpoint } from "./outpoint.ts";
 * parseOutpoint("0000000000000000000000000000000000000000000000000000000000000001:2").vout; // 2
 * ```
 */
export function parseOutpoint(input: string): Outpoint {
  const parts = input.split(":");
  if (parts.length !== 2) {
    throw invalid(input, `want exactly one ":" between txid and output index, found ${parts.length - 1}`);
  }
  const [typed, voutText] = parts;
  // Upper- and mixed-case hex is accepted as lncli accepts it, and kept in loopkit's lower-case spelling.
  const txid = /^[0-9a-fA-F]{64}$/.test(typed) ? typed.toLowerCase() : typed;
  const problem = txidProblem(txid);
  if (problem !== undefined) throw invalid(input, problem);
  if (!VOUT_RE.test(voutText)) {
    throw invalid(
      input,
      `output index ${JSON.stringify(voutText)} is not a decimal number without leading zeros`,
    );
  }
  const vout = Number(voutText);
  if (vout > MAX_VOUT) throw invalid(input, `output index ${voutText} exceeds 4294967295`);
  return { txid, vout };
}

/**
 * Formats an outpoint as `"<txid>:<vout>"`, the key Loop uses everywhere.
 *
 * @throws {LoopkitError} code `invalid_outpoint` when the txid is not 64 lower-case hex digits or
 *   the vout is not a uint32
 */
export function formatOutpoint(outpoint: Outpoint): string {
  const text = `${outpoint.txid}:${outpoint.vout}`;
  const problem = txidProblem(outpoint.txid);
  if (problem !== undefined) throw invalid(text, problem);
  if (!Number.isInteger(outpoint.vout) || outpoint.vout < 0 || outpoint.vout > MAX_VOUT) {
    throw invalid(text, `output index ${outpoint.vout} is not an unsigned 32-bit integer`);
  }
  return text;
}

/**
 * Converts a display-hex txid to its 32 internal (wire-order) bytes.
 *
 * @param txid 64 lower-case hex digits
 * @returns 32 bytes, the reverse of the hex-decoded display string
 * @throws {LoopkitError} code `invalid_outpoint` for a malformed txid
 */
export function txidToBytes(txid: string): Uint8Array {
  const problem = txidProblem(txid);
  if (problem !== undefined) {
    throw new LoopkitError(
      "invalid_outpoint",
      `txid: cannot parse ${JSON.stringify(txid)}: ${problem}`,
      ExitCode.Usage,
    );
  }
  return hex.decode(txid).reverse();
}

/**
 * Converts 32 internal (wire-order) txid bytes to the display hex.
 *
 * @param bytes 32 bytes as found in a transaction, a protobuf `bytes` field or a DB hash column
 * @returns 64 lower-case hex digits, byte-reversed
 * @throws {LoopkitError} code `invalid_outpoint` (exit 1: bytes come from a peer or the database,
 *   not from the user) when `bytes` is not 32 bytes long
 */
export function txidFromBytes(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
    const len = bytes instanceof Uint8Array ? `${bytes.length} bytes` : typeof bytes;
    throw new LoopkitError("invalid_outpoint", `txid: want 32 bytes, got ${len}`, ExitCode.Failure);
  }
  return hex.encode(Uint8Array.from(bytes).reverse());
}
