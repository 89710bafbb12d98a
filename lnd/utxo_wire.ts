/**
 * A streaming-style decoder of lnd's `walletrpc.ListUnspentResponse` that keeps only the UTXOs paying one of a
 * few pkScripts, so a full-wallet read of 100 000 UTXOs never builds 100 000 JavaScript objects (bench/README.md:
 * protobufjs's decode of that answer was most of the old 326 MB peak).
 *
 * Wire facts (lnd's `walletkit.proto` / `lightning.proto`, proto3): `ListUnspentResponse { repeated lnrpc.Utxo
 * utxos = 1; }`; `Utxo { AddressType address_type = 1; string address = 2; int64 amount_sat = 3; string
 * pk_script = 4 (hex); OutPoint outpoint = 5; int64 confirmations = 6; }`; `OutPoint { bytes txid_bytes = 1;
 * string txid_str = 2; uint32 output_index = 3; }`. Unknown fields are skipped by wire type, as protobuf
 * requires, so a newer lnd with more fields still decodes.
 *
 * @module
 */
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import type { Utxo } from "./types.ts";

/** Thrown for bytes that are not a well-formed message. */
export class WireError extends Error {}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

class Reader {
  pos: number;
  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.pos = start;
  }
  /** A varint as a bigint (64-bit fields; negative int64 values are two's complement in 10 bytes). */
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError("truncated varint");
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
      shift += 7n;
    }
    throw new WireError("varint longer than 10 bytes");
  }
  /** A varint that must fit a JavaScript number (tags, lengths, 32-bit fields). */
  small(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError("truncated varint");
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (!Number.isSafeInteger(result)) throw new WireError("varint too large");
        return result;
      }
      mul *= 128;
    }
    throw new WireError("varint longer than 10 bytes");
  }
  /** Start and end of a length-delimited field's bytes; advances past them. */
  span(): [number, number] {
    const len = this.small();
    const start = this.pos;
    if (start + len > this.end) throw new WireError("length-delimited field runs past its message");
    this.pos = start + len;
    return [start, this.pos];
  }
  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.small2();
    else if (wire === WIRE_I64) this.advance(8);
    else if (wire === WIRE_LEN) this.span();
    else if (wire === WIRE_I32) this.advance(4);
    else throw new WireError(`unsupported wire type ${wire}`);
  }
  private small2(): void {
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError("truncated varint");
      if (this.buf[this.pos++] < 0x80) return;
    }
    throw new WireError("varint longer than 10 bytes");
  }
  private advance(n: number): void {
    if (this.pos + n > this.end) throw new WireError("truncated fixed-width field");
    this.pos += n;
  }
}

const ascii = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** int64 from its varint: two's complement above 2^63. */
function int64(v: bigint): bigint {
  return v >= 1n << 63n ? v - (1n << 64n) : v;
}

function equalAt(buf: Uint8Array, start: number, end: number, want: Uint8Array): boolean {
  if (end - start !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (buf[start + i] !== want[i]) return false;
  return true;
}

/** The pk_script (field 4) span of one Utxo message, without decoding anything else. */
function pkScriptSpan(buf: Uint8Array, start: number, end: number): [number, number] | null {
  const r = new Reader(buf, start, end);
  let found: [number, number] | null = null;
  while (r.pos < end) {
    const tag = r.small();
    if (tag >>> 3 === 4 && (tag & 7) === WIRE_LEN) found = r.span(); // last one wins, as in protobuf
    else r.skip(tag & 7);
  }
  return found;
}

function decodeOutpoint(buf: Uint8Array, start: number, end: number): { txid: string; vout: number } {
  const r = new Reader(buf, start, end);
  let txidStr = "";
  let txidBytes: Uint8Array | null = null;
  let vout = 0;
  while (r.pos < end) {
    const tag = r.small();
    const field = tag >>> 3, wire = tag & 7;
    if (field === 1 && wire === WIRE_LEN) {
      const [s, e] = r.span();
      txidBytes = buf.slice(s, e);
    } else if (field === 2 && wire === WIRE_LEN) {
      const [s, e] = r.span();
      txidStr = ascii.decode(buf.subarray(s, e));
    } else if (field === 3 && wire === WIRE_VARINT) {
      vout = Number(r.varint() & 0xffffffffn);
    } else r.skip(wire);
  }
  // lnd sets both; txid_str is the display hex, txid_bytes the internal order.
  const txid = txidStr || (txidBytes ? bytesToHex(txidBytes.reverse()) : "");
  return { txid, vout };
}

function decodeUtxo(
  buf: Uint8Array,
  start: number,
  end: number,
): Utxo & { amountRaw: bigint; confsRaw: bigint } {
  const r = new Reader(buf, start, end);
  let address = "";
  let amount = 0n;
  let pkHex = "";
  let outpoint = { txid: "", vout: 0 };
  let confs = 0n;
  while (r.pos < end) {
    const tag = r.small();
    const field = tag >>> 3, wire = tag & 7;
    if (field === 2 && wire === WIRE_LEN) {
      const [s, e] = r.span();
      address = utf8.decode(buf.subarray(s, e));
    } else if (field === 3 && wire === WIRE_VARINT) amount = int64(r.varint());
    else if (field === 4 && wire === WIRE_LEN) {
      const [s, e] = r.span();
      pkHex = ascii.decode(buf.subarray(s, e));
    } else if (field === 5 && wire === WIRE_LEN) {
      const [s, e] = r.span();
      outpoint = decodeOutpoint(buf, s, e);
    } else if (field === 6 && wire === WIRE_VARINT) confs = int64(r.varint());
    else r.skip(wire);
  }
  if (!/^([0-9a-f]{2})*$/.test(pkHex)) {
    throw new WireError(`utxo ${outpoint.txid}:${outpoint.vout} pk_script is not hex`);
  }
  return {
    txid: outpoint.txid,
    vout: outpoint.vout,
    amountSat: amount,
    pkScript: hexToBytes(pkHex),
    confirmations: Math.max(0, Number(confs)),
    address,
    amountRaw: amount,
    confsRaw: confs,
  };
}

/**
 * Decodes one `Utxo` entry at `buf[start, end)`, or returns null when `wanted` (lower-case hex bytes of the
 * pkScripts to keep) is given and its pk_script is not one of them.
 * @throws {WireError} for malformed bytes, a pk_script that is not hex, a negative amount
 */
export function decodeUtxoEntry(
  buf: Uint8Array,
  start: number,
  end: number,
  wanted?: readonly Uint8Array[],
): Utxo | null {
  if (wanted) {
    const pk = pkScriptSpan(buf, start, end);
    if (!pk || !wanted.some((w) => equalAt(buf, pk[0], pk[1], w))) return null;
  }
  const u = decodeUtxo(buf, start, end);
  if (u.amountRaw < 0n) throw new WireError(`utxo ${u.txid}:${u.vout} has a negative amount`);
  return {
    txid: u.txid,
    vout: u.vout,
    amountSat: u.amountSat,
    pkScript: u.pkScript,
    confirmations: u.confirmations,
    address: u.address,
  };
}

function varintBytes(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/**
 * `ListUnspentRequest { int32 min_confs = 1; int32 max_confs = 2; string account = 3; }` as protobuf bytes
 * (zero fields omitted, as proto3 does).
 */
export function encodeListUnspentRequest(
  r: { min_confs: number; max_confs: number; account?: string },
): Uint8Array {
  const out: number[] = [];
  if (r.min_confs) out.push(1 << 3, ...varintBytes(r.min_confs));
  if (r.max_confs) out.push(2 << 3, ...varintBytes(r.max_confs));
  if (r.account) {
    const a = new TextEncoder().encode(r.account);
    out.push((3 << 3) | 2, ...varintBytes(a.length), ...a);
  }
  return Uint8Array.from(out);
}

/** Result of {@linkcode decodeListUnspent}. */
export interface DecodedUtxos {
  /** The kept UTXOs, in lnd's order. */
  utxos: Utxo[];
  /** How many UTXOs the answer held in all. */
  total: number;
}

/**
 * Decodes a serialized `ListUnspentResponse`, keeping only the UTXOs whose `pk_script` is one of `pkScripts`
 * (compared as lnd's lower-case hex bytes, before anything else of the entry is decoded), or every UTXO when
 * `pkScripts` is undefined.
 *
 * @param buf the response message bytes
 * @param pkScripts the scripts to keep (undefined: keep all)
 * @throws {WireError} for malformed bytes, a pk_script that is not hex, a negative amount
 */
export function decodeListUnspent(buf: Uint8Array, pkScripts?: readonly Uint8Array[]): DecodedUtxos {
  const wanted = pkScripts?.map((p) => new TextEncoder().encode(bytesToHex(p)));
  const r = new Reader(buf);
  const utxos: Utxo[] = [];
  let total = 0;
  while (r.pos < buf.length) {
    const tag = r.small();
    if (tag >>> 3 !== 1 || (tag & 7) !== WIRE_LEN) {
      r.skip(tag & 7);
      continue;
    }
    const [s, e] = r.span();
    total++;
    const u = decodeUtxoEntry(buf, s, e, wanted);
    if (u) utxos.push(u);
  }
  return { utxos, total };
}
