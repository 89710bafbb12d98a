/**
 * L402 token store files `l402.token` and `l402.token.pending` (Aperture `l402.FileStore`).
 *
 * Layout (spec/backup-and-recovery.md §3.2, all integers big-endian):
 * `mac_len u32 ‖ macaroon (mac_len bytes, binary V2) ‖ payment hash (32) ‖ preimage (32, zero while
 * pending) ‖ amount paid u64 msat ‖ routing fee paid u64 msat ‖ creation time i64 Unix ns`;
 * `92 + mac_len` bytes. Bytes after the creation time are ignored by every reader (newer Aperture
 * versions append proof-of-work fields there).
 *
 * The parser follows Loop's `parsePaidTokenMetadata` (spec §3.6) check by check, with the same
 * error wording; the macaroon and identifier decoders are loopkit's strict ones.
 *
 * @module
 */
import { decodeMacaroonV2, type Macaroon, MacaroonError } from "./macaroon.ts";
import { decodeL402Identifier, type L402Identifier, L402IdentifierError, tokenIdHex } from "./identifier.ts";

/** File name of the paid token in the network data directory. */
export const PAID_TOKEN_FILE_NAME = "l402.token";
/** File name of the pending (unpaid) token in the network data directory. */
export const PENDING_TOKEN_FILE_NAME = "l402.token.pending";
/** Size of a token file without the macaroon: 4 + 32 + 32 + 8 + 8 + 8. */
export const TOKEN_FILE_FIXED_LENGTH = 92;

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** A parsed token file. */
export interface L402TokenFile {
  /** The base macaroon exactly as stored (`mac_len` bytes). */
  macaroonBytes: Uint8Array;
  /** The decoded base macaroon. */
  macaroon: Macaroon;
  /** The decoded macaroon identifier. */
  identifier: L402Identifier;
  /** Token ID (from the macaroon identifier), 64 lower-case hex characters. */
  tokenId: string;
  /** 32-byte payment hash stored in the file (not compared with the identifier's, like Aperture). */
  paymentHash: Uint8Array;
  /** 32-byte preimage; all zero while the token is pending. Not checked against the payment hash. */
  preimage: Uint8Array;
  /** Amount paid for the token in msat, excluding routing fees. */
  amountPaidMsat: bigint;
  /** Routing fee paid in msat. */
  routingFeePaidMsat: bigint;
  /** Token creation time, Unix nanoseconds (signed 64-bit). */
  createdAtNs: bigint;
  /** True when the preimage is not all zero (spec §3.5). */
  paid: boolean;
}

/** Which check of {@linkcode parseTokenFile} failed. */
export type TokenFileErrorCode =
  | "truncated"
  | "bad_macaroon_length"
  | "not_paid"
  | "bad_macaroon"
  | "bad_identifier";

/** A token file that cannot be parsed; `message` keeps Loop's Go wording (spec §3.6). */
export class TokenFileError extends SyntaxError {
  /** Which check failed; `not_paid` only in `requirePaid` mode. */
  readonly code: TokenFileErrorCode;
  constructor(code: TokenFileErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TokenFileError";
    this.code = code;
  }
}

/** Options of {@linkcode parseTokenFile}. */
export interface ParseTokenFileOptions {
  /**
   * Backup-validation mode (Loop `parsePaidTokenMetadata`): fail with `backup L402 token is not
   * paid` right after reading the preimage, before the amounts are read. Default false.
   */
  requirePaid?: boolean;
}

class FieldReader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  /** Go `binary.Read` of a fixed-size field: `EOF` when nothing is left, `unexpected EOF` when partial. */
  take(n: number, what: string): Uint8Array {
    if (this.remaining < n) {
      const io = this.remaining === 0 ? "EOF" : "unexpected EOF";
      throw new TokenFileError("truncated", `unable to read L402 token ${what}: ${io}`);
    }
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u64(what: string): bigint {
    return new DataView(this.take(8, what).buffer).getBigUint64(0, false);
  }
}

/**
 * Parses the bytes of an `l402.token` or `l402.token.pending` file.
 *
 * Check order (spec §3.6): macaroon length, `mac_len` ≤ bytes left, payment hash, preimage,
 * [requirePaid: not paid], amount, routing fee, creation time, macaroon decode, identifier decode.
 *
 * @param bytes the whole file
 * @param options `requirePaid` for backup validation
 * @returns the parsed token; trailing bytes after the creation time are ignored
 * @throws {TokenFileError} with Loop's wording, e.g. `unable to read L402 token amount: unexpected EOF`,
 *   `invalid L402 token macaroon length`, `backup L402 token is not paid`,
 *   `unable to unmarshal L402 token macaroon: …`, `unable to decode L402 token ID: …`
 */
export function parseTokenFile(bytes: Uint8Array, options: ParseTokenFileOptions = {}): L402TokenFile {
  const r = new FieldReader(bytes);
  const macLen = new DataView(r.take(4, "macaroon length").buffer).getUint32(0, false);
  if (macLen > r.remaining) {
    throw new TokenFileError("bad_macaroon_length", "invalid L402 token macaroon length");
  }
  const macaroonBytes = r.take(macLen, "macaroon");
  const paymentHash = r.take(32, "payment hash");
  const preimage = r.take(32, "preimage");
  const paid = preimage.some((b) => b !== 0);
  if (options.requirePaid && !paid) throw new TokenFileError("not_paid", "backup L402 token is not paid");
  const amountPaidMsat = r.u64("amount");
  const routingFeePaidMsat = r.u64("routing fee");
  const createdAtNs = new DataView(r.take(8, "creation time").buffer).getBigInt64(0, false);
  let macaroon: Macaroon;
  try {
    macaroon = decodeMacaroonV2(macaroonBytes);
  } catch (e) {
    if (!(e instanceof MacaroonError)) throw e;
    throw new TokenFileError("bad_macaroon", `unable to unmarshal L402 token macaroon: ${e.message}`, {
      cause: e,
    });
  }
  let identifier: L402Identifier;
  try {
    identifier = decodeL402Identifier(macaroon.identifier);
  } catch (e) {
    if (!(e instanceof L402IdentifierError)) throw e;
    throw new TokenFileError("bad_identifier", `unable to decode L402 token ID: ${e.message}`, { cause: e });
  }
  return {
    macaroonBytes,
    macaroon,
    identifier,
    tokenId: tokenIdHex(identifier.tokenId),
    paymentHash,
    preimage,
    amountPaidMsat,
    routingFeePaidMsat,
    createdAtNs,
    paid,
  };
}

/** Fields of a token file, for {@linkcode encodeTokenFile}. */
export interface TokenFileFields {
  /** Serialized base macaroon (binary V2), stored verbatim. */
  macaroonBytes: Uint8Array;
  /** 32-byte payment hash. */
  paymentHash: Uint8Array;
  /** 32-byte preimage; all zero for a pending token. */
  preimage: Uint8Array;
  /** Amount paid in msat (u64). */
  amountPaidMsat: bigint;
  /** Routing fee paid in msat (u64). */
  routingFeePaidMsat: bigint;
  /** Creation time, Unix nanoseconds (i64). */
  createdAtNs: bigint;
}

/**
 * Serializes a token file like Aperture v0.4.0 `serializeToken` (`92 + mac_len` bytes, no
 * proof-of-work trailer). The macaroon bytes are checked to decode before anything is written.
 *
 * @param t the fields
 * @returns the file bytes
 * @throws {RangeError} a hash/preimage not 32 bytes, an amount outside u64, a time outside i64
 * @throws {TokenFileError} the macaroon or its L402 identifier does not decode
 */
export function encodeTokenFile(t: TokenFileFields): Uint8Array {
  if (t.paymentHash.length !== 32) {
    throw new RangeError(`L402 token payment hash is ${t.paymentHash.length} bytes, want 32`);
  }
  if (t.preimage.length !== 32) {
    throw new RangeError(`L402 token preimage is ${t.preimage.length} bytes, want 32`);
  }
  for (
    const [name, v] of [["amount paid", t.amountPaidMsat], [
      "routing fee paid",
      t.routingFeePaidMsat,
    ]] as const
  ) {
    if (v < 0n || v > U64_MAX) throw new RangeError(`L402 token ${name} ${v} msat is out of range`);
  }
  if (t.createdAtNs < I64_MIN || t.createdAtNs > I64_MAX) {
    throw new RangeError(`L402 token creation time ${t.createdAtNs} ns is out of range`);
  }
  const L = t.macaroonBytes.length;
  const out = new Uint8Array(TOKEN_FILE_FIXED_LENGTH + L);
  const view = new DataView(out.buffer);
  view.setUint32(0, L, false);
  out.set(t.macaroonBytes, 4);
  out.set(t.paymentHash, 4 + L);
  out.set(t.preimage, 36 + L);
  view.setBigUint64(68 + L, t.amountPaidMsat, false);
  view.setBigUint64(76 + L, t.routingFeePaidMsat, false);
  view.setBigInt64(84 + L, t.createdAtNs, false);
  // Refuse to return bytes that would not read back.
  parseTokenFile(out);
  return out;
}
