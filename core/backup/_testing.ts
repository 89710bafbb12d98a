/**
 * Test helpers for core/backup (not part of the public surface): the vector fixture, an lnd
 * stand-in that implements the real `DeriveSharedKey` formula, and builders for crafted files.
 *
 * @module
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import type { KeyLocator, LndClient } from "../../lnd/types.ts";
import { treeHash as hashTree } from "../../tests/fs.ts";
import { loopTokenFixture, seeded } from "../l402/_testing.ts";
import { encodeTokenFile } from "../l402/token_file.ts";
import type { BackupAddressParams, BackupPayload, StaticAddressBackup } from "./types.ts";

export { seeded };

/** The backup-v1 vector (source: /work/shared/vectors/backup-v1.json, copied to tests/fixtures). */
// deno-lint-ignore no-explicit-any
export const vector: any = JSON.parse(
  Deno.readTextFileSync(new URL("../../tests/fixtures/backup-v1.json", import.meta.url)),
);

/** `SHA-256(compressed(k · P))` computed from the curve, as lnd computes DeriveSharedKey. */
export function lndSharedKey(privateKey: Uint8Array, ephemeralPubkey: Uint8Array): Uint8Array {
  const k = BigInt("0x" + bytesToHex(privateKey));
  const point = secp256k1.Point.fromBytes(ephemeralPubkey).multiply(k);
  return sha256(point.toBytes(true));
}

/** An lnd stand-in for `deriveSharedKey` that records its calls. Keys are per locator "family/index". */
export class FakeLnd implements Pick<LndClient, "deriveSharedKey"> {
  calls: { ephemeralPubkey: Uint8Array; keyLoc: KeyLocator }[] = [];
  constructor(readonly keys: Record<string, Uint8Array>) {}
  deriveSharedKey(ephemeralPubkey: Uint8Array, keyLoc: KeyLocator): Promise<Uint8Array> {
    this.calls.push({ ephemeralPubkey: ephemeralPubkey.slice(), keyLoc: { ...keyLoc } });
    const priv = this.keys[`${keyLoc.family}/${keyLoc.index}`];
    if (!priv) return Promise.reject(new Error(`no key at ${keyLoc.family}/${keyLoc.index}`));
    return Promise.resolve(lndSharedKey(priv, ephemeralPubkey));
  }
}

/** The vector's lnd: private key 0101…01 at (42060, 0). */
export function vectorLnd(): FakeLnd {
  return new FakeLnd({ "42060/0": hexToBytes(vector.lnd_private_key_at_42060_0) });
}

/** Token ID hex of Loop's fixture with `seed`. */
export function seededTokenId(seed: number): string {
  return bytesToHex(seeded(seed));
}

/** Loop's token fixture (spec §8) as `l402.token` bytes. */
export function tokenFileBytes(seed: number, createdAtNs: bigint, paid = true): Uint8Array {
  return encodeTokenFile(loopTokenFixture(seed, paid, createdAtNs));
}

/** A complete valid payload for Loop's fixture with `seed` (address fields from the vector). */
export function payloadFor(seed: number, createdAtNs: bigint, network = "testnet"): BackupPayload {
  return {
    version: 1,
    network,
    l402TokenId: seededTokenId(seed),
    l402TokenCreatedAtNs: createdAtNs,
    staticAddress: vectorStaticAddressBackup(),
    tokenFiles: [{ name: "l402.token", data: tokenFileBytes(seed, createdAtNs) }],
  };
}

/** The static address of the vector's backup payload (its pubkeys; expiry 144; heights 321 and 654). */
export function vectorStaticAddressBackup(): StaticAddressBackup {
  return {
    protocolVersion: 0,
    clientPubkey: hexToBytes(vector.client_pubkey),
    serverPubkey: hexToBytes(vector.server_pubkey),
    expiry: 144,
    legacyClientKeyFamily: 42060,
    mainKeyFamily: 42061,
    changeKeyFamily: 42062,
    legacyFirstHeight: 321,
    multiAddressFirstHeight: 654,
  };
}

/** The vector's static address as the database layer would hand it over. */
export function vectorAddress(): BackupAddressParams {
  return {
    clientPubkey: hexToBytes(vector.client_pubkey),
    serverPubkey: hexToBytes(vector.server_pubkey),
    expiry: 144,
    protocolVersion: 0,
    clientKeyFamily: 42060,
    clientKeyIndex: 7,
    initiationHeight: 321,
  };
}

/** A fixed test key (not the vector's): SHA-256 of a label. */
export const TEST_KEY: Uint8Array = sha256(new TextEncoder().encode("loopkit backup test key"));

/** Deterministic PRNG (mulberry32) for reproducible property tests. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Names, types, modes, sizes, mtimes and content hashes of every entry below `dir`, recursively: equal
 * before and after ⇒ nothing was written, not even a file rewritten with the same bytes.
 */
export const treeHash = (dir: string): Promise<string> => hashTree(dir, { mtimes: true });
