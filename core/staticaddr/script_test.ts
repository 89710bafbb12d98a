/**
 * Tests for the static address construction.
 *
 * Fixture: tests/fixtures/static-address.json, a verbatim copy of shared/vectors/static-address.json
 * (the project's given vectors for protocol V0). Every expected value is taken from that file or
 * computed here by a second path that shares no code with script.ts:
 * - BIP-327 KeyAgg written out below on @noble/curves points and @noble/hashes SHA-256;
 * - BIP-341 tweak, pkScript, address and control block from @scure/btc-signer's `p2tr`;
 * - the BIP-327 x-only tweak of @scure/btc-signer/musig2.js (what lnd's MuSig2CombineKeys does).
 */
import { assert, assertEquals, assertNotEquals, assertThrows } from "../../tests/assert.ts";
import { bech32m, hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { Script, TaprootControlBlock } from "@scure/btc-signer";
import { p2tr, tapLeafHash as btcSignerTapLeafHash } from "@scure/btc-signer/payment.js";
import { keyAggregate, sortKeys } from "@scure/btc-signer/musig2.js";
import { LoopkitError } from "../errors.ts";
import { NETWORK_NAMES, type NetworkName, NETWORKS } from "./network.ts";
import {
  aggregateInternalKey,
  csvPush,
  MAX_CSV_EXPIRY,
  protocolVersionName,
  staticAddress,
  tapLeafHash,
  timeoutLeafScript,
  validateExpiry,
  validateProtocolVersion,
  validateServerAddressParams,
  validateServerPubkey,
} from "./script.ts";
import vectors from "../../tests/fixtures/static-address.json" with { type: "json" };

const Point = secp256k1.Point;
const N = Point.Fn.ORDER;

// ---------------------------------------------------------------------------------------------
// Second path: BIP-327 KeyAgg and BIP-341 via code that does not share script.ts's helpers.
// ---------------------------------------------------------------------------------------------

function taggedSha256(tag: string, ...parts: Uint8Array[]): Uint8Array {
  const tagHash = sha256(new TextEncoder().encode(tag));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const msg = new Uint8Array(64 + total);
  msg.set(tagHash, 0);
  msg.set(tagHash, 32);
  let off = 64;
  for (const p of parts) {
    msg.set(p, off);
    off += p.length;
  }
  return sha256(msg);
}

function int(bytes: Uint8Array): bigint {
  return BigInt("0x" + (hex.encode(bytes) || "0"));
}

/** BIP-327 KeyAgg written from the BIP text: sort, L, second-key rule, Σ a_i·K_i. */
function bip327KeyAgg(keys: Uint8Array[]): Uint8Array {
  const sorted = [...keys].sort((a, b) => hex.encode(a).localeCompare(hex.encode(b)));
  const l = taggedSha256("KeyAgg list", ...sorted);
  const second = sorted.find((k) => hex.encode(k) !== hex.encode(sorted[0]));
  let acc = Point.ZERO;
  for (const k of sorted) {
    const a = second !== undefined && hex.encode(k) === hex.encode(second)
      ? 1n
      : int(taggedSha256("KeyAgg coefficient", l, k)) % N;
    acc = acc.add(Point.fromBytes(k).multiply(a));
  }
  return acc.toBytes(true);
}

interface Expected {
  timeoutLeafScript: string;
  tapLeafHash: string;
  internalKey: string;
  outputKeyXOnly: string;
  pkScript: string;
  controlBlock: string;
  address: string;
}

/** Everything staticAddress() returns, computed through @scure/btc-signer's p2tr and musig2 tweak. */
function secondPath(client: Uint8Array, server: Uint8Array, csv: number, network: NetworkName): Expected {
  // Leaf through btc-signer's Script encoder (minimal number push) rather than our csvPush.
  const leaf = Script.encode([client.subarray(1), "CHECKSIGVERIFY", csv, "CHECKSEQUENCEVERIFY"]);
  const internal = bip327KeyAgg([client, server]);
  const pay = p2tr(
    internal.subarray(1),
    { script: leaf, leafVersion: 0xc0 },
    NETWORKS[network].btcSigner,
    true,
  );
  assertEquals(pay.leaves.length, 1);
  const leafScripts = pay.tapLeafScript;
  assert(leafScripts !== undefined && leafScripts.length === 1, "p2tr returns one leaf script");
  return {
    timeoutLeafScript: hex.encode(leaf),
    tapLeafHash: hex.encode(btcSignerTapLeafHash(leaf, 0xc0)),
    internalKey: hex.encode(internal),
    outputKeyXOnly: hex.encode(pay.tweakedPubkey),
    pkScript: hex.encode(pay.script),
    controlBlock: hex.encode(TaprootControlBlock.encode(leafScripts[0][0])),
    address: pay.address,
  };
}

function ours(client: Uint8Array, server: Uint8Array, csv: number, network: NetworkName): Expected {
  const a = staticAddress({ clientPubkey: client, serverPubkey: server, csvExpiry: csv, network });
  return {
    timeoutLeafScript: hex.encode(a.timeoutLeafScript),
    tapLeafHash: hex.encode(a.tapLeafHash),
    internalKey: hex.encode(a.internalKey),
    outputKeyXOnly: hex.encode(a.outputKey.subarray(1)),
    pkScript: hex.encode(a.pkScript),
    controlBlock: hex.encode(a.controlBlock),
    address: a.address,
  };
}

function pubkeyOf(secret: bigint): Uint8Array {
  return Point.BASE.multiply(secret).toBytes(true);
}

function assertInvalid(fn: () => unknown, code: string, msgIncludes: string): LoopkitError {
  const err = assertThrows(fn, LoopkitError, msgIncludes);
  assertEquals(err.code, code);
  return err;
}

// ---------------------------------------------------------------------------------------------
// The given vectors.
// ---------------------------------------------------------------------------------------------

const vectorNetworks: Record<string, NetworkName[]> = {
  mainnet: ["mainnet"],
  testnet: ["testnet", "testnet4", "signet"],
  regtest: ["regtest"],
};

for (const [i, v] of vectors.vectors.entries()) {
  Deno.test(`staticAddress() reproduces every value of vector ${i} (csv ${v.csv_expiry})`, () => {
    const client = hex.decode(v.client_pubkey);
    const server = hex.decode(v.server_pubkey);
    for (const [vectorNet, networks] of Object.entries(vectorNetworks)) {
      for (const network of networks) {
        const a = staticAddress({
          clientPubkey: client,
          serverPubkey: server,
          csvExpiry: v.csv_expiry,
          network,
        });
        assertEquals(hex.encode(a.timeoutLeafScript), v.timeout_leaf_script);
        assertEquals(hex.encode(a.tapLeafHash), v.tap_leaf_hash);
        assertEquals(hex.encode(a.internalKey), v.internal_key);
        assertEquals(hex.encode(a.internalKeyXOnly), v.internal_key.slice(2));
        assertEquals(hex.encode(a.tapTweak), v.tap_tweak);
        assertEquals(hex.encode(a.outputKey), v.output_key);
        assertEquals(hex.encode(a.pkScript), v.pk_script);
        assertEquals(hex.encode(a.controlBlock), v.control_block);
        assertEquals(a.address, (v.address as Record<string, string>)[vectorNet], `address on ${network}`);
      }
    }
  });

  Deno.test(`vector ${i} agrees with the second path (hand BIP-327 KeyAgg + btc-signer p2tr)`, () => {
    const client = hex.decode(v.client_pubkey);
    const server = hex.decode(v.server_pubkey);
    const other = secondPath(client, server, v.csv_expiry, "mainnet");
    assertEquals(other.timeoutLeafScript, v.timeout_leaf_script);
    assertEquals(other.tapLeafHash, v.tap_leaf_hash);
    assertEquals(other.internalKey, v.internal_key);
    assertEquals(other.outputKeyXOnly, v.output_key.slice(2));
    assertEquals(other.pkScript, v.pk_script);
    assertEquals(other.controlBlock, v.control_block);
    assertEquals(other.address, v.address.mainnet);
  });

  Deno.test(`vector ${i}: BIP-327 x-only tweak of the aggregate equals the BIP-341 output key`, () => {
    // lnd's MuSig2CombineKeys(TaprootTweak = root) path: KeyAgg, then an x-only tweak by t.
    const keys = sortKeys([hex.decode(v.client_pubkey), hex.decode(v.server_pubkey)]);
    const tweaked = keyAggregate(keys, [hex.decode(v.tap_tweak)], [true]);
    assertEquals(hex.encode(tweaked.aggPublicKey.toBytes(true)), v.output_key);
    // And the tweak is TaggedHash("TapTweak", x(P) || leaf hash), recomputed with plain SHA-256.
    const t = taggedSha256("TapTweak", hex.decode(v.internal_key).subarray(1), hex.decode(v.tap_leaf_hash));
    assertEquals(hex.encode(t), v.tap_tweak);
  });
}

Deno.test("the vectors' keys are the private keys 2 and 3 of Loop's script test", () => {
  // spec/static-address-and-deposits.md §2.10: client = privkey 2, server = privkey 3, CSV 10.
  assertEquals(hex.encode(pubkeyOf(2n)), vectors.vectors[0].client_pubkey);
  assertEquals(hex.encode(pubkeyOf(3n)), vectors.vectors[0].server_pubkey);
});

Deno.test("csvPush() matches every entry of the vectors' csv_push_encodings table", () => {
  const entries = Object.entries(vectors.csv_push_encodings);
  assert(entries.length >= 13, "the table should not be empty");
  for (const [value, encoding] of entries) {
    assertEquals(hex.encode(csvPush(Number(value))), encoding, `csvPush(${value})`);
  }
});

Deno.test("timeoutLeafScript() embeds the table's push between OP_CHECKSIGVERIFY and OP_CHECKSEQUENCEVERIFY", () => {
  const client = hex.decode(vectors.vectors[0].client_pubkey);
  for (const [value, encoding] of Object.entries(vectors.csv_push_encodings)) {
    const script = hex.encode(timeoutLeafScript(client, Number(value)));
    assertEquals(script, "20" + vectors.vectors[0].client_pubkey.slice(2) + "ad" + encoding + "b2");
  }
});

Deno.test("csvPush() agrees with btc-signer's minimal number encoding for every legal expiry", () => {
  for (let e = 1; e <= MAX_CSV_EXPIRY; e++) {
    const theirs = Script.encode([e]);
    const mine = csvPush(e);
    if (hex.encode(theirs) !== hex.encode(mine)) {
      throw new Error(`csvPush(${e}) = ${hex.encode(mine)}, btc-signer = ${hex.encode(theirs)}`);
    }
  }
});

Deno.test("timeout leaf is 36, 37 or 38 bytes depending on the expiry", () => {
  const client = pubkeyOf(2n);
  assertEquals(timeoutLeafScript(client, 16).length, 36);
  assertEquals(timeoutLeafScript(client, 17).length, 37);
  assertEquals(timeoutLeafScript(client, 127).length, 37);
  assertEquals(timeoutLeafScript(client, 128).length, 38);
  assertEquals(timeoutLeafScript(client, MAX_CSV_EXPIRY).length, 38);
});

Deno.test("timeout leaf drops the client key's Y parity (x-only)", () => {
  const even = pubkeyOf(2n);
  const odd = Point.fromBytes(even).negate().toBytes(true);
  assertEquals(odd[0], 0x03);
  assertEquals(timeoutLeafScript(odd, 10), timeoutLeafScript(even, 10));
});

Deno.test("tapLeafHash() matches btc-signer's tapLeafHash", () => {
  const leaf = timeoutLeafScript(pubkeyOf(7n), 144);
  assertEquals(tapLeafHash(leaf), btcSignerTapLeafHash(leaf, 0xc0));
});

// ---------------------------------------------------------------------------------------------
// Beyond the vectors: other inputs, every network, through both paths.
// ---------------------------------------------------------------------------------------------

Deno.test("staticAddress() agrees with the second path for Loop's manager test inputs on every network", () => {
  // spec §2.10: client = privkey 1, server 021c97…0d, expiry 100 (Loop asserts no literal).
  const client = pubkeyOf(1n);
  const server = hex.decode("021c97a90a411ff2b10dc2a8e32de2f29d2fa49d41bfbb52bd416e460db0747d0d");
  for (const network of NETWORK_NAMES) {
    assertEquals(ours(client, server, 100, network), secondPath(client, server, 100, network), network);
  }
});

Deno.test("staticAddress() agrees with the second path for random keys and expiries", () => {
  const expiries = [1, 2, 16, 17, 127, 128, 144, 255, 256, 1008, 4032, 14400, 28799, MAX_CSV_EXPIRY];
  for (let i = 0; i < 24; i++) {
    const client = pubkeyOf(int(secp256k1.utils.randomSecretKey()));
    const server = pubkeyOf(int(secp256k1.utils.randomSecretKey()));
    const csv = expiries[i % expiries.length];
    const network = NETWORK_NAMES[i % NETWORK_NAMES.length];
    assertEquals(ours(client, server, csv, network), secondPath(client, server, csv, network));
  }
});

Deno.test("staticAddress() uses each network's HRP and a witness v1 program equal to x(Q)", () => {
  const client = pubkeyOf(2n);
  const server = pubkeyOf(3n);
  const want: Record<NetworkName, string> = {
    mainnet: "bc",
    testnet: "tb",
    testnet4: "tb",
    signet: "tb",
    regtest: "bcrt",
    simnet: "sb",
  };
  for (const network of NETWORK_NAMES) {
    const a = staticAddress({ clientPubkey: client, serverPubkey: server, csvExpiry: 10, network });
    const decoded = bech32m.decode(a.address as `${string}1${string}`);
    assertEquals(decoded.prefix, want[network]);
    assertEquals(decoded.words[0], 1);
    assertEquals(bech32m.fromWords(decoded.words.slice(1)), a.outputKey.subarray(1));
  }
});

Deno.test("the internal key does not depend on which key is the client's (keys are sorted)", () => {
  const a = pubkeyOf(11n);
  const b = pubkeyOf(12n);
  assertEquals(aggregateInternalKey(a, b), aggregateInternalKey(b, a));
  // ...but the address does, because only the client key is in the timeout leaf.
  const ab = staticAddress({ clientPubkey: a, serverPubkey: b, csvExpiry: 10, network: "regtest" });
  const ba = staticAddress({ clientPubkey: b, serverPubkey: a, csvExpiry: 10, network: "regtest" });
  assertNotEquals(ab.address, ba.address);
});

Deno.test("the internal key is not the plain sum of the two keys (MuSig2 coefficients apply)", () => {
  const a = pubkeyOf(2n);
  const b = pubkeyOf(3n);
  assertNotEquals(aggregateInternalKey(a, b), pubkeyOf(5n));
});

Deno.test("staticAddress() returns fresh buffers that do not alias its inputs", () => {
  const client = pubkeyOf(2n);
  const server = pubkeyOf(3n);
  const a = staticAddress({ clientPubkey: client, serverPubkey: server, csvExpiry: 10, network: "regtest" });
  a.internalKeyXOnly.fill(0);
  a.timeoutLeafScript.fill(0);
  assertEquals(hex.encode(client), vectors.vectors[0].client_pubkey);
  const b = staticAddress({ clientPubkey: client, serverPubkey: server, csvExpiry: 10, network: "regtest" });
  assertEquals(hex.encode(b.internalKey), vectors.vectors[0].internal_key);
  assertEquals(hex.encode(b.controlBlock), vectors.vectors[0].control_block);
});

// ---------------------------------------------------------------------------------------------
// Validation.
// ---------------------------------------------------------------------------------------------

Deno.test("validateExpiry() accepts 1 and 28800 and everything between", () => {
  for (let e = 1; e <= MAX_CSV_EXPIRY; e++) validateExpiry(e);
  assertEquals(MAX_CSV_EXPIRY, 28800);
});

Deno.test("validateExpiry() rejects 0 as out of range", () => {
  assertInvalid(() => validateExpiry(0), "invalid_static_address", "staticAddress: expiry 0 is out of range");
});

Deno.test("validateExpiry() rejects 28801 as above the maximum", () => {
  assertInvalid(() => validateExpiry(28801), "invalid_static_address", "expiry 28801 is out of range");
});

Deno.test("validateExpiry() rejects values with CSV flag or high bits as not fitting a block CSV", () => {
  for (const e of [0x1_0000, 1 << 22 | 10, 0x8000_0000, 0xffff_ffff]) {
    assertInvalid(() => validateExpiry(e), "invalid_static_address", "does not fit into a block-based CSV");
  }
});

Deno.test("validateExpiry() rejects non-uint32 numbers", () => {
  for (const e of [-1, 1.5, Number.NaN, Infinity, 2 ** 32]) {
    assertInvalid(() => validateExpiry(e), "invalid_static_address", "is not an unsigned 32-bit integer");
  }
});

Deno.test("staticAddress() refuses an out-of-range expiry before building anything", () => {
  assertInvalid(
    () =>
      staticAddress({
        clientPubkey: pubkeyOf(2n),
        serverPubkey: pubkeyOf(3n),
        csvExpiry: 0,
        network: "regtest",
      }),
    "invalid_static_address",
    "staticAddress: expiry 0 is out of range",
  );
});

/** A 33-byte 0x02-prefixed encoding whose x has no point on the curve. */
function offCurveKey(): Uint8Array {
  for (let x = 1n;; x++) {
    const key = hex.decode("02" + x.toString(16).padStart(64, "0"));
    try {
      Point.fromBytes(key);
    } catch {
      return key;
    }
  }
}

Deno.test("validateServerPubkey() accepts compressed keys of either parity", () => {
  validateServerPubkey(pubkeyOf(3n));
  validateServerPubkey(Point.fromBytes(pubkeyOf(3n)).negate().toBytes(true));
});

Deno.test("validateServerPubkey() rejects an empty key as missing", () => {
  assertInvalid(
    () => validateServerPubkey(new Uint8Array()),
    "invalid_static_address",
    "server key is missing",
  );
});

Deno.test("validateServerPubkey() rejects x-only, uncompressed and bad-prefix keys", () => {
  const compressed = pubkeyOf(3n);
  const uncompressed = Point.fromBytes(compressed).toBytes(false);
  const badPrefix = Uint8Array.from(compressed);
  badPrefix[0] = 0x04;
  for (const key of [compressed.subarray(1), uncompressed, badPrefix]) {
    assertInvalid(
      () => validateServerPubkey(key),
      "invalid_static_address",
      "server key is not a compressed public key",
    );
  }
});

Deno.test("validateServerPubkey() rejects a well-formed key that is not on the curve", () => {
  assertInvalid(
    () => validateServerPubkey(offCurveKey()),
    "invalid_static_address",
    "not a point on secp256k1",
  );
});

Deno.test("staticAddress() rejects an invalid client key naming the client key", () => {
  assertInvalid(
    () =>
      staticAddress({
        clientPubkey: pubkeyOf(2n).subarray(1),
        serverPubkey: pubkeyOf(3n),
        csvExpiry: 10,
        network: "regtest",
      }),
    "invalid_static_address",
    "client key is not a compressed public key",
  );
});

Deno.test("staticAddress() rejects an unknown network", () => {
  const err = assertThrows(
    () =>
      staticAddress({
        clientPubkey: pubkeyOf(2n),
        serverPubkey: pubkeyOf(3n),
        csvExpiry: 10,
        network: "testnet3" as NetworkName,
      }),
    LoopkitError,
    'unknown network "testnet3"',
  );
  assertEquals(err.code, "unknown_network");
});

Deno.test("validateServerAddressParams() returns a copy of the key and the expiry", () => {
  const key = pubkeyOf(3n);
  const got = validateServerAddressParams({ serverKey: key, expiry: 14400 });
  assertEquals(got, { serverPubkey: pubkeyOf(3n), csvExpiry: 14400 });
  got.serverPubkey.fill(0);
  assertEquals(key, pubkeyOf(3n));
});

Deno.test("validateServerAddressParams() rejects missing params and a missing key", () => {
  assertInvalid(
    () => validateServerAddressParams(undefined),
    "invalid_static_address",
    "no address parameters",
  );
  assertInvalid(() => validateServerAddressParams(null), "invalid_static_address", "no address parameters");
  assertInvalid(() => validateServerAddressParams({ expiry: 10 }), "invalid_static_address", "no server key");
  assertInvalid(
    () => validateServerAddressParams({ serverKey: new Uint8Array(), expiry: 10 }),
    "invalid_static_address",
    "no server key",
  );
});

Deno.test("validateServerAddressParams() checks key format, then expiry, then the curve (Loop's order)", () => {
  // Bad format and bad expiry: the format error wins.
  assertInvalid(
    () => validateServerAddressParams({ serverKey: new Uint8Array(32), expiry: 0 }),
    "invalid_static_address",
    "server key is not a compressed public key",
  );
  // Well-formed but off-curve key and bad expiry: the expiry error wins.
  assertInvalid(
    () => validateServerAddressParams({ serverKey: offCurveKey(), expiry: 0 }),
    "invalid_static_address",
    "expiry 0 is out of range",
  );
  assertInvalid(
    () => validateServerAddressParams({ serverKey: offCurveKey(), expiry: 10 }),
    "invalid_static_address",
    "not a point on secp256k1",
  );
  // An absent expiry is a zero expiry, as proto3 decodes it.
  assertInvalid(
    () => validateServerAddressParams({ serverKey: pubkeyOf(3n) }),
    "invalid_static_address",
    "expiry 0 is out of range",
  );
});

Deno.test("validateProtocolVersion() accepts only V0", () => {
  validateProtocolVersion(0);
  for (const v of [1, 2, -1, 0xffff_ffff]) {
    assertInvalid(
      () => validateProtocolVersion(v),
      "unsupported_protocol_version",
      `protocol version ${v} is not supported`,
    );
  }
});

Deno.test("protocolVersionName() is V0 for 0 and Unknown otherwise", () => {
  assertEquals(protocolVersionName(0), "V0");
  assertEquals(protocolVersionName(1), "Unknown");
});
