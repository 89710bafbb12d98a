/**
 * Tests for outpoint strings and txid byte order. Expected txids come from transactions hashed
 * here (double SHA-256 of the serialisation) and from btc-signer's `Transaction.id`.
 */
import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { p2wpkh, Transaction } from "@scure/btc-signer";
import { LoopkitError } from "../errors.ts";
import { formatOutpoint, isTxid, parseOutpoint, txidFromBytes, txidToBytes } from "./outpoint.ts";

/** The mainnet genesis block's coinbase transaction (public, immutable fact). */
const GENESIS_COINBASE_HEX =
  "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff" +
  "4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b20" +
  "6f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967" +
  "f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf1" +
  "1d5fac00000000";
/** Its txid as every block explorer displays it. */
const GENESIS_TXID = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";

const TXID = "a".repeat(63) + "0";

function assertInvalidOutpoint(input: string, msgIncludes: string): void {
  const err = assertThrows(() => parseOutpoint(input), LoopkitError, msgIncludes);
  assertEquals(err.code, "invalid_outpoint");
  assertEquals(err.exitCode, 2);
  if (!err.message.startsWith(`outpoint: cannot parse ${JSON.stringify(input)}: `)) {
    throw new Error(`message does not name the input: ${err.message}`);
  }
}

Deno.test("txidFromBytes() of the double SHA-256 of the genesis coinbase is its displayed txid", () => {
  const internal = sha256(sha256(hex.decode(GENESIS_COINBASE_HEX)));
  assertEquals(txidFromBytes(internal), GENESIS_TXID);
  assertEquals(txidToBytes(GENESIS_TXID), internal);
});

Deno.test("txidFromBytes() agrees with btc-signer's Transaction.id", () => {
  const tx = new Transaction();
  tx.addInput({ txid: GENESIS_TXID, index: 0 });
  tx.addOutput({
    script: p2wpkh(hex.decode("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")).script,
    amount: 1000n,
  });
  const internal = sha256(sha256(tx.toBytes(false)));
  assertEquals(txidFromBytes(internal), tx.id);
});

Deno.test("txidToBytes() and txidFromBytes() are inverse and do not alias their input", () => {
  const bytes = Uint8Array.from({ length: 32 }, (_, i) => i);
  const copy = Uint8Array.from(bytes);
  const display = txidFromBytes(bytes);
  assertEquals(bytes, copy);
  assertEquals(display.slice(0, 4), "1f1e");
  assertEquals(txidToBytes(display), bytes);
});

Deno.test("txidFromBytes() rejects anything but 32 bytes", () => {
  for (const n of [0, 31, 33]) {
    const err = assertThrows(
      () => txidFromBytes(new Uint8Array(n)),
      LoopkitError,
      `want 32 bytes, got ${n} bytes`,
    );
    assertEquals(err.exitCode, 1);
  }
});

Deno.test("txidToBytes() rejects upper-case and short txids", () => {
  assertThrows(() => txidToBytes(GENESIS_TXID.toUpperCase()), LoopkitError, "upper-case");
  assertThrows(() => txidToBytes(GENESIS_TXID.slice(2)), LoopkitError, "not 64 hex digits");
});

Deno.test("parseOutpoint() parses txid and vout and formatOutpoint() gives the same string back", () => {
  for (const s of [`${GENESIS_TXID}:0`, `${TXID}:1`, `${TXID}:4294967295`, `${TXID}:10`]) {
    const op = parseOutpoint(s);
    assertEquals(formatOutpoint(op), s);
  }
  assertEquals(parseOutpoint(`${GENESIS_TXID}:7`), { txid: GENESIS_TXID, vout: 7 });
});

Deno.test("parseOutpoint() accepts an upper- or mixed-case txid as lncli does, returning it in lower case", () => {
  assertEquals(parseOutpoint(`${GENESIS_TXID.toUpperCase()}:0`), { txid: GENESIS_TXID, vout: 0 });
  const mixed = GENESIS_TXID.slice(0, 32).toUpperCase() + GENESIS_TXID.slice(32);
  assertEquals(parseOutpoint(`${mixed}:3`), { txid: GENESIS_TXID, vout: 3 });
});

Deno.test("parseOutpoint() rejects txids that are not 64 hex digits", () => {
  assertInvalidOutpoint(`${TXID.slice(1)}:0`, "txid is not 64 hex digits (got 63 characters)");
  assertInvalidOutpoint(`${TXID}0:0`, "txid is not 64 hex digits (got 65 characters)");
  assertInvalidOutpoint(`${"g".repeat(64)}:0`, "txid is not 64 hex digits");
  assertInvalidOutpoint(`0x${TXID.slice(2)}:0`, "txid is not 64 hex digits");
});

Deno.test("parseOutpoint() needs exactly one colon", () => {
  assertInvalidOutpoint(TXID, `want exactly one ":" between txid and output index, found 0`);
  assertInvalidOutpoint(`${TXID}:1:2`, "found 2");
});

Deno.test("parseOutpoint() rejects non-canonical output indexes", () => {
  for (const vout of ["", "01", "+1", "-1", " 1", "1 ", "1e3", "0x1", "1.0"]) {
    assertInvalidOutpoint(`${TXID}:${vout}`, "is not a decimal number without leading zeros");
  }
});

Deno.test("parseOutpoint() rejects output indexes above uint32", () => {
  assertInvalidOutpoint(`${TXID}:4294967296`, "output index 4294967296 exceeds 4294967295");
  assertInvalidOutpoint(`${TXID}:99999999999`, "is not a decimal number without leading zeros");
});

Deno.test("formatOutpoint() refuses malformed outpoints", () => {
  assertThrows(() => formatOutpoint({ txid: TXID.toUpperCase(), vout: 0 }), LoopkitError, "upper-case");
  assertThrows(
    () => formatOutpoint({ txid: TXID, vout: -1 }),
    LoopkitError,
    "not an unsigned 32-bit integer",
  );
  assertThrows(
    () => formatOutpoint({ txid: TXID, vout: 1.5 }),
    LoopkitError,
    "not an unsigned 32-bit integer",
  );
  assertThrows(
    () => formatOutpoint({ txid: TXID, vout: 2 ** 32 }),
    LoopkitError,
    "not an unsigned 32-bit integer",
  );
});

Deno.test("isTxid() accepts only 64 lower-case hex digits", () => {
  assertEquals(isTxid(GENESIS_TXID), true);
  assertEquals(isTxid(GENESIS_TXID.toUpperCase()), false);
  assertEquals(isTxid(GENESIS_TXID.slice(1)), false);
});
