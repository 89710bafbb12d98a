/**
 * L402 macaroon identifier (Aperture `l402/identifier.go`, version 0).
 *
 * Layout (spec/backup-and-recovery.md §3.4): version u16 big-endian (only 0), 32-byte payment hash,
 * 32-byte token ID; 66 bytes. Stricter than Aperture (project decision 4): a truncated identifier
 * always fails instead of leaving the missing tail as zero bytes. Bytes after the token ID are
 * ignored, like Aperture.
 *
 * @module
 */
import { bytesToHex } from "@noble/hashes/utils.js";

/** The only L402 identifier version (`l402.LatestVersion`). */
export const L402_IDENTIFIER_VERSION = 0;
/** Length of a version-0 identifier. */
export const L402_IDENTIFIER_LENGTH = 66;
/** Length of an L402 token ID. */
export const TOKEN_ID_LENGTH = 32;

/** A decoded L402 identifier. */
export interface L402Identifier {
  /** Identifier version; always 0. */
  version: number;
  /** 32-byte payment hash of the L402 invoice. */
  paymentHash: Uint8Array;
  /** 32-byte token ID. */
  tokenId: Uint8Array;
}

/** An identifier that cannot be decoded or encoded; the message follows Aperture's wording. */
export class L402IdentifierError extends SyntaxError {
  constructor(message: string) {
    super(message);
    this.name = "L402IdentifierError";
  }
}

/** Go `io.ReadFull` error text for a read of `want` bytes with `have` left. */
function eofText(have: number): string {
  return have === 0 ? "EOF" : "unexpected EOF";
}

/**
 * Decodes an L402 identifier (the macaroon identifier bytes).
 *
 * @param bytes identifier bytes, at least 66
 * @returns version 0 identifier; `paymentHash` and `tokenId` are copies
 * @throws {L402IdentifierError} `EOF` / `unexpected EOF` when short (per field, Go `io.ReadFull`
 *   wording), `unknown L402 version: N` for a version other than 0 (spec §3.4)
 */
export function decodeL402Identifier(bytes: Uint8Array): L402Identifier {
  if (bytes.length < 2) throw new L402IdentifierError(eofText(bytes.length));
  const version = (bytes[0] << 8) | bytes[1];
  if (version !== L402_IDENTIFIER_VERSION) throw new L402IdentifierError(`unknown L402 version: ${version}`);
  if (bytes.length < 34) throw new L402IdentifierError(eofText(bytes.length - 2));
  if (bytes.length < 66) throw new L402IdentifierError(eofText(bytes.length - 34));
  return { version, paymentHash: bytes.slice(2, 34), tokenId: bytes.slice(34, 66) };
}

/**
 * Encodes a version-0 L402 identifier.
 *
 * @param id version (must be 0), 32-byte payment hash and 32-byte token ID
 * @returns 66 bytes
 * @throws {L402IdentifierError} unknown version or wrong field length
 */
export function encodeL402Identifier(id: L402Identifier): Uint8Array {
  if (id.version !== L402_IDENTIFIER_VERSION) {
    throw new L402IdentifierError(`unknown L402 version: ${id.version}`);
  }
  if (id.paymentHash.length !== 32) {
    throw new L402IdentifierError(`L402 payment hash is ${id.paymentHash.length} bytes, want 32`);
  }
  if (id.tokenId.length !== TOKEN_ID_LENGTH) {
    throw new L402IdentifierError(`L402 token ID is ${id.tokenId.length} bytes, want 32`);
  }
  const out = new Uint8Array(L402_IDENTIFIER_LENGTH);
  out.set(id.paymentHash, 2);
  out.set(id.tokenId, 34);
  return out;
}

/** Token ID as Aperture renders it: 64 lower-case hex characters. */
export function tokenIdHex(tokenId: Uint8Array): string {
  return bytesToHex(tokenId);
}

/** True when `s` is a token ID as loopkit accepts it: exactly 64 lower-case hex characters. */
export function isTokenIdHex(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s);
}
