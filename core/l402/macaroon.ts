/**
 * Macaroon binary format V2 (go-macaroon `gopkg.in/macaroon.v2` v2.1.0), as used by L402 tokens.
 *
 * Source of the rules: spec/backup-and-recovery.md §3.3. The decoder follows go-macaroon's
 * `parseBinaryV2` check by check (same error wording, prefixed `unmarshal v2: `) and is stricter
 * where Go is lax (project decision 4):
 * - V1 (text packets, first byte an ASCII hex digit) is rejected; Aperture mints V2 only.
 * - a location packet of length 0 is rejected (Go's encoder never writes one);
 * - a first-party caveat may not carry a location packet at all (Go only rejects a non-empty one);
 * - a verification ID packet of length 0 is rejected (Go's encoder never writes one);
 * - locations must be valid UTF-8 (they are strings);
 * - bytes after the signature are rejected (Go ignores them).
 * Non-minimal varints are accepted like Go's `binary.Uvarint`, as long as the value is ≤ 0x7fffffff.
 *
 * @module
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";

/** Length of a macaroon signature (HMAC-SHA256). */
export const MACAROON_SIGNATURE_LENGTH = 32;

const FIELD_EOS = 0;
const FIELD_LOCATION = 1;
const FIELD_IDENTIFIER = 2;
const FIELD_VERIFICATION_ID = 4;
const FIELD_SIGNATURE = 6;
const MAX_VARINT = 0x7fffffff;

/** One caveat of a macaroon. First-party caveats have neither `location` nor `verificationId`. */
export interface MacaroonCaveat {
  /** Third-party caveats only: location hint of the discharger. */
  location?: string;
  /** Caveat identifier (for L402 first-party caveats an ASCII `condition=value`). */
  identifier: Uint8Array;
  /** Third-party caveats only: the verification ID. */
  verificationId?: Uint8Array;
}

/** A decoded macaroon. */
export interface Macaroon {
  /** Location hint; absent when the macaroon has none. */
  location?: string;
  /** Macaroon identifier (for L402: the 66-byte identifier of spec §3.4). */
  identifier: Uint8Array;
  /** Caveats in order. */
  caveats: MacaroonCaveat[];
  /** 32-byte HMAC-SHA256 chain signature. */
  signature: Uint8Array;
}

/** A macaroon that cannot be decoded or encoded; `message` follows go-macaroon's wording. */
export class MacaroonError extends SyntaxError {
  constructor(message: string) {
    super(message);
    this.name = "MacaroonError";
  }
}

interface Packet {
  fieldType: number;
  data: Uint8Array;
}

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  get remaining(): number {
    return this.buf.length - this.pos;
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** Go `binary.Uvarint` followed by go-macaroon's range check. */
function readVarint(r: Reader): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (r.pos + i >= r.buf.length) {
      throw new MacaroonError("varint value extends past end of buffer");
    }
    const b = r.buf[r.pos + i];
    if (b < 0x80) {
      if (i === 9 && b > 1) throw new MacaroonError("varint value out of range");
      value += b * scale;
      if (value > MAX_VARINT) throw new MacaroonError("varint value out of range");
      r.pos += i + 1;
      return value;
    }
    value += (b & 0x7f) * scale;
    scale *= 128;
  }
  throw new MacaroonError("varint value out of range");
}

function readPacket(r: Reader): Packet {
  const fieldType = readVarint(r);
  if (fieldType === FIELD_EOS) return { fieldType, data: new Uint8Array(0) };
  const len = readVarint(r);
  if (len > r.remaining) throw new MacaroonError("field data extends past end of buffer");
  const data = r.buf.slice(r.pos, r.pos + len);
  r.pos += len;
  return { fieldType, data };
}

function readSection(r: Reader): Packet[] {
  let prev = -1;
  const packets: Packet[] = [];
  for (;;) {
    if (r.remaining === 0) throw new MacaroonError("section extends past end of buffer");
    const p = readPacket(r);
    if (p.fieldType === FIELD_EOS) return packets;
    if (p.fieldType <= prev) throw new MacaroonError("fields out of order");
    packets.push(p);
    prev = p.fieldType;
  }
}

function decodeLocation(data: Uint8Array): string {
  if (data.length === 0) throw new MacaroonError("empty location field");
  try {
    return utf8.decode(data);
  } catch {
    throw new MacaroonError("location is not valid UTF-8");
  }
}

function isAsciiHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66);
}

/**
 * Decodes a macaroon in binary format V2.
 *
 * @param bytes the serialized macaroon, exactly (no trailing bytes)
 * @returns the decoded macaroon; byte fields are copies
 * @throws {MacaroonError} empty input, V1 or unknown format, bad varint (> 0x7fffffff, truncated),
 *   fields out of order, bad header or caveat section, first-party caveat with a location,
 *   signature not 32 bytes, truncation, trailing bytes (spec/backup-and-recovery.md §3.3)
 * @example
 * ```ts
 * import { decodeMacaroonV2, encodeMacaroonV2, mintMacaroon } from "./macaroon.ts";
 * const m = mintMacaroon(new Uint8Array(32), new Uint8Array([1, 2]), "loop.test");
 * decodeMacaroonV2(encodeMacaroonV2(m)).location; // "loop.test"
 * ```
 */
export function decodeMacaroonV2(bytes: Uint8Array): Macaroon {
  if (bytes.length === 0) throw new MacaroonError("empty macaroon data");
  const version = bytes[0];
  if (version !== 2) {
    if (isAsciiHex(version)) throw new MacaroonError("unmarshal v1: macaroon format V1 is not supported");
    throw new MacaroonError("cannot determine data format of binary-encoded macaroon");
  }
  try {
    return decodeV2Body(bytes);
  } catch (e) {
    if (e instanceof MacaroonError) throw new MacaroonError(`unmarshal v2: ${e.message}`);
    throw e;
  }
}

function decodeV2Body(bytes: Uint8Array): Macaroon {
  const r = new Reader(bytes);
  r.pos = 1;
  let header = readSection(r);
  let location: string | undefined;
  if (header.length > 0 && header[0].fieldType === FIELD_LOCATION) {
    location = decodeLocation(header[0].data);
    header = header.slice(1);
  }
  if (header.length !== 1 || header[0].fieldType !== FIELD_IDENTIFIER) {
    throw new MacaroonError("invalid macaroon header");
  }
  const identifier = header[0].data;
  const caveats: MacaroonCaveat[] = [];
  for (;;) {
    let section = readSection(r);
    if (section.length === 0) break;
    let cavLocation: string | undefined;
    if (section[0].fieldType === FIELD_LOCATION) {
      cavLocation = decodeLocation(section[0].data);
      section = section.slice(1);
    }
    if (section.length === 0 || section[0].fieldType !== FIELD_IDENTIFIER) {
      throw new MacaroonError("no identifier in caveat");
    }
    const cavId = section[0].data;
    section = section.slice(1);
    if (section.length === 0) {
      if (cavLocation !== undefined) throw new MacaroonError("location not allowed in first party caveat");
      caveats.push({ identifier: cavId });
      continue;
    }
    if (section.length !== 1) throw new MacaroonError("extra fields found in caveat");
    if (section[0].fieldType !== FIELD_VERIFICATION_ID) {
      throw new MacaroonError("invalid field found in caveat");
    }
    if (section[0].data.length === 0) throw new MacaroonError("empty verification ID in caveat");
    const cav: MacaroonCaveat = { identifier: cavId, verificationId: section[0].data };
    if (cavLocation !== undefined) cav.location = cavLocation;
    caveats.push(cav);
  }
  const sig = readPacket(r);
  if (sig.fieldType !== FIELD_SIGNATURE) {
    throw new MacaroonError("unexpected field found instead of signature");
  }
  if (sig.data.length !== MACAROON_SIGNATURE_LENGTH) {
    throw new MacaroonError("signature has unexpected length");
  }
  if (r.remaining !== 0) throw new MacaroonError("unexpected extra data at end of macaroon");
  const m: Macaroon = { identifier, caveats, signature: sig.data };
  if (location !== undefined) m.location = location;
  return m;
}

function pushVarint(out: number[], x: number): void {
  while (x >= 0x80) {
    out.push((x & 0x7f) | 0x80);
    x = Math.floor(x / 128);
  }
  out.push(x);
}

function pushPacket(out: number[], fieldType: number, data: Uint8Array): void {
  if (data.length > MAX_VARINT) throw new MacaroonError(`macaroon field of ${data.length} bytes is too long`);
  pushVarint(out, fieldType);
  pushVarint(out, data.length);
  for (const b of data) out.push(b);
}

/**
 * Encodes a macaroon in binary format V2 exactly as go-macaroon's `MarshalBinary` does
 * (empty location and empty verification ID are omitted).
 *
 * @param m the macaroon
 * @returns the serialized bytes, starting with `0x02`
 * @throws {MacaroonError} signature not 32 bytes, or a first-party caveat with a location
 *   (it would not decode)
 */
export function encodeMacaroonV2(m: Macaroon): Uint8Array {
  if (m.signature.length !== MACAROON_SIGNATURE_LENGTH) {
    throw new MacaroonError(`macaroon signature is ${m.signature.length} bytes, want 32`);
  }
  const out: number[] = [2];
  if (m.location) pushPacket(out, FIELD_LOCATION, utf8Encoder.encode(m.location));
  pushPacket(out, FIELD_IDENTIFIER, m.identifier);
  out.push(FIELD_EOS);
  for (const cav of m.caveats) {
    const thirdParty = cav.verificationId !== undefined && cav.verificationId.length > 0;
    if (cav.location && !thirdParty) throw new MacaroonError("location not allowed in first party caveat");
    if (cav.location) pushPacket(out, FIELD_LOCATION, utf8Encoder.encode(cav.location));
    pushPacket(out, FIELD_IDENTIFIER, cav.identifier);
    if (thirdParty) pushPacket(out, FIELD_VERIFICATION_ID, cav.verificationId!);
    out.push(FIELD_EOS);
  }
  out.push(FIELD_EOS);
  pushPacket(out, FIELD_SIGNATURE, m.signature);
  return Uint8Array.from(out);
}

const KEY_GENERATOR = utf8Encoder.encode("macaroons-key-generator");

function toBytes(x: Uint8Array | string): Uint8Array {
  return typeof x === "string" ? utf8Encoder.encode(x) : x;
}

/**
 * Mints a caveat-free macaroon like go-macaroon `macaroon.New(rootKey, id, location, V2)`:
 * `signature = HMAC-SHA256(key = HMAC-SHA256(key = "macaroons-key-generator", msg = rootKey), msg = id)`.
 *
 * @param rootKey the root key (any length; L402 servers use 32 random bytes)
 * @param identifier the macaroon identifier (for L402: {@linkcode encodeL402Identifier} output)
 * @param location optional location hint (omitted when empty)
 * @returns the macaroon (encode it with {@linkcode encodeMacaroonV2})
 */
export function mintMacaroon(
  rootKey: Uint8Array | string,
  identifier: Uint8Array,
  location?: string,
): Macaroon {
  const derived = hmac(sha256, KEY_GENERATOR, toBytes(rootKey));
  const m: Macaroon = {
    identifier: identifier.slice(),
    caveats: [],
    signature: hmac(sha256, derived, identifier),
  };
  if (location) m.location = location;
  return m;
}

/**
 * Returns a copy of `m` with a first-party caveat appended (signature chained as
 * `HMAC-SHA256(key = old signature, msg = caveatId)`), like go-macaroon `AddFirstPartyCaveat`.
 * L402 clients use it for `preimage=<hex>`.
 *
 * @param m the macaroon
 * @param caveatId the caveat identifier (string is UTF-8 encoded)
 */
export function addFirstPartyCaveat(m: Macaroon, caveatId: Uint8Array | string): Macaroon {
  const id = toBytes(caveatId).slice();
  return { ...m, caveats: [...m.caveats, { identifier: id }], signature: hmac(sha256, m.signature, id) };
}

/**
 * Checks the signature chain of a macaroon that has only first-party caveats, in constant time
 * with respect to the signature bytes. Caveat conditions themselves are not evaluated.
 *
 * @param rootKey the root key the macaroon was minted with
 * @param m the macaroon
 * @returns true when the signature matches
 * @throws {MacaroonError} the macaroon has a third-party caveat (not supported)
 */
export function verifyMacaroonSignature(rootKey: Uint8Array | string, m: Macaroon): boolean {
  let sig = hmac(sha256, hmac(sha256, KEY_GENERATOR, toBytes(rootKey)), m.identifier);
  for (const cav of m.caveats) {
    if (cav.verificationId !== undefined) throw new MacaroonError("third-party caveats are not supported");
    sig = hmac(sha256, sig, cav.identifier);
  }
  if (m.signature.length !== sig.length) return false;
  let diff = 0;
  for (let i = 0; i < sig.length; i++) diff |= sig[i] ^ m.signature[i];
  return diff === 0;
}
