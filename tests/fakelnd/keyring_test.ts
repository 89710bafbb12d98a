import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { HDKey } from "@scure/bip32";
import { deepStrictEqual as assertEquals, notDeepStrictEqual as assertNotEquals } from "node:assert/strict";
import { FakeKeyRing, lndSharedKey } from "./keyring.ts";

// spec/backup-and-recovery.md §1.5: the NUMS ephemeral key and the k = 1 sanity value.
const NUMS = "0215b5a3e0ef58b101431e1e513dd017d1018b420bd2e89dcd71f45c031f00469e";
const K1_SHARED_KEY = "55aea794201cef4fb5cee0ed634027e9da12fe4c19bb42584d25248f9dc58bb7";
const SEED = hexToBytes("000102030405060708090a0b0c0d0e0f");

/** Independent ECDH: scalar multiplication on the curve point, compressed, SHA-256. */
function expectedSharedKey(k: Uint8Array, pub: string): Uint8Array {
  const point = secp256k1.Point.fromHex(pub).multiply(BigInt("0x" + bytesToHex(k)));
  return sha256(point.toBytes(true));
}

Deno.test("lndSharedKey() with k = 1 gives the spec's sanity value for the NUMS key", () => {
  const one = new Uint8Array(32);
  one[31] = 1;
  assertEquals(bytesToHex(lndSharedKey(one, hexToBytes(NUMS))), K1_SHARED_KEY);
});

Deno.test("FakeKeyRing.sharedKey() equals SHA-256 of the compressed point k·NUMS for locator (42060, 0)", () => {
  const ring = new FakeKeyRing(SEED, "regtest");
  const k = HDKey.fromMasterSeed(SEED).derive("m/1017'/1'/42060'/0/0").privateKey!;
  assertEquals(ring.sharedKey(hexToBytes(NUMS), 42060, 0), expectedSharedKey(k, NUMS));
  // A different locator gives a different key (the locator is honoured).
  assertNotEquals(ring.sharedKey(hexToBytes(NUMS), 42060, 1), expectedSharedKey(k, NUMS));
});

Deno.test("FakeKeyRing derives at m/1017'/coin'/family'/0/index with coin 1 off mainnet and 0 on mainnet", () => {
  const root = HDKey.fromMasterSeed(SEED);
  const cases: [network: string, family: number, index: number, path: string][] = [
    ["regtest", 42060, 7, "m/1017'/1'/42060'/0/7"],
    ["testnet", 42061, 0, "m/1017'/1'/42061'/0/0"],
    ["mainnet", 42060, 7, "m/1017'/0'/42060'/0/7"],
  ];
  for (const [network, family, index, path] of cases) {
    assertEquals(new FakeKeyRing(SEED, network).publicKey(family, index), root.derive(path).publicKey, path);
  }
  assertNotEquals(
    new FakeKeyRing(SEED, "mainnet").publicKey(42060, 7),
    root.derive("m/1017'/1'/42060'/0/7").publicKey,
  );
});
