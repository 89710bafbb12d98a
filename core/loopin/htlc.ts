/**
 * Loop's V2 HTLC (P2WSH) of the static loop-in: script, pkScript and the two witnesses
 * (spec/static-loop-in.md §4.2; Loop's `swap/htlc.go` `newHTLCScriptV2`, checked at `5ddf3b88`).
 *
 * ```
 * <receiver key> OP_CHECKSIG
 * OP_NOTIF
 *     OP_DUP OP_HASH160 <HASH160(sender key)> OP_EQUALVERIFY OP_CHECKSIGVERIFY
 *     <cltv expiry> OP_CHECKLOCKTIMEVERIFY
 * OP_ELSE
 *     OP_SIZE <32> OP_EQUALVERIFY OP_HASH160 <RIPEMD160(swap hash)> OP_EQUALVERIFY
 *     OP_1 OP_CHECKSEQUENCEVERIFY
 * OP_ENDIF
 * ```
 *
 * Sender = the client's HTLC key (timeout path), receiver = the server's HTLC key (success path).
 * Both paths sign with SIGHASH_ALL (ECDSA, BIP-143).
 *
 * @module
 */
import { ripemd160 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { equalBytes } from "@noble/curves/utils.js";
import { csvPush } from "../staticaddr/script.ts";
import { loopinError } from "./_util.ts";
import { ExitCode } from "../errors.ts";

/** `SIGHASH_ALL`, the hash type of both HTLC paths (spec §4.2). */
export const SIGHASH_ALL = 0x01;

/** Smallest nLockTime value that is a timestamp, not a height (BIP-65 `LOCKTIME_THRESHOLD`). */
export const LOCKTIME_THRESHOLD = 500_000_000;

const OP_0 = 0x00;
const OP_1 = 0x51;
const OP_IF_NOTIF = 0x64;
const OP_ELSE = 0x67;
const OP_ENDIF = 0x68;
const OP_DUP = 0x76;
const OP_EQUALVERIFY = 0x88;
const OP_SIZE = 0x82;
const OP_HASH160 = 0xa9;
const OP_CHECKSIG = 0xac;
const OP_CHECKSIGVERIFY = 0xad;
const OP_CHECKLOCKTIMEVERIFY = 0xb1;
const OP_CHECKSEQUENCEVERIFY = 0xb2;

/** Inputs of {@linkcode htlcV2Script}. */
export interface HtlcV2Params {
  /** Client HTLC key (timeout path), 33-byte compressed. */
  senderPubkey: Uint8Array;
  /** Server HTLC key (`htlc_server_pub_key`, success path), 33-byte compressed. */
  receiverPubkey: Uint8Array;
  /** SHA-256 of the preimage, 32 bytes. */
  swapHash: Uint8Array;
  /** Absolute CLTV block height (`htlc_expiry`), 1 to 499 999 999. */
  cltvExpiry: number;
}

/** HASH160 = RIPEMD160(SHA256(x)). */
export function hash160(data: Uint8Array): Uint8Array {
  return ripemd160(sha256(data));
}

function bad(code: string, message: string): never {
  throw loopinError(code, `htlc: ${message}`, ExitCode.Failure);
}

function checkPubkey(key: Uint8Array, role: string): void {
  if (!(key instanceof Uint8Array) || key.length !== 33 || (key[0] !== 0x02 && key[0] !== 0x03)) {
    bad("htlc_key_invalid", `${role} must be a 33-byte compressed public key`);
  }
  try {
    secp256k1.Point.fromBytes(key).assertValidity();
  } catch {
    bad("htlc_key_invalid", `${role} is not a point on secp256k1`);
  }
}

function checkCltv(cltvExpiry: number): void {
  if (!Number.isInteger(cltvExpiry) || cltvExpiry < 1 || cltvExpiry >= LOCKTIME_THRESHOLD) {
    bad("htlc_cltv_invalid", `CLTV expiry ${String(cltvExpiry)} is not a block height from 1 to 499999999`);
  }
}

/**
 * Builds the V2 HTLC script (spec §4.2). The CLTV is a minimal script number (btcd `AddInt64`: `OP_1`–
 * `OP_16` for 1–16, else the shortest little-endian push); 32 in the size check is pushed as one data
 * byte (`01 20`).
 *
 * @returns the witness script (93 + length of the CLTV push bytes: 94 for heights up to 16, 95 up to
 *   127, 96 up to 32 767, 97 up to 8 388 607, 98 above)
 * @throws {LoopkitError} exit 1: `htlc_key_invalid` (a key not 33-byte compressed on the curve),
 *   `htlc_swap_hash_invalid` (not 32 bytes), `htlc_cltv_invalid` (not a block height)
 */
export function htlcV2Script(params: HtlcV2Params): Uint8Array {
  const { senderPubkey, receiverPubkey, swapHash, cltvExpiry } = params;
  checkPubkey(senderPubkey, "sender (client HTLC) key");
  checkPubkey(receiverPubkey, "receiver (server HTLC) key");
  if (!(swapHash instanceof Uint8Array) || swapHash.length !== 32) {
    bad("htlc_swap_hash_invalid", "swap hash must be 32 bytes");
  }
  checkCltv(cltvExpiry);
  const cltv = csvPush(cltvExpiry);
  return Uint8Array.from([
    33,
    ...receiverPubkey,
    OP_CHECKSIG,
    OP_IF_NOTIF,
    OP_DUP,
    OP_HASH160,
    20,
    ...hash160(senderPubkey),
    OP_EQUALVERIFY,
    OP_CHECKSIGVERIFY,
    ...cltv,
    OP_CHECKLOCKTIMEVERIFY,
    OP_ELSE,
    OP_SIZE,
    0x01,
    0x20,
    OP_EQUALVERIFY,
    OP_HASH160,
    20,
    ...ripemd160(swapHash),
    OP_EQUALVERIFY,
    OP_1,
    OP_CHECKSEQUENCEVERIFY,
    OP_ENDIF,
  ]);
}

/** The fields of a V2 HTLC script, as read back by {@linkcode parseHtlcV2Script}. */
export interface ParsedHtlcV2 {
  /** Server HTLC key, 33 bytes. */
  receiverPubkey: Uint8Array;
  /** HASH160 of the client HTLC key, 20 bytes. */
  senderPubkeyHash: Uint8Array;
  /** CLTV block height. */
  cltvExpiry: number;
  /** RIPEMD160(swap hash) = HASH160(preimage), 20 bytes. */
  swapHashRipemd160: Uint8Array;
}

function decodeScriptNum(push: Uint8Array): number {
  const op = push[0];
  if (op >= OP_1 && op <= OP_1 + 15) return op - OP_1 + 1;
  let n = 0;
  for (let i = push.length - 1; i >= 1; i--) n = n * 256 + push[i];
  return n;
}

/**
 * Reads a V2 HTLC script back, accepting only the exact layout {@linkcode htlcV2Script} builds (the
 * script is rebuilt from the parsed fields and compared byte for byte).
 *
 * @throws {LoopkitError} `htlc_script_invalid` (exit 1) for anything else
 */
export function parseHtlcV2Script(script: Uint8Array): ParsedHtlcV2 {
  const fail = () => bad("htlc_script_invalid", `not a V2 HTLC script (${script?.length} bytes)`);
  if (!(script instanceof Uint8Array) || script.length < 94 || script.length > 98 || script[0] !== 33) fail();
  const receiverPubkey = script.slice(1, 34);
  const senderPubkeyHash = script.slice(39, 59);
  const cltvStart = 61;
  const first = script[cltvStart];
  const pushLen = first >= OP_1 && first <= OP_1 + 15 ? 1 : first >= 1 && first <= 4 ? 1 + first : 0;
  if (pushLen === 0) fail();
  const cltvExpiry = decodeScriptNum(script.subarray(cltvStart, cltvStart + pushLen));
  const tail = cltvStart + pushLen;
  const swapHashRipemd160 = script.slice(tail + 8, tail + 28);
  if (!Number.isInteger(cltvExpiry) || cltvExpiry < 1 || cltvExpiry >= LOCKTIME_THRESHOLD) fail();
  // Rebuild from the parsed fields: any other byte anywhere makes the comparison fail.
  let rebuilt: Uint8Array;
  try {
    rebuilt = Uint8Array.from([
      33,
      ...receiverPubkey,
      OP_CHECKSIG,
      OP_IF_NOTIF,
      OP_DUP,
      OP_HASH160,
      20,
      ...senderPubkeyHash,
      OP_EQUALVERIFY,
      OP_CHECKSIGVERIFY,
      ...csvPush(cltvExpiry),
      OP_CHECKLOCKTIMEVERIFY,
      OP_ELSE,
      OP_SIZE,
      0x01,
      0x20,
      OP_EQUALVERIFY,
      OP_HASH160,
      20,
      ...swapHashRipemd160,
      OP_EQUALVERIFY,
      OP_1,
      OP_CHECKSEQUENCEVERIFY,
      OP_ENDIF,
    ]);
  } catch {
    return fail();
  }
  if (!equalBytes(rebuilt, script)) fail();
  return { receiverPubkey, senderPubkeyHash, cltvExpiry, swapHashRipemd160 };
}

/**
 * The P2WSH pkScript of an HTLC script: `OP_0 <SHA256(script)>` (34 bytes; spec §4.2).
 */
export function htlcP2wshPkScript(script: Uint8Array): Uint8Array {
  return Uint8Array.from([OP_0, 0x20, ...sha256(script)]);
}

/**
 * Normalises an ECDSA signature to DER without the hash-type byte. Accepts DER as lnd's `SignOutputRaw`
 * returns it, 64-byte compact `r || s`, and either of them followed by the SIGHASH_ALL byte 0x01 (DER is
 * self-delimiting, so the forms cannot be confused). Refuses a high-S signature (not standard) and any other
 * hash type.
 */
function derSignature(sig: Uint8Array, role: string): Uint8Array {
  if (!(sig instanceof Uint8Array)) bad("htlc_signature_invalid", `${role} signature must be bytes`);
  const tryParse = (bytes: Uint8Array, format: "der" | "compact") => {
    try {
      return secp256k1.Signature.fromBytes(bytes, format);
    } catch {
      return undefined;
    }
  };
  const trimmed = sig.length > 0 && sig[sig.length - 1] === SIGHASH_ALL
    ? sig.subarray(0, sig.length - 1)
    : undefined;
  const parsed = tryParse(sig, "der") ??
    (trimmed !== undefined ? tryParse(trimmed, "der") : undefined) ??
    (sig.length === 64 ? tryParse(sig, "compact") : undefined) ??
    (trimmed !== undefined && trimmed.length === 64 ? tryParse(trimmed, "compact") : undefined);
  if (parsed === undefined) {
    bad(
      "htlc_signature_invalid",
      `${role} signature is neither DER nor 64-byte compact, optionally followed by SIGHASH_ALL (${sig.length} bytes)`,
    );
  }
  if (parsed.hasHighS()) bad("htlc_signature_invalid", `${role} signature has a high S value`);
  return parsed.toBytes("der");
}

/**
 * The timeout-path witness (client, after the CLTV): `[sender_sig || 0x01, sender key, <empty>, script]`
 * (spec §4.2; Loop's `GenTimeoutWitness`). The spending transaction needs nLockTime ≥ the CLTV and a
 * non-final input sequence.
 *
 * @param senderSig ECDSA signature of the client HTLC key: DER (what lnd's `SignOutputRaw` returns) or
 *   64-byte compact, with or without a trailing SIGHASH_ALL byte; the witness carries DER || 0x01
 * @param senderPubkey the client HTLC key, 33 bytes; its HASH160 must be the script's
 * @param script the V2 HTLC script
 * @returns the 4 witness items
 * @throws {LoopkitError} exit 1: `htlc_signature_invalid`, `htlc_key_invalid`, `htlc_script_invalid`,
 *   `htlc_key_mismatch` (the key is not the script's sender key)
 */
export function htlcTimeoutWitness(
  senderSig: Uint8Array,
  senderPubkey: Uint8Array,
  script: Uint8Array,
): Uint8Array[] {
  checkPubkey(senderPubkey, "sender (client HTLC) key");
  const parsed = parseHtlcV2Script(script);
  if (!equalBytes(parsed.senderPubkeyHash, hash160(senderPubkey))) {
    bad("htlc_key_mismatch", "sender key does not match the HTLC script's sender key hash");
  }
  const der = derSignature(senderSig, "sender");
  return [
    Uint8Array.from([...der, SIGHASH_ALL]),
    Uint8Array.from(senderPubkey),
    new Uint8Array(0),
    Uint8Array.from(script),
  ];
}

/**
 * The success-path witness (server, with the preimage): `[preimage, receiver_sig || 0x01, script]`
 * (spec §4.2; Loop's `genSuccessWitness`). The spending input needs sequence ≥ 1 (OP_1 CSV). loopkit
 * never spends this path; it exists for tests and the local swap server.
 *
 * @param preimage 32 bytes; RIPEMD160(SHA256(preimage)) must be the script's hash
 * @param receiverSig ECDSA signature of the server HTLC key (DER or compact, optionally with SIGHASH_ALL)
 * @param script the V2 HTLC script
 * @throws {LoopkitError} exit 1: `htlc_preimage_invalid` (not 32 bytes or not the script's hash),
 *   `htlc_signature_invalid`, `htlc_script_invalid`
 */
export function htlcSuccessWitness(
  preimage: Uint8Array,
  receiverSig: Uint8Array,
  script: Uint8Array,
): Uint8Array[] {
  const parsed = parseHtlcV2Script(script);
  if (!(preimage instanceof Uint8Array) || preimage.length !== 32) {
    bad("htlc_preimage_invalid", "preimage must be 32 bytes");
  }
  if (!equalBytes(hash160(preimage), parsed.swapHashRipemd160)) {
    bad("htlc_preimage_invalid", "preimage does not hash to the HTLC script's swap hash");
  }
  const der = derSignature(receiverSig, "receiver");
  return [Uint8Array.from(preimage), Uint8Array.from([...der, SIGHASH_ALL]), Uint8Array.from(script)];
}
