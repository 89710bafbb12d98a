import { bytesToHex, concatBytes, hexToBytes } from "@noble/hashes/utils.js";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { loopTokenFixture, seeded } from "./_testing.ts";
import { encodeMacaroonV2, mintMacaroon } from "./macaroon.ts";
import { encodeTokenFile, parseTokenFile, TokenFileError } from "./token_file.ts";

const vector = JSON.parse(
  Deno.readTextFileSync(new URL("../../tests/fixtures/backup-v1.json", import.meta.url)),
);

/** Independent big-endian writer for the expected layout. */
function be(n: bigint, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

Deno.test("parseTokenFile() reads the vector l402.token", () => {
  const t = parseTokenFile(hexToBytes(vector.l402_token_file), { requirePaid: true });
  assertEquals(t.tokenId, vector.token_id);
  assertEquals(t.createdAtNs, BigInt(vector.token_created_at_ns));
  assertEquals(t.createdAtNs, 1776159001000000000n);
  assertEquals(t.amountPaidMsat, 1000n);
  assertEquals(t.routingFeePaidMsat, 10n);
  assertEquals(t.paymentHash, seeded(1));
  assertEquals(t.preimage, seeded(1));
  assert(t.paid);
  assertEquals(bytesToHex(t.macaroonBytes), vector.macaroon_v2);
  assertEquals(t.macaroon.location, "loop.test");
  assertEquals(bytesToHex(t.macaroon.identifier), vector.l402_identifier);
});

Deno.test("encodeTokenFile() reproduces the vector l402.token from Loop's seed-1 fixture", () => {
  const bytes = encodeTokenFile(loopTokenFixture(1, true, 1776159001000000000n));
  assertEquals(bytesToHex(bytes), vector.l402_token_file);
});

Deno.test("encodeTokenFile() lays fields out big-endian after a u32 macaroon length", () => {
  const f = loopTokenFixture(7, true, 1776159001000000123n);
  const expected = concatBytes(
    be(BigInt(f.macaroonBytes.length), 4),
    f.macaroonBytes,
    f.paymentHash,
    f.preimage,
    be(7000n, 8),
    be(70n, 8),
    be(1776159001000000123n, 8),
  );
  assertEquals(encodeTokenFile(f), expected);
  assertEquals(parseTokenFile(expected).createdAtNs, 1776159001000000123n);
});

Deno.test("parseTokenFile() keeps u64 amounts and a negative i64 creation time exactly", () => {
  const f = {
    ...loopTokenFixture(2, true, -1n),
    amountPaidMsat: (1n << 64n) - 1n,
    routingFeePaidMsat: (1n << 63n) + 5n,
  };
  const t = parseTokenFile(encodeTokenFile(f));
  assertEquals(t.amountPaidMsat, 18446744073709551615n);
  assertEquals(t.routingFeePaidMsat, 9223372036854775813n);
  assertEquals(t.createdAtNs, -1n);
});

Deno.test("parseTokenFile() ignores trailing bytes such as Aperture's proof-of-work trailer", () => {
  const bytes = concatBytes(hexToBytes(vector.l402_token_file), new Uint8Array(12).fill(0xee));
  assertEquals(parseTokenFile(bytes).tokenId, vector.token_id);
});

Deno.test("parseTokenFile() marks a zero preimage as unpaid and requirePaid rejects it", () => {
  const bytes = encodeTokenFile(loopTokenFixture(3, false, 5n));
  assertEquals(parseTokenFile(bytes).paid, false);
  const e = assertThrows(() => parseTokenFile(bytes, { requirePaid: true }), TokenFileError);
  assertEquals(e.message, "backup L402 token is not paid");
  assertEquals(e.code, "not_paid");
});

Deno.test("parseTokenFile() reports each truncation point with Loop's wording", () => {
  const full = hexToBytes(vector.l402_token_file);
  const L = 0x74;
  const fields: [string, number, number][] = [
    ["macaroon length", 0, 4],
    ["payment hash", 4 + L, 32],
    ["preimage", 36 + L, 32],
    ["amount", 68 + L, 8],
    ["routing fee", 76 + L, 8],
    ["creation time", 84 + L, 8],
  ];
  for (let n = 0; n < full.length; n++) {
    const e = assertThrows(() => parseTokenFile(full.subarray(0, n)), TokenFileError);
    if (n >= 4 && n < 4 + L) {
      assertEquals(e.message, "invalid L402 token macaroon length", `length ${n}`);
      continue;
    }
    const [what, start] = fields.find(([, s, len]) => n >= s && n < s + len)!;
    assertEquals(e.message, `unable to read L402 token ${what}: ${n === start ? "EOF" : "unexpected EOF"}`);
    assertEquals(e.code, "truncated");
  }
});

Deno.test("parseTokenFile() in requirePaid mode checks 'not paid' before the amount reads and the macaroon", () => {
  const f = loopTokenFixture(4, false, 5n);
  const unpaid = encodeTokenFile(f);
  const L = f.macaroonBytes.length;
  // cut right after the preimage: amounts missing
  const cut = unpaid.subarray(0, 68 + L);
  assertThrows(
    () => parseTokenFile(cut, { requirePaid: true }),
    TokenFileError,
    "backup L402 token is not paid",
  );
  assertThrows(() => parseTokenFile(cut), TokenFileError, "unable to read L402 token amount: EOF");
  // broken macaroon (version byte 3): still 'not paid' first
  const broken = unpaid.slice();
  broken[4] = 3;
  assertThrows(
    () => parseTokenFile(broken, { requirePaid: true }),
    TokenFileError,
    "backup L402 token is not paid",
  );
});

Deno.test("parseTokenFile() rejects a macaroon length beyond the file", () => {
  const bytes = hexToBytes(vector.l402_token_file);
  bytes.set(be(BigInt(bytes.length - 3), 4), 0);
  const e = assertThrows(() => parseTokenFile(bytes), TokenFileError, "invalid L402 token macaroon length");
  assertEquals(e.code, "bad_macaroon_length");
  bytes.set(be(0xffffffffn, 4), 0);
  assertThrows(() => parseTokenFile(bytes), TokenFileError, "invalid L402 token macaroon length");
});

Deno.test("parseTokenFile() wraps macaroon and identifier errors after the fixed fields", () => {
  const f = loopTokenFixture(1, true, 1n);
  const badMac = encodeTokenFile(f);
  badMac[4 + f.macaroonBytes.length - 33] = 0x1f; // signature packet length byte 0x20 → 0x1f
  const e1 = assertThrows(() => parseTokenFile(badMac), TokenFileError);
  assertEquals(
    e1.message,
    "unable to unmarshal L402 token macaroon: unmarshal v2: signature has unexpected length",
  );
  assertEquals(e1.code, "bad_macaroon");

  const v1id = new Uint8Array(66);
  v1id[1] = 1;
  const mac = encodeMacaroonV2(mintMacaroon("k", v1id));
  const badId = concatBytes(be(BigInt(mac.length), 4), mac, seeded(1), seeded(1), new Uint8Array(24));
  const e2 = assertThrows(() => parseTokenFile(badId), TokenFileError);
  assertEquals(e2.message, "unable to decode L402 token ID: unknown L402 version: 1");
  assertEquals(e2.code, "bad_identifier");
});

Deno.test("encodeTokenFile() refuses out-of-range fields and an undecodable macaroon", () => {
  const f = loopTokenFixture(1, true, 1n);
  assertThrows(() => encodeTokenFile({ ...f, amountPaidMsat: -1n }), RangeError);
  assertThrows(() => encodeTokenFile({ ...f, routingFeePaidMsat: 1n << 64n }), RangeError);
  assertThrows(() => encodeTokenFile({ ...f, createdAtNs: 1n << 63n }), RangeError);
  assertThrows(() => encodeTokenFile({ ...f, preimage: new Uint8Array(31) }), RangeError);
  assertThrows(() => encodeTokenFile({ ...f, macaroonBytes: Uint8Array.from([2, 0]) }), TokenFileError);
});
