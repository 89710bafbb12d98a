import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { assert, assertEquals, assertNotEquals, assertRejects, assertThrows } from "../../tests/assert.ts";
import { LoopkitError } from "../errors.ts";
import {
  BACKUP_KEY_LOCATOR,
  BACKUP_MAGIC,
  backupKeyFromSharedKey,
  deriveBackupKey,
  openBackup,
  sealBackup,
  SHARED_KEY_NUMS_PUBKEY,
  SHARED_KEY_NUMS_PUBKEY_HEX,
} from "./envelope.ts";
import { FakeLnd, lndSharedKey, TEST_KEY, vector, vectorLnd } from "./_testing.ts";
import { BackupInvalidError } from "./types.ts";

const te = new TextEncoder();

Deno.test("constants: NUMS pubkey, locator (42060, 0), magic 'loopbak1'", () => {
  assertEquals(SHARED_KEY_NUMS_PUBKEY_HEX, vector.nums_pubkey);
  assertEquals(bytesToHex(SHARED_KEY_NUMS_PUBKEY), vector.nums_pubkey);
  assertEquals({ ...BACKUP_KEY_LOCATOR }, { family: 42060, index: 0 });
  assertEquals(bytesToHex(BACKUP_MAGIC), "6c6f6f7062616b31");
  // NUMS is a valid curve point.
  secp256k1.Point.fromBytes(SHARED_KEY_NUMS_PUBKEY).assertValidity();
});

Deno.test("lnd's shared key for private key 0101…01 equals the vector backup key", () => {
  const priv = hexToBytes(vector.lnd_private_key_at_42060_0);
  const point = secp256k1.Point.fromBytes(SHARED_KEY_NUMS_PUBKEY).multiply(BigInt("0x" + bytesToHex(priv)));
  assertEquals(bytesToHex(point.toBytes(true)), vector.shared_point_compressed);
  assertEquals(bytesToHex(sha256(point.toBytes(true))), vector.backup_key);
  assertEquals(bytesToHex(lndSharedKey(priv, SHARED_KEY_NUMS_PUBKEY)), vector.backup_key);
});

Deno.test("sanity: k = 1 gives SHA-256 of NUMS itself", () => {
  const k1 = hexToBytes(vector.sanity_k1.private_key);
  assertEquals(bytesToHex(lndSharedKey(k1, SHARED_KEY_NUMS_PUBKEY)), vector.sanity_k1.backup_key);
  assertEquals(
    vector.sanity_k1.backup_key,
    "55aea794201cef4fb5cee0ed634027e9da12fe4c19bb42584d25248f9dc58bb7",
  );
  assertEquals(bytesToHex(sha256(SHARED_KEY_NUMS_PUBKEY)), vector.sanity_k1.backup_key);
});

Deno.test("deriveBackupKey() makes exactly one DeriveSharedKey call with NUMS and (42060, 0)", async () => {
  const lnd = vectorLnd();
  const key = await deriveBackupKey(lnd);
  assertEquals(bytesToHex(key), vector.backup_key);
  assertEquals(lnd.calls.length, 1);
  assertEquals(lnd.calls[0].ephemeralPubkey, hexToBytes(vector.nums_pubkey));
  assertEquals(lnd.calls[0].keyLoc, { family: 42060, index: 0 });
});

Deno.test("deriveBackupKey() refuses a key that is not 32 bytes", async () => {
  const lnd = { deriveSharedKey: () => Promise.resolve(new Uint8Array(31)) };
  await assertRejects(() => deriveBackupKey(lnd), LoopkitError, "31 bytes");
  await assertRejects(() => deriveBackupKey(new FakeLnd({})), Error, "no key at 42060/0");
  assertThrows(() => backupKeyFromSharedKey(new Uint8Array(33)), LoopkitError, "33 bytes");
  assertEquals(backupKeyFromSharedKey(TEST_KEY), TEST_KEY);
});

Deno.test("sealBackup() with the vector key and nonce reproduces the vector file and its SHA-256", () => {
  const key = hexToBytes(vector.backup_key);
  const file = sealBackup(key, te.encode(vector.plaintext_json), hexToBytes(vector.nonce));
  assertEquals(bytesToHex(file), vector.file);
  assertEquals(bytesToHex(sha256(file)), vector.file_sha256);
  assertEquals(file.length, 48 + te.encode(vector.plaintext_json).length);
});

Deno.test("openBackup() returns the vector plaintext", () => {
  const plain = openBackup(hexToBytes(vector.backup_key), hexToBytes(vector.file));
  assertEquals(new TextDecoder().decode(plain), vector.plaintext_json);
});

Deno.test("sealBackup() draws a fresh nonce per call and the sealed bytes differ from the plaintext", () => {
  const plain = te.encode("hello");
  const a = sealBackup(TEST_KEY, plain);
  const b = sealBackup(TEST_KEY, plain);
  assertNotEquals(a.subarray(8, 32), b.subarray(8, 32));
  assert(!bytesToHex(a).includes(bytesToHex(plain)));
  assertEquals(openBackup(TEST_KEY, a), plain);
  assertEquals(openBackup(TEST_KEY, b), plain);
});

function reason(key: Uint8Array, bytes: Uint8Array): string {
  return assertThrows(() => openBackup(key, bytes), BackupInvalidError).reason;
}

Deno.test("openBackup() fails in Loop's order: too short, unknown format, undecryptable", () => {
  const file = sealBackup(TEST_KEY, te.encode("{}"));
  assertEquals(reason(TEST_KEY, file.subarray(0, 31)), "too_short");
  assertEquals(reason(TEST_KEY, new Uint8Array(31)), "too_short"); // short wins over bad magic
  assertEquals(reason(TEST_KEY, new Uint8Array(32)), "unknown_format");
  assertEquals(reason(TEST_KEY, file.subarray(0, 32)), "undecryptable");
  assertEquals(reason(TEST_KEY, file.subarray(0, 47)), "undecryptable");
  assertEquals(reason(hexToBytes(vector.backup_key), file), "undecryptable");
  const flipped = file.slice();
  flipped[40] ^= 1;
  assertEquals(reason(TEST_KEY, flipped), "undecryptable");
  const e = assertThrows(() => openBackup(TEST_KEY, new Uint8Array(40)), BackupInvalidError);
  assertEquals(e.message, "backup file has an unknown format");
  assertEquals(e.exitCode, 3);
});

Deno.test("sealBackup() and openBackup() refuse a key that is not 32 bytes", () => {
  assertThrows(() => sealBackup(new Uint8Array(31), new Uint8Array(0)), RangeError);
  assertThrows(() => sealBackup(TEST_KEY, new Uint8Array(0), new Uint8Array(23)), RangeError);
  assertThrows(() => openBackup(new Uint8Array(33), new Uint8Array(64)), RangeError);
});
