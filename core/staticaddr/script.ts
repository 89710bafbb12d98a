/**
 * Static address (protocol V0) construction: timeout leaf, MuSig2 internal key, taproot tweak,
 * pkScript, control block and address, plus validation of the server-chosen parameters.
 *
 * Pure functions, no I/O. Source of every rule: spec/static-address-and-deposits.md §2 and §3.4.
 *
 * Construction in short:
 * - leaf script `<x-only client key> OP_CHECKSIGVERIFY <CSV expiry> OP_CHECKSEQUENCEVERIFY`,
 *   leaf version 0xc0, the single leaf of the tree (merkle root = leaf hash);
 * - internal key P = BIP-327 KeyAgg of the two 33-byte compressed keys, sorted;
 * - output key Q = lift_x(x(P)) + t·G with t = TaggedHash("TapTweak", x(P) || merkle root);
 * - pkScript `OP_1 <x(Q)>`, control block `(0xc0 | parity(Q)) || x(P)`, bech32m address.
 *
 * @module
 */
import { bech32m } from "@scure/base";
import { keyAggregate, sortKeys } from "@scure/btc-signer/musig2.js";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { ExitCode, LoopkitError } from "../errors.ts";
import { type NetworkName, networkParams } from "./network.ts";

/** BIP-342 base tapscript leaf version (spec §2.3). */
export const TAPSCRIPT_LEAF_VERSION = 0xc0;

/** The only static-address protocol version, `StaticAddressProtocolVersion.V0` (spec §2.9). */
export const STATIC_ADDRESS_PROTOCOL_V0 = 0;

/** Smallest CSV expiry (blocks) loopkit accepts from the server (spec §3.4: expiry ≠ 0). */
export const MIN_CSV_EXPIRY = 1;

/** Largest CSV expiry (blocks) loopkit accepts from the server: 200 days × 144 (spec §3.4). */
export const MAX_CSV_EXPIRY = 28_800;

/** Block-based relative lock-time mask of BIP-68 (`wire.SequenceLockTimeMask`). */
const SEQUENCE_LOCK_TIME_MASK = 0x0000_ffff;

const OP_1 = 0x51;
const OP_CHECKSIGVERIFY = 0xad;
const OP_CHECKSEQUENCEVERIFY = 0xb2;

const Point = secp256k1.Point;
const CURVE_ORDER = Point.Fn.ORDER;

/** Everything derived from one static address's parameters. All byte fields are fresh copies. */
export interface StaticAddress {
  /** The timeout leaf script (36–38 bytes for legal expiries). */
  timeoutLeafScript: Uint8Array;
  /** BIP-341 leaf hash of the timeout leaf; also the merkle root (single leaf). 32 bytes. */
  tapLeafHash: Uint8Array;
  /** MuSig2 aggregate key before the tweak (Loop's `InternalPubKey`), 33-byte compressed. */
  internalKey: Uint8Array;
  /** x-only internal key, 32 bytes; what lnd's `ImportTapscript` takes. */
  internalKeyXOnly: Uint8Array;
  /** BIP-341 tweak scalar t, 32 bytes big-endian. */
  tapTweak: Uint8Array;
  /** Taproot output key Q, 33-byte compressed (its prefix carries the parity). */
  outputKey: Uint8Array;
  /** P2TR pkScript `0x51 0x20 || x(Q)`, 34 bytes. */
  pkScript: Uint8Array;
  /** Script-path control block `(0xc0 | parity(Q)) || x(P)`, 33 bytes (no merkle path). */
  controlBlock: Uint8Array;
  /** Segwit v1 bech32m address for the requested network. */
  address: string;
}

/** Inputs of {@linkcode staticAddress}. */
export interface StaticAddressParams {
  /** Client key, 33-byte compressed (from lnd `DeriveNextKey(42060)` or a backup). */
  clientPubkey: Uint8Array;
  /** Server key, 33-byte compressed (`ServerAddressParameters.server_key`). */
  serverPubkey: Uint8Array;
  /** CSV expiry in blocks, 1 to 28 800. */
  csvExpiry: number;
  /** Network whose HRP the address uses. */
  network: NetworkName;
}

function invalid(message: string): LoopkitError {
  return new LoopkitError("invalid_static_address", `staticAddress: ${message}`, ExitCode.Failure);
}

function describeBytes(value: unknown): string {
  return value instanceof Uint8Array ? `${value.length} bytes` : `a ${typeof value}`;
}

/** Checks length and prefix of a 33-byte compressed key (no curve check). */
function checkCompressedFormat(key: Uint8Array, role: string): void {
  if (!(key instanceof Uint8Array)) throw invalid(`${role} must be bytes, got ${describeBytes(key)}`);
  if (key.length === 0) throw invalid(`${role} is missing`);
  if (key.length !== 33 || (key[0] !== 0x02 && key[0] !== 0x03)) {
    const prefix = ` with prefix 0x${key[0].toString(16).padStart(2, "0")}`;
    throw invalid(
      `${role} is not a compressed public key: got ${key.length} bytes${prefix}, want 33 bytes with prefix 0x02 or 0x03`,
    );
  }
}

/** Checks that a well-formed compressed key decodes to a point on secp256k1. */
function checkOnCurve(key: Uint8Array, role: string): void {
  try {
    Point.fromBytes(key).assertValidity();
  } catch (cause) {
    throw new LoopkitError(
      "invalid_static_address",
      `staticAddress: ${role} is not a point on secp256k1`,
      ExitCode.Failure,
      { cause },
    );
  }
}

/**
 * Checks a 33-byte compressed secp256k1 public key: prefix 0x02/0x03 and a point on the curve.
 *
 * @param role name used in the error message, e.g. `"server key"`
 * @throws {LoopkitError} code `invalid_static_address` naming the role and the problem
 */
function validateCompressedPubkey(key: Uint8Array, role: string): void {
  checkCompressedFormat(key, role);
  checkOnCurve(key, role);
}

/**
 * Validates the server's static-address key: 33-byte compressed, prefix 0x02/0x03, on the curve
 * (spec §3.4 steps 3, 4 and 8).
 *
 * @param serverPubkey bytes of `ServerAddressParameters.server_key`
 * @throws {LoopkitError} code `invalid_static_address`, e.g.
 *   `staticAddress: server key is not a compressed public key: got 32 bytes …`
 */
export function validateServerPubkey(serverPubkey: Uint8Array): void {
  validateCompressedPubkey(serverPubkey, "server key");
}

/**
 * Validates the client's static-address key (33-byte compressed, on the curve).
 *
 * @throws {LoopkitError} code `invalid_static_address`
 */
export function validateClientPubkey(clientPubkey: Uint8Array): void {
  validateCompressedPubkey(clientPubkey, "client key");
}

/**
 * Validates a CSV expiry in blocks, with Loop's checks in Loop's order (spec §3.4 steps 5–7):
 * non-zero; no bit above the 16-bit block-count mask (no disable flag, no seconds flag); at most
 * {@linkcode MAX_CSV_EXPIRY}. Values that are not uint32 integers are rejected first.
 *
 * @param csvExpiry expiry in blocks
 * @throws {LoopkitError} code `invalid_static_address`, e.g. `staticAddress: expiry 0 is out of range: …`
 */
export function validateExpiry(csvExpiry: number): void {
  if (
    typeof csvExpiry !== "number" || !Number.isInteger(csvExpiry) || csvExpiry < 0 || csvExpiry > 0xffff_ffff
  ) {
    throw invalid(`expiry ${String(csvExpiry)} is not an unsigned 32-bit integer`);
  }
  if (csvExpiry === 0) {
    throw invalid(`expiry 0 is out of range: want ${MIN_CSV_EXPIRY} to ${MAX_CSV_EXPIRY} blocks`);
  }
  if ((csvExpiry & ~SEQUENCE_LOCK_TIME_MASK) !== 0) {
    throw invalid(
      `expiry ${csvExpiry} (0x${
        csvExpiry.toString(16)
      }) does not fit into a block-based CSV: bits above 0xffff are set`,
    );
  }
  if (csvExpiry > MAX_CSV_EXPIRY) {
    throw invalid(`expiry ${csvExpiry} is out of range: exceeds the maximum of ${MAX_CSV_EXPIRY} blocks`);
  }
}

/**
 * Checks a static-address protocol version: only V0 (0) exists and is supported (spec §2.9).
 *
 * @param version stored or backed-up `protocol_version`
 * @throws {LoopkitError} code `unsupported_protocol_version`
 */
export function validateProtocolVersion(version: number): void {
  if (version !== STATIC_ADDRESS_PROTOCOL_V0) {
    throw new LoopkitError(
      "unsupported_protocol_version",
      `staticAddress: protocol version ${String(version)} is not supported: only V0 (0) is`,
      ExitCode.Failure,
    );
  }
}

/** Loop's string form of a protocol version: `"V0"` for 0, `"Unknown"` otherwise (spec §2.9). */
export function protocolVersionName(version: number): "V0" | "Unknown" {
  return version === STATIC_ADDRESS_PROTOCOL_V0 ? "V0" : "Unknown";
}

/** `ServerAddressParameters` as decoded by a protobuf loader (camelCase, fields may be absent). */
export interface ServerAddressParamsMessage {
  serverKey?: Uint8Array | null;
  expiry?: number | null;
}

/**
 * Validates the `params` of a `ServerNewAddressResponse` in Loop's order (spec §3.4 steps 2–8):
 * params present, server key present, compressed 33 bytes, expiry checks, key on the curve.
 * (Step 1, "response present", belongs to the RPC caller.)
 *
 * @param params the decoded `params` message, or null/undefined when absent
 * @returns the server key (a copy) and expiry, safe to pass to {@linkcode staticAddress}
 * @throws {LoopkitError} code `invalid_static_address` naming the first failed check
 */
export function validateServerAddressParams(
  params: ServerAddressParamsMessage | null | undefined,
): { serverPubkey: Uint8Array; csvExpiry: number } {
  if (params === null || params === undefined) throw invalid("server response has no address parameters");
  const key = params.serverKey;
  if (key === null || key === undefined || key.length === 0) {
    throw invalid("server response has no server key");
  }
  checkCompressedFormat(key, "server key");
  validateExpiry(params.expiry ?? 0);
  checkOnCurve(key, "server key");
  return { serverPubkey: Uint8Array.from(key), csvExpiry: params.expiry as number };
}

/**
 * Encodes the CSV operand as a minimal script-number push, the way btcd's
 * `ScriptBuilder.AddInt64` does for positive values (spec §2.2): 1–16 become `OP_1`..`OP_16`;
 * larger values are little-endian minimal bytes, with a 0x00 appended when the top byte has bit
 * 0x80 set, pushed with the length as opcode.
 *
 * @param value a positive integer up to 2^31 − 1 (any value a CSV operand can hold as a
 *   non-negative 4-byte script number)
 * @returns the push, e.g. `5a` for 10, `02 40 38` for 14400
 * @throws {LoopkitError} code `invalid_static_address` for a value outside that range
 */
export function csvPush(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 1 || value > 0x7fff_ffff) {
    throw invalid(`CSV operand ${String(value)} is not an integer from 1 to 2147483647`);
  }
  if (value <= 16) return Uint8Array.of(OP_1 - 1 + value);
  const bytes: number[] = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.push(v % 256);
  if ((bytes[bytes.length - 1] & 0x80) !== 0) bytes.push(0x00);
  return Uint8Array.of(bytes.length, ...bytes);
}

/**
 * Builds the timeout leaf `<x-only client key> OP_CHECKSIGVERIFY <csvExpiry> OP_CHECKSEQUENCEVERIFY`
 * (spec §2.2).
 *
 * @param clientPubkey 33-byte compressed client key; its Y parity is dropped
 * @param csvExpiry CSV expiry in blocks, 1 to 28 800
 * @returns the script bytes (36, 37 or 38 bytes)
 * @throws {LoopkitError} code `invalid_static_address` for an invalid key or expiry
 */
export function timeoutLeafScript(clientPubkey: Uint8Array, csvExpiry: number): Uint8Array {
  validateClientPubkey(clientPubkey);
  validateExpiry(csvExpiry);
  const push = csvPush(csvExpiry);
  const script = new Uint8Array(1 + 32 + 1 + push.length + 1);
  script[0] = 0x20;
  script.set(clientPubkey.subarray(1), 1);
  script[33] = OP_CHECKSIGVERIFY;
  script.set(push, 34);
  script[34 + push.length] = OP_CHECKSEQUENCEVERIFY;
  return script;
}

/**
 * BIP-341 leaf hash: `TaggedHash("TapLeaf", leafVersion || compactSize(len) || script)`.
 *
 * @param script leaf script (shorter than 253 bytes, so compactSize is one byte)
 * @param leafVersion leaf version, default 0xc0
 * @returns 32 bytes
 */
export function tapLeafHash(script: Uint8Array, leafVersion: number = TAPSCRIPT_LEAF_VERSION): Uint8Array {
  if (script.length >= 0xfd) throw invalid(`leaf script of ${script.length} bytes is longer than supported`);
  return schnorr.utils.taggedHash("TapLeaf", Uint8Array.of(leafVersion, script.length), script);
}

/**
 * BIP-327 KeyAgg of the client and server keys, sorted (Loop: `MuSig2CombineKeys`, version
 * 1.0.0-rc2, `sortKeys = true`; spec §2.4). This is the pre-tweak aggregate key.
 *
 * @returns 33-byte compressed aggregate key (may have odd Y)
 * @throws {LoopkitError} code `invalid_static_address` for an invalid key
 */
export function aggregateInternalKey(clientPubkey: Uint8Array, serverPubkey: Uint8Array): Uint8Array {
  validateClientPubkey(clientPubkey);
  validateServerPubkey(serverPubkey);
  const ctx = keyAggregate(sortKeys([clientPubkey, serverPubkey]));
  return ctx.aggPublicKey.toBytes(true);
}

function bytesToBigint(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

/**
 * BIP-341 `taproot_tweak_pubkey`: t = TaggedHash("TapTweak", x(P) || merkleRoot), Q = lift_x(x(P)) + t·G
 * (spec §2.5).
 *
 * @param internalKeyXOnly x(P), 32 bytes
 * @param merkleRoot 32-byte merkle root (the leaf hash for a single leaf)
 * @returns `tapTweak` (32 bytes) and `outputKey` (33-byte compressed Q)
 * @throws {LoopkitError} code `invalid_static_address` if t ≥ n or Q is the point at infinity
 *   (both cryptographically unreachable)
 */
export function taprootTweak(
  internalKeyXOnly: Uint8Array,
  merkleRoot: Uint8Array,
): { tapTweak: Uint8Array; outputKey: Uint8Array } {
  const tapTweak = schnorr.utils.taggedHash("TapTweak", internalKeyXOnly, merkleRoot);
  const t = bytesToBigint(tapTweak);
  if (t >= CURVE_ORDER) throw invalid("taproot tweak is not below the curve order");
  const p = schnorr.utils.lift_x(bytesToBigint(internalKeyXOnly));
  const q = p.add(Point.BASE.multiply(t));
  if (q.equals(Point.ZERO)) throw invalid("taproot output key is the point at infinity");
  return { tapTweak, outputKey: q.toBytes(true) };
}

/**
 * Builds the V0 static address and everything derived from it (spec §2.2–§2.7).
 *
 * Validates both keys and the expiry first; the network must be one of the supported names.
 *
 * @returns see {@linkcode StaticAddress}
 * @throws {LoopkitError} code `invalid_static_address` (invalid key or expiry) or
 *   `unknown_network`
 *
 * @example
 * ```ts
 * import { hex } from "@scure/base";
 * import { staticAddress } from "./script.ts";
 * const addr = staticAddress({
 *   clientPubkey: hex.decode("02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5"),
 *   serverPubkey: hex.decode("02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9"),
 *   csvExpiry: 14400,
 *   network: "regtest",
 * });
 * addr.address.startsWith("bcrt1p"); // true
 * ```
 */
export function staticAddress(params: StaticAddressParams): StaticAddress {
  const { clientPubkey, serverPubkey, csvExpiry, network } = params;
  const { bech32Hrp } = networkParams(network);
  validateClientPubkey(clientPubkey);
  validateServerPubkey(serverPubkey);
  validateExpiry(csvExpiry);

  const leaf = timeoutLeafScript(clientPubkey, csvExpiry);
  const leafHash = tapLeafHash(leaf);
  const internalKey = aggregateInternalKey(clientPubkey, serverPubkey);
  const internalKeyXOnly = internalKey.slice(1);
  const { tapTweak, outputKey } = taprootTweak(internalKeyXOnly, leafHash);
  const outputKeyXOnly = outputKey.subarray(1);
  const outputParity = outputKey[0] === 0x03 ? 1 : 0;

  const pkScript = new Uint8Array(34);
  pkScript[0] = OP_1;
  pkScript[1] = 0x20;
  pkScript.set(outputKeyXOnly, 2);

  const controlBlock = new Uint8Array(33);
  controlBlock[0] = TAPSCRIPT_LEAF_VERSION | outputParity;
  controlBlock.set(internalKeyXOnly, 1);

  const address = bech32m.encode(bech32Hrp, [1, ...bech32m.toWords(outputKeyXOnly)]);

  return {
    timeoutLeafScript: leaf,
    tapLeafHash: leafHash,
    internalKey,
    internalKeyXOnly,
    tapTweak,
    outputKey,
    pkScript,
    controlBlock,
    address,
  };
}
