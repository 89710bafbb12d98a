/**
 * The local swap server's own scripts and transactions for the static loop-in, written from the spec
 * (spec/static-loop-in.md §4.1–§4.3, spec/static-address-and-deposits.md §2) with @scure/btc-signer and
 * @noble directly. It deliberately shares no code with `core/loopin/` or `core/staticaddr/`: the server is
 * an independent implementation that must agree with loopkit's client byte for byte (project decision 7).
 *
 * @module
 */
import { schnorr } from "@noble/curves/secp256k1.js";
import { ripemd160 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { Script, Transaction } from "@scure/btc-signer";
import { keyAggExport, keyAggregate, sortKeys } from "@scure/btc-signer/musig2.js";

/** Dust limit of a P2TR output (spec §3.3), sat. */
export const DUST_LIMIT_SAT = 330n;

/** BIP-341 SIGHASH_DEFAULT. */
export const SIGHASH_DEFAULT = 0x00;

/** A deposit (previous output) as the server sees it on chain. */
export interface DepositPrevout {
  /** `txid:vout` with the display (byte-reversed) txid. */
  outpoint: string;
  /** Display txid hex. */
  txid: string;
  vout: number;
  /** sat */
  valueSat: bigint;
  pkScript: Uint8Array;
}

/** Everything the server derives from one static address (spec §4.1). */
export interface StaticAddressKeys {
  /** Both 33-byte keys sorted lexicographically (BIP-327 KeySort), the MuSig2 signer order. */
  sortedKeys: Uint8Array[];
  /** The CSV timeout leaf `<x(C)> OP_CHECKSIGVERIFY <csv> OP_CHECKSEQUENCEVERIFY`. */
  leafScript: Uint8Array;
  /** TapLeaf hash of the leaf = the script root. */
  scriptRoot: Uint8Array;
  /** x-only MuSig2 aggregate key P (before the tweak). */
  internalKeyXOnly: Uint8Array;
  /** TapTweak(x(P) ‖ root), the x-only tweak of the MuSig2 sessions. */
  tapTweak: Uint8Array;
  /** x-only output key Q. */
  outputKeyXOnly: Uint8Array;
  /** `OP_1 <x(Q)>`. */
  pkScript: Uint8Array;
}

/**
 * Recomputes a static address from its parameters (spec §4.1): leaf, KeyAgg of the sorted keys, BIP-341
 * tweak with the leaf as the single-leaf root, pkScript.
 *
 * @param clientKey 33-byte client key (as sent in ServerNewAddress)
 * @param serverKey 33-byte server key (as answered)
 * @param csvExpiry CSV expiry in blocks
 * @throws Error for keys that are not valid compressed points
 */
export function staticAddressKeys(
  clientKey: Uint8Array,
  serverKey: Uint8Array,
  csvExpiry: number,
): StaticAddressKeys {
  const leafScript = Script.encode([
    clientKey.subarray(1),
    "CHECKSIGVERIFY",
    csvExpiry,
    "CHECKSEQUENCEVERIFY",
  ]);
  const scriptRoot = schnorr.utils.taggedHash("TapLeaf", Uint8Array.of(0xc0, leafScript.length), leafScript);
  const sortedKeys = sortKeys([clientKey, serverKey]);
  const internalKeyXOnly = keyAggExport(keyAggregate(sortedKeys));
  const tapTweak = schnorr.utils.taggedHash("TapTweak", internalKeyXOnly, scriptRoot);
  const outputKeyXOnly = keyAggExport(keyAggregate(sortedKeys, [tapTweak], [true]));
  const pkScript = Uint8Array.of(0x51, 0x20, ...outputKeyXOnly);
  return { sortedKeys, leafScript, scriptRoot, internalKeyXOnly, tapTweak, outputKeyXOnly, pkScript };
}

/** HASH160 = RIPEMD160(SHA256(x)). */
export function hash160(data: Uint8Array): Uint8Array {
  return ripemd160(sha256(data));
}

/**
 * Loop's V2 HTLC script (spec §4.2): receiver (server) success path with the preimage and CSV 1, sender
 * (client) timeout path after the absolute CLTV.
 *
 * @param senderKey 33-byte HTLC client key
 * @param receiverKey 33-byte HTLC server key
 * @param swapHash 32-byte SHA-256 of the preimage
 * @param cltvExpiry absolute CLTV height
 */
export function htlcV2Script(
  senderKey: Uint8Array,
  receiverKey: Uint8Array,
  swapHash: Uint8Array,
  cltvExpiry: number,
): Uint8Array {
  return Script.encode([
    receiverKey,
    "CHECKSIG",
    "NOTIF",
    "DUP",
    "HASH160",
    hash160(senderKey),
    "EQUALVERIFY",
    "CHECKSIGVERIFY",
    cltvExpiry,
    "CHECKLOCKTIMEVERIFY",
    "ELSE",
    "SIZE",
    Uint8Array.of(0x20),
    "EQUALVERIFY",
    "HASH160",
    ripemd160(swapHash),
    "EQUALVERIFY",
    1,
    "CHECKSEQUENCEVERIFY",
    "ENDIF",
  ]);
}

/** P2WSH pkScript `OP_0 <SHA256(script)>`. */
export function p2wshPkScript(script: Uint8Array): Uint8Array {
  return Uint8Array.of(0x00, 0x20, ...sha256(script));
}

function varintSize(n: number): number {
  return n < 0xfd ? 1 : n <= 0xffff ? 3 : 5;
}

/**
 * Weight estimate of an HTLC transaction as the client computes it (spec §4.3): N taproot key-spend
 * inputs, one P2WSH output, one P2TR change output when there is change.
 *
 * `W = 4 × (8 + varint(N) + 41·N + varint(outs) + 43·outs) + 2 + 66·N`
 */
export function htlcTxWeight(numInputs: number, withChange: boolean): number {
  const outs = withChange ? 2 : 1;
  return 4 * (8 + varintSize(numInputs) + 41 * numInputs + varintSize(outs) + 43 * outs) + 2 + 66 * numInputs;
}

/** `floor(rate × weight / 1000)`, sat (rate in sat/kw). */
export function feeForWeight(rateSatPerKw: bigint, weight: number): bigint {
  return (rateSatPerKw * BigInt(weight)) / 1000n;
}

/** The largest rate (sat/kw) whose fee at `weight` is at most `capSat`. */
export function maxRateUnderCap(capSat: bigint, weight: number): bigint {
  return ((capSat + 1n) * 1000n - 1n) / BigInt(weight);
}

/** Inputs of {@linkcode buildHtlcTx}. */
export interface HtlcTxParams {
  /** Deposits in the request's order (= input order). */
  deposits: DepositPrevout[];
  /** P2WSH pkScript of the HTLC. */
  htlcPkScript: Uint8Array;
  /** Value of output 0, sat. */
  htlcValueSat: bigint;
  /** Change back to the static address, sat (0 = no change output). */
  changeSat: bigint;
  /** The static address pkScript (change output). */
  staticPkScript: Uint8Array;
}

/**
 * Builds the unsigned HTLC transaction (spec §4.3): version 2, locktime 0, every input sequence 0 with an
 * empty scriptSig, output 0 the HTLC, output 1 the change when there is some.
 */
export function buildHtlcTx(p: HtlcTxParams): Transaction {
  const tx = new Transaction({ version: 2, lockTime: 0, allowUnknownOutputs: true });
  for (const d of p.deposits) {
    tx.addInput({
      txid: d.txid,
      index: d.vout,
      sequence: 0,
      witnessUtxo: { script: d.pkScript, amount: d.valueSat },
    });
  }
  tx.addOutput({ script: p.htlcPkScript, amount: p.htlcValueSat });
  if (p.changeSat > 0n) tx.addOutput({ script: p.staticPkScript, amount: p.changeSat });
  return tx;
}

/**
 * BIP-341 key-path sighash (SIGHASH_DEFAULT) of input `idx`, with the given previous outputs of every
 * input, in input order.
 */
export function keySpendSighash(
  tx: Transaction,
  idx: number,
  prevouts: { pkScript: Uint8Array; valueSat: bigint }[],
): Uint8Array {
  return tx.preimageWitnessV1(
    idx,
    prevouts.map((p) => p.pkScript),
    SIGHASH_DEFAULT,
    prevouts.map((p) => p.valueSat),
  );
}

/**
 * Parses an outpoint string `<display txid>:<vout>` strictly: 64 lower- or upper-case hex digits, a
 * decimal vout without sign or leading zeros, up to 2^32 − 1.
 *
 * @returns display txid (lower-case hex) and vout
 * @throws Error naming the outpoint
 */
export function parseOutpoint(outpoint: string): { txid: string; vout: number } {
  const m = /^([0-9a-fA-F]{64}):(0|[1-9][0-9]{0,9})$/.exec(outpoint);
  if (!m || Number(m[2]) > 0xffff_ffff) throw new Error(`invalid outpoint "${outpoint}"`);
  return { txid: m[1].toLowerCase(), vout: Number(m[2]) };
}

/** Internal-order txid bytes from a display txid. */
export function txidBytes(displayTxid: string): Uint8Array {
  return hex.decode(displayTxid).reverse();
}
