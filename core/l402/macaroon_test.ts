import * as jsMacaroon from "macaroon";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import {
  addFirstPartyCaveat,
  decodeMacaroonV2,
  encodeMacaroonV2,
  type Macaroon,
  MacaroonError,
  mintMacaroon,
  verifyMacaroonSignature,
} from "./macaroon.ts";

const te = new TextEncoder();
const vector = JSON.parse(
  Deno.readTextFileSync(new URL("../../tests/fixtures/backup-v1.json", import.meta.url)),
);

// Builds a V2 macaroon by hand, packet by packet, independent of the encoder under test.
function pkt(type: number, data: number[] | Uint8Array): number[] {
  return [type, data.length, ...data];
}
const SIG = new Array(32).fill(0xab);

Deno.test("mintMacaroon() reproduces the vector macaroon (root key, identifier, location)", () => {
  const m = mintMacaroon(
    te.encode(vector.macaroon_root_key_utf8),
    hexToBytes(vector.l402_identifier),
    "loop.test",
  );
  assertEquals(bytesToHex(encodeMacaroonV2(m)), vector.macaroon_v2);
});

Deno.test("mintMacaroon() signature is HMAC(HMAC('macaroons-key-generator', rootKey), id)", () => {
  const root = te.encode("root");
  const id = te.encode("id");
  const expected = hmac(sha256, hmac(sha256, te.encode("macaroons-key-generator"), root), id);
  assertEquals(mintMacaroon(root, id).signature, expected);
});

Deno.test("encodeMacaroonV2() agrees with the npm macaroon package, with and without caveats", () => {
  const root = te.encode("loop-recovery-test-root-key");
  const id = hexToBytes(vector.l402_identifier);
  for (const loc of ["loop.test", undefined]) {
    const ours = addFirstPartyCaveat(mintMacaroon(root, id, loc), "preimage=" + "11".repeat(32));
    const theirs = jsMacaroon.newMacaroon({ identifier: id, location: loc, rootKey: root, version: 2 });
    theirs.addFirstPartyCaveat(te.encode("preimage=" + "11".repeat(32)));
    assertEquals(bytesToHex(encodeMacaroonV2(ours)), bytesToHex(theirs.exportBinary()));
  }
});

Deno.test("decodeMacaroonV2() reads what the npm macaroon package writes, including a third-party caveat", () => {
  const root = te.encode("root-key");
  const theirs = jsMacaroon.newMacaroon({
    identifier: te.encode("ident"),
    location: "here",
    rootKey: root,
    version: 2,
  });
  theirs.addFirstPartyCaveat(te.encode("a=b"));
  theirs.addThirdPartyCaveat(te.encode("third-root"), te.encode("tp-id"), "there");
  const m = decodeMacaroonV2(theirs.exportBinary());
  assertEquals(m.location, "here");
  assertEquals(m.identifier, te.encode("ident"));
  assertEquals(m.caveats.length, 2);
  assertEquals(m.caveats[0], { identifier: te.encode("a=b") });
  assertEquals(m.caveats[1].location, "there");
  assertEquals(m.caveats[1].identifier, te.encode("tp-id"));
  assert(m.caveats[1].verificationId !== undefined && m.caveats[1].verificationId.length > 0);
  assertEquals(m.signature, theirs.signature);
  // And the npm package reads our re-encoding back identically.
  assertEquals(bytesToHex(encodeMacaroonV2(m)), bytesToHex(theirs.exportBinary()));
});

Deno.test("verifyMacaroonSignature() accepts the right root key and rejects another or a changed caveat", () => {
  const m = addFirstPartyCaveat(mintMacaroon("root", te.encode("id"), "x"), "preimage=00");
  assert(verifyMacaroonSignature("root", m));
  assert(!verifyMacaroonSignature("other", m));
  const tampered: Macaroon = { ...m, caveats: [{ identifier: te.encode("preimage=01") }] };
  assert(!verifyMacaroonSignature("root", tampered));
});

Deno.test("decodeMacaroonV2() decodes a hand-built macaroon without location", () => {
  const bytes = Uint8Array.from([2, ...pkt(2, [7, 8]), 0, 0, ...pkt(6, SIG)]);
  const m = decodeMacaroonV2(bytes);
  assertEquals(m, { identifier: Uint8Array.from([7, 8]), caveats: [], signature: Uint8Array.from(SIG) });
  assertEquals(encodeMacaroonV2(m), bytes);
});

Deno.test("decodeMacaroonV2() accepts a non-minimal varint like Go's binary.Uvarint", () => {
  // identifier length 2 written as 0x82 0x00
  const bytes = Uint8Array.from([2, 2, 0x82, 0x00, 7, 8, 0, 0, ...pkt(6, SIG)]);
  assertEquals(decodeMacaroonV2(bytes).identifier, Uint8Array.from([7, 8]));
});

function rejects(bytes: number[], msg: string): void {
  assertThrows(() => decodeMacaroonV2(Uint8Array.from(bytes)), MacaroonError, msg);
}

Deno.test("decodeMacaroonV2() rejects empty input, V1 and unknown formats", () => {
  rejects([], "empty macaroon data");
  rejects([...te.encode("0123location")], "unmarshal v1");
  rejects([0x01, 0x00], "cannot determine data format");
});

Deno.test("decodeMacaroonV2() rejects varints above 0x7fffffff and 64-bit overflow", () => {
  // payload length 0x80000000 = 80 80 80 80 08
  rejects([2, 2, 0x80, 0x80, 0x80, 0x80, 0x08], "unmarshal v2: varint value out of range");
  // field type 2^31 - 1 is in range (the packet parses; the section then runs out), 2^31 is not
  rejects([2, 0xff, 0xff, 0xff, 0xff, 0x07, 0], "section extends past end of buffer");
  rejects([2, 0x80, 0x80, 0x80, 0x80, 0x08, 0], "varint value out of range");
  rejects([2, ...new Array(10).fill(0x80), 0x01], "varint value out of range");
  rejects([2, ...new Array(9).fill(0x80), 0x02], "varint value out of range");
});

Deno.test("decodeMacaroonV2() rejects non-increasing field types in a section", () => {
  rejects([2, ...pkt(2, [1]), ...pkt(1, [0x61]), 0, 0, ...pkt(6, SIG)], "fields out of order");
  rejects([2, ...pkt(2, [1]), ...pkt(2, [1]), 0, 0, ...pkt(6, SIG)], "fields out of order");
});

Deno.test("decodeMacaroonV2() rejects a bad header", () => {
  rejects([2, ...pkt(1, [0x61]), 0, 0, ...pkt(6, SIG)], "invalid macaroon header");
  rejects([2, ...pkt(2, [1]), ...pkt(3, [1]), 0, 0, ...pkt(6, SIG)], "invalid macaroon header");
  rejects([2, ...pkt(1, []), ...pkt(2, [1]), 0, 0, ...pkt(6, SIG)], "empty location");
  rejects([2, ...pkt(1, [0xff]), ...pkt(2, [1]), 0, 0, ...pkt(6, SIG)], "not valid UTF-8");
});

Deno.test("decodeMacaroonV2() rejects a first-party caveat with a location, even an empty one", () => {
  rejects(
    [2, ...pkt(2, [1]), 0, ...pkt(1, [0x61]), ...pkt(2, [5]), 0, 0, ...pkt(6, SIG)],
    "location not allowed",
  );
  rejects([2, ...pkt(2, [1]), 0, ...pkt(1, []), ...pkt(2, [5]), 0, 0, ...pkt(6, SIG)], "empty location");
});

Deno.test("decodeMacaroonV2() rejects malformed caveat sections", () => {
  rejects([2, ...pkt(2, [1]), 0, ...pkt(4, [5]), 0, 0, ...pkt(6, SIG)], "no identifier in caveat");
  rejects(
    [2, ...pkt(2, [1]), 0, ...pkt(2, [5]), ...pkt(3, [5]), 0, 0, ...pkt(6, SIG)],
    "invalid field found",
  );
  rejects(
    [2, ...pkt(2, [1]), 0, ...pkt(2, [5]), ...pkt(4, [5]), ...pkt(5, [5]), 0, 0, ...pkt(6, SIG)],
    "extra fields found",
  );
  rejects(
    [2, ...pkt(2, [1]), 0, ...pkt(2, [5]), ...pkt(4, []), 0, 0, ...pkt(6, SIG)],
    "empty verification ID",
  );
});

Deno.test("decodeMacaroonV2() rejects a wrong signature packet", () => {
  rejects([2, ...pkt(2, [1]), 0, 0, ...pkt(6, SIG.slice(1))], "signature has unexpected length");
  rejects([2, ...pkt(2, [1]), 0, 0, ...pkt(6, [...SIG, 0])], "signature has unexpected length");
  rejects([2, ...pkt(2, [1]), 0, 0, ...pkt(5, SIG)], "unexpected field found instead of signature");
  rejects([2, ...pkt(2, [1]), 0, 0, 0], "unexpected field found instead of signature");
});

Deno.test("decodeMacaroonV2() rejects every truncation of a valid macaroon and trailing bytes", () => {
  const full = hexToBytes(vector.macaroon_v2);
  decodeMacaroonV2(full);
  for (let n = 0; n < full.length; n++) {
    assertThrows(() => decodeMacaroonV2(full.subarray(0, n)), MacaroonError);
  }
  assertThrows(() => decodeMacaroonV2(Uint8Array.from([...full, 0])), MacaroonError, "extra data");
});

Deno.test("encodeMacaroonV2() refuses a 31-byte signature and a first-party caveat with location", () => {
  const m = mintMacaroon("k", te.encode("id"));
  assertThrows(() => encodeMacaroonV2({ ...m, signature: m.signature.slice(1) }), MacaroonError, "want 32");
  assertThrows(
    () => encodeMacaroonV2({ ...m, caveats: [{ identifier: te.encode("a"), location: "x" }] }),
    MacaroonError,
    "location not allowed",
  );
});
