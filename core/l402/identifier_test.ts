import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import {
  decodeL402Identifier,
  encodeL402Identifier,
  isTokenIdHex,
  L402IdentifierError,
  tokenIdHex,
} from "./identifier.ts";

const vector = JSON.parse(
  Deno.readTextFileSync(new URL("../../tests/fixtures/backup-v1.json", import.meta.url)),
);

function seeded(seed: number): Uint8Array {
  const b = new Uint8Array(32);
  b[0] = seed;
  return b;
}

Deno.test("decodeL402Identifier() reads the vector identifier: payment hash 01.., token ID 01..", () => {
  const id = decodeL402Identifier(hexToBytes(vector.l402_identifier));
  assertEquals(id.version, 0);
  assertEquals(id.paymentHash, seeded(1));
  assertEquals(tokenIdHex(id.tokenId), vector.token_id);
});

Deno.test("encodeL402Identifier() writes version 0 big-endian, payment hash, token ID", () => {
  const bytes = encodeL402Identifier({ version: 0, paymentHash: seeded(0xaa), tokenId: seeded(0xbb) });
  assertEquals(bytes.length, 66);
  assertEquals(bytesToHex(bytes), "0000" + "aa" + "00".repeat(31) + "bb" + "00".repeat(31));
  assertEquals(decodeL402Identifier(bytes), { version: 0, paymentHash: seeded(0xaa), tokenId: seeded(0xbb) });
});

Deno.test("decodeL402Identifier() rejects an unknown version before reading further", () => {
  assertThrows(
    () => decodeL402Identifier(Uint8Array.from([0, 1])),
    L402IdentifierError,
    "unknown L402 version: 1",
  );
  assertThrows(
    () => decodeL402Identifier(Uint8Array.from([1, 0])),
    L402IdentifierError,
    "unknown L402 version: 256",
  );
});

Deno.test("decodeL402Identifier() requires all 66 bytes (stricter than Aperture's Read)", () => {
  const full = hexToBytes(vector.l402_identifier);
  assertThrows(() => decodeL402Identifier(full.subarray(0, 0)), L402IdentifierError, "EOF");
  assertThrows(() => decodeL402Identifier(full.subarray(0, 1)), L402IdentifierError, "unexpected EOF");
  const e = assertThrows(() => decodeL402Identifier(full.subarray(0, 2)), L402IdentifierError);
  assertEquals(e.message, "EOF");
  for (let n = 3; n < 66; n++) {
    const err = assertThrows(() => decodeL402Identifier(full.subarray(0, n)), L402IdentifierError);
    assertEquals(err.message, n === 34 ? "EOF" : "unexpected EOF", `length ${n}`);
  }
});

Deno.test("decodeL402Identifier() ignores bytes after the token ID, like Aperture", () => {
  const id = decodeL402Identifier(Uint8Array.from([...hexToBytes(vector.l402_identifier), 9, 9]));
  assertEquals(tokenIdHex(id.tokenId), vector.token_id);
});

Deno.test("encodeL402Identifier() refuses version 1 and a 31-byte token ID", () => {
  assertThrows(
    () => encodeL402Identifier({ version: 1, paymentHash: seeded(1), tokenId: seeded(1) }),
    L402IdentifierError,
  );
  assertThrows(
    () => encodeL402Identifier({ version: 0, paymentHash: seeded(1), tokenId: new Uint8Array(31) }),
    L402IdentifierError,
    "want 32",
  );
});

Deno.test("isTokenIdHex() accepts 64 lower-case hex only", () => {
  assert(isTokenIdHex(vector.token_id));
  assert(isTokenIdHex("ab".repeat(32)));
  assert(!isTokenIdHex("AB".repeat(32)));
  assert(!isTokenIdHex("gg".repeat(32)));
  assert(!isTokenIdHex("A" + vector.token_id.slice(1)));
  assert(!isTokenIdHex(vector.token_id.slice(1)));
  assert(!isTokenIdHex(vector.token_id + "0"));
});
