/**
 * The per-swap recovery record of a static loop-in (issue 9 review finding F8): everything needed, without the
 * database, to recognise the three HTLC variants by txid and to build and sign the HTLC timeout sweep
 * (spec/static-loop-in.md §2.4 "persisted fields", §4.2, §4.5; spec/static-loop-in-review.md §1.1, §1.11;
 * spec/README.md decision 6).
 *
 * A swap is armed from the "signatures pushed" marker on: the server may publish any HTLC variant, and the only
 * way back is the timeout sweep after `htlc_expiry`, signed with the client HTLC key. Those parameters used to
 * live only in the database; the record is written (sealed with the backup envelope, `loopbak1`, keyed by lnd's
 * `DeriveSharedKey`, core/backup/envelope.ts) into the backup directory **before** the marker, so copying that
 * directory to another machine carries every armed swap. `recover` imports records whose swap the database
 * lacks (core/loopin/swap_record_restore.ts).
 *
 * File name: `loopin_swap_<swap hash hex>.enc` — never `L402_backup_…`, so Loop's and loopkit's backup scans
 * (core/backup/file_name.ts) skip it. Payload: UTF-8 JSON, version {@linkcode SWAP_RECORD_VERSION}; byte
 * fields lower-case hex, amounts and fee rates decimal strings (sat, sat/kw), txids display hex.
 *
 * Pure: no file, lnd or database access (swap_record_file.ts does the I/O).
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { equalBytes } from "@noble/curves/utils.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { ExitCode, LoopkitError } from "../errors.ts";
import { openBackup, sealBackup } from "../backup/envelope.ts";
import { isNetworkName, type NetworkName } from "../staticaddr/network.ts";
import { formatOutpoint, parseOutpoint } from "../staticaddr/outpoint.ts";
import { HTLC_VARIANTS, type HtlcVariant } from "./types.ts";
import { htlcP2wshPkScript, htlcV2Script } from "./htlc.ts";
import { decodeRawTx, txidOfRaw } from "./htlc_tx.ts";

/** Payload version written by this loopkit; the only one read. */
export const SWAP_RECORD_VERSION = 1;
/** The payload's `kind`: tells a swap record from any other sealed payload. */
export const SWAP_RECORD_KIND = "loopkit_loopin_swap";
/** File name prefix. */
export const SWAP_RECORD_FILE_PREFIX = "loopin_swap_";
/** File name suffix. */
export const SWAP_RECORD_FILE_SUFFIX = ".enc";

/** One deposit of the swap, in snapshot order (= HTLC input order). */
export interface SwapRecordDeposit {
  /** `txid:vout`, canonical (lower-case txid). */
  outpoint: string;
  /** Value, sat. */
  valueSat: bigint;
  /** The static address's P2TR pkScript the deposit pays. */
  pkScript: Uint8Array;
  /** First-confirmation height at initiation (0 while unconfirmed). */
  confirmationHeight: number;
  /** The deposit's expiry-sweep destination (a wallet pkScript), as stored on its row. */
  timeoutSweepPkScript: Uint8Array;
}

/** The static address the deposits pay (its identity is the pkScript; the id is this database's only). */
export interface SwapRecordAddress {
  /** Row id in the database that made the swap (informational: another database numbers rows anew). */
  id: number;
  pkScript: Uint8Array;
  /** 33-byte client and server keys, CSV expiry (blocks), client key locator. */
  clientPubkey: Uint8Array;
  serverPubkey: Uint8Array;
  expiry: number;
  clientKeyFamily: number;
  clientKeyIndex: number;
}

/** A decoded, validated swap recovery record (version 1). */
export interface LoopInSwapRecord {
  version: number;
  network: NetworkName;
  /** 32 bytes; `sha256(preimage)`. */
  swapHash: Uint8Array;
  /** 32 bytes (the invoice's preimage; lnd holds it too). */
  preimage: Uint8Array;
  staticAddress: SwapRecordAddress;
  /** The client HTLC key: lnd key locator and 33-byte pubkey (signs the timeout sweep). */
  htlcKey: { family: number; index: number; pubkey: Uint8Array };
  /** 33-byte server HTLC pubkey. */
  htlcServerPubkey: Uint8Array;
  /** The HTLC's CLTV (absolute block height). */
  htlcExpiry: number;
  /** sat/kw per variant. */
  feeRates: Record<HtlcVariant, bigint>;
  /** Display txids of the three variants (each the txid of {@linkcode htlcTxs}). */
  htlcTxids: Record<HtlcVariant, string>;
  /** The three unsigned HTLC transactions. */
  htlcTxs: Record<HtlcVariant, Uint8Array>;
  /** Where the HTLC timeout sweep pays (a wallet pkScript). */
  timeoutSweepPkScript: Uint8Array;
  deposits: SwapRecordDeposit[];
  initiationHeight: number;
  initiationTime: Date;
  /** sat. */
  selectedAmountSat: bigint;
  swapAmountSat: bigint;
  totalDepositSat: bigint;
  changeSat: bigint;
  quotedSwapFeeSat: bigint;
  maxSwapFeeSat: bigint;
  paymentTimeoutSeconds: number;
  fast: boolean;
  label: string;
  initiator: string;
  /** 33 bytes or null. */
  lastHop: Uint8Array | null;
  /** The BOLT-11 payment request of the swap invoice (its payment hash is the swap hash). */
  swapInvoice: string;
}

/**
 * A swap record file or payload is unusable: code `swap_record_invalid`, exit 3 (the backup-file table row),
 * the message naming the file.
 */
export class SwapRecordInvalidError extends LoopkitError {
  constructor(message: string, options?: ErrorOptions) {
    super("swap_record_invalid", message, ExitCode.VerifyFailed, options);
    this.name = "SwapRecordInvalidError";
  }
}

/**
 * The record's file name: `loopin_swap_<64 lower-case hex>.enc`.
 * @throws {RangeError} a swap hash that is not 32 bytes
 */
export function swapRecordFileName(swapHash: Uint8Array): string {
  if (swapHash.length !== 32) throw new RangeError(`swap hash is ${swapHash.length} bytes, want 32`);
  return `${SWAP_RECORD_FILE_PREFIX}${bytesToHex(swapHash)}${SWAP_RECORD_FILE_SUFFIX}`;
}

/** The swap hash (hex) of a record file name, or null when `name` is not one (exact, lower-case). */
export function parseSwapRecordFileName(name: string): string | null {
  const m = /^loopin_swap_([0-9a-f]{64})\.enc$/.exec(name);
  return m ? m[1] : null;
}

// ------------------------------------------------------------------------------------------- encode

const hx = bytesToHex;
const variants = <T, U>(r: Record<HtlcVariant, T>, f: (v: T) => U): Record<HtlcVariant, U> =>
  Object.fromEntries(HTLC_VARIANTS.map((v) => [v, f(r[v])])) as Record<HtlcVariant, U>;

/**
 * The record as JSON bytes (snake_case keys; bytes hex; sat and sat/kw as decimal strings). Validates first,
 * so an inconsistent record is never written.
 * @throws {SwapRecordInvalidError} see {@linkcode validateSwapRecord}
 */
export function encodeSwapRecord(r: LoopInSwapRecord): Uint8Array {
  validateSwapRecord(r, "the swap recovery record being written");
  const a = r.staticAddress;
  const json = {
    kind: SWAP_RECORD_KIND,
    version: r.version,
    network: r.network,
    swap_hash: hx(r.swapHash),
    preimage: hx(r.preimage),
    static_address: {
      id: a.id,
      pk_script: hx(a.pkScript),
      client_pubkey: hx(a.clientPubkey),
      server_pubkey: hx(a.serverPubkey),
      expiry: a.expiry,
      client_key_family: a.clientKeyFamily,
      client_key_index: a.clientKeyIndex,
    },
    htlc_key: { family: r.htlcKey.family, index: r.htlcKey.index, pubkey: hx(r.htlcKey.pubkey) },
    htlc_server_pubkey: hx(r.htlcServerPubkey),
    htlc_expiry: r.htlcExpiry,
    fee_rates_sat_per_kw: variants(r.feeRates, String),
    htlc_txids: r.htlcTxids,
    htlc_txs: variants(r.htlcTxs, hx),
    timeout_sweep_pk_script: hx(r.timeoutSweepPkScript),
    deposits: r.deposits.map((d) => ({
      outpoint: d.outpoint,
      value_sat: String(d.valueSat),
      pk_script: hx(d.pkScript),
      confirmation_height: d.confirmationHeight,
      timeout_sweep_pk_script: hx(d.timeoutSweepPkScript),
    })),
    initiation_height: r.initiationHeight,
    initiation_time: r.initiationTime.toISOString(),
    selected_amount_sat: String(r.selectedAmountSat),
    swap_amount_sat: String(r.swapAmountSat),
    total_deposit_sat: String(r.totalDepositSat),
    change_sat: String(r.changeSat),
    quoted_swap_fee_sat: String(r.quotedSwapFeeSat),
    max_swap_fee_sat: String(r.maxSwapFeeSat),
    payment_timeout_seconds: r.paymentTimeoutSeconds,
    fast: r.fast,
    label: r.label,
    initiator: r.initiator,
    last_hop: r.lastHop ? hx(r.lastHop) : null,
    swap_invoice: r.swapInvoice,
  };
  return new TextEncoder().encode(JSON.stringify(json));
}

// ------------------------------------------------------------------------------------------- decode

type Obj = Record<string, unknown>;

/** Field readers that name the file and the field in every error. */
function reader(what: string) {
  const bad = (field: string, why: string) => new SwapRecordInvalidError(`${what}: field "${field}" ${why}`);
  const obj = (v: unknown, field: string): Obj => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad(field, "is not an object");
    return v as Obj;
  };
  const str = (o: Obj, k: string, field = k): string => {
    const v = o[k];
    if (typeof v !== "string") throw bad(field, "is missing or not a string");
    return v;
  };
  const bytes = (o: Obj, k: string, len?: number, field = k): Uint8Array => {
    const s = str(o, k, field);
    if (!/^([0-9a-f]{2})*$/.test(s)) throw bad(field, "is not lower-case hex");
    const b = hexToBytes(s);
    if (len !== undefined && b.length !== len) throw bad(field, `is ${b.length} bytes, want ${len}`);
    return b;
  };
  const int = (o: Obj, k: string, min: number, max: number, field = k): number => {
    const v = o[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      throw bad(field, `is not an integer from ${min} to ${max}`);
    }
    return v;
  };
  const sat = (o: Obj, k: string, field = k): bigint => {
    const s = str(o, k, field);
    if (!/^(0|[1-9][0-9]{0,18})$/.test(s)) throw bad(field, "is not a non-negative decimal amount");
    return BigInt(s);
  };
  const bool = (o: Obj, k: string): boolean => {
    if (typeof o[k] !== "boolean") throw bad(k, "is missing or not a boolean");
    return o[k] as boolean;
  };
  return { bad, obj, str, bytes, int, sat, bool };
}

const I32 = 2 ** 31 - 1;
const U32 = 2 ** 32 - 1;

/**
 * Decodes and validates record JSON bytes.
 *
 * @param bytes the plaintext (as {@linkcode encodeSwapRecord} wrote it)
 * @param what how errors name the source, e.g. `Swap recovery record "<path>"`
 * @returns the record
 * @throws {SwapRecordInvalidError} not JSON, another `kind`, an unsupported `version`, a missing or malformed
 *   field (named), or an inconsistency ({@linkcode validateSwapRecord})
 */
export function decodeSwapRecord(bytes: Uint8Array, what: string): LoopInSwapRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new SwapRecordInvalidError(`${what}: the payload is not JSON (${(e as Error).message})`, {
      cause: e,
    });
  }
  const { bad, obj, str, bytes: b, int, sat, bool } = reader(what);
  const o = obj(raw, "(payload)");
  if (o.kind !== SWAP_RECORD_KIND) throw bad("kind", `is not "${SWAP_RECORD_KIND}"`);
  if (o.version !== SWAP_RECORD_VERSION) {
    throw bad(
      "version",
      `is ${JSON.stringify(o.version)}; this loopkit reads version ${SWAP_RECORD_VERSION}`,
    );
  }
  const network = str(o, "network");
  if (!isNetworkName(network)) throw bad("network", `"${network}" is not a network name`);
  const a = obj(o.static_address, "static_address");
  const k = obj(o.htlc_key, "htlc_key");
  const rates = obj(o.fee_rates_sat_per_kw, "fee_rates_sat_per_kw");
  const txids = obj(o.htlc_txids, "htlc_txids");
  const txs = obj(o.htlc_txs, "htlc_txs");
  if (!Array.isArray(o.deposits)) throw bad("deposits", "is not an array");
  const time = new Date(str(o, "initiation_time"));
  if (Number.isNaN(time.getTime())) throw bad("initiation_time", "is not an ISO-8601 time");
  const lastHop = o.last_hop === null ? null : b(o, "last_hop", 33);
  const r: LoopInSwapRecord = {
    version: SWAP_RECORD_VERSION,
    network,
    swapHash: b(o, "swap_hash", 32),
    preimage: b(o, "preimage", 32),
    staticAddress: {
      id: int(a, "id", 0, Number.MAX_SAFE_INTEGER, "static_address.id"),
      pkScript: b(a, "pk_script", 34, "static_address.pk_script"),
      clientPubkey: b(a, "client_pubkey", 33, "static_address.client_pubkey"),
      serverPubkey: b(a, "server_pubkey", 33, "static_address.server_pubkey"),
      expiry: int(a, "expiry", 1, U32, "static_address.expiry"),
      clientKeyFamily: int(a, "client_key_family", 0, I32, "static_address.client_key_family"),
      clientKeyIndex: int(a, "client_key_index", 0, I32, "static_address.client_key_index"),
    },
    htlcKey: {
      family: int(k, "family", 0, I32, "htlc_key.family"),
      index: int(k, "index", 0, I32, "htlc_key.index"),
      pubkey: b(k, "pubkey", 33, "htlc_key.pubkey"),
    },
    htlcServerPubkey: b(o, "htlc_server_pubkey", 33),
    htlcExpiry: int(o, "htlc_expiry", 1, U32),
    feeRates: variants({ standard: 0, high: 0, extreme: 0 }, () => 0n),
    htlcTxids: variants({ standard: 0, high: 0, extreme: 0 }, () => ""),
    htlcTxs: variants({ standard: 0, high: 0, extreme: 0 }, () => new Uint8Array()),
    timeoutSweepPkScript: b(o, "timeout_sweep_pk_script"),
    deposits: o.deposits.map((d: unknown, i: number) => {
      const f = (n: string) => `deposits[${i}].${n}`;
      const x = obj(d, `deposits[${i}]`);
      return {
        outpoint: str(x, "outpoint", f("outpoint")),
        valueSat: sat(x, "value_sat", f("value_sat")),
        pkScript: b(x, "pk_script", undefined, f("pk_script")),
        confirmationHeight: int(x, "confirmation_height", 0, I32, f("confirmation_height")),
        timeoutSweepPkScript: b(x, "timeout_sweep_pk_script", undefined, f("timeout_sweep_pk_script")),
      };
    }),
    initiationHeight: int(o, "initiation_height", 0, I32),
    initiationTime: time,
    selectedAmountSat: sat(o, "selected_amount_sat"),
    swapAmountSat: sat(o, "swap_amount_sat"),
    totalDepositSat: sat(o, "total_deposit_sat"),
    changeSat: sat(o, "change_sat"),
    quotedSwapFeeSat: sat(o, "quoted_swap_fee_sat"),
    maxSwapFeeSat: sat(o, "max_swap_fee_sat"),
    paymentTimeoutSeconds: int(o, "payment_timeout_seconds", 1, U32),
    fast: bool(o, "fast"),
    label: str(o, "label"),
    initiator: str(o, "initiator"),
    lastHop,
    swapInvoice: str(o, "swap_invoice"),
  };
  for (const v of HTLC_VARIANTS) {
    r.feeRates[v] = sat(rates, v, `fee_rates_sat_per_kw.${v}`);
    r.htlcTxids[v] = str(txids, v, `htlc_txids.${v}`);
    r.htlcTxs[v] = b(txs, v, undefined, `htlc_txs.${v}`);
  }
  validateSwapRecord(r, what);
  return r;
}

function validPoint(key: Uint8Array): boolean {
  try {
    secp256k1.Point.fromBytes(key).assertValidity();
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks a record for internal consistency, so that what it says is what the sweep needs: `sha256(preimage)` =
 * swap hash; the three keys on the curve; at least one deposit, canonical outpoints, no duplicate, each paying
 * the static address; total = Σ deposits, change = total − swap amount; every HTLC transaction decodes, has the
 * stated txid, spends exactly the deposits in order, and pays at most the swap amount (the fee comes out of it)
 * at output 0 to the P2WSH of the V2 HTLC script built from the record's keys, swap hash and `htlc_expiry` (spec §4.2).
 *
 * @param what how errors name the source
 * @throws {SwapRecordInvalidError} naming the first failing check
 */
export function validateSwapRecord(r: LoopInSwapRecord, what: string): void {
  const fail = (why: string) => new SwapRecordInvalidError(`${what}: ${why}`);
  if (!equalBytes(sha256(r.preimage), r.swapHash)) throw fail("the swap hash is not sha256 of the preimage");
  for (
    const [name, key] of [
      ["htlc_key.pubkey", r.htlcKey.pubkey],
      ["htlc_server_pubkey", r.htlcServerPubkey],
      ["static_address.client_pubkey", r.staticAddress.clientPubkey],
      ["static_address.server_pubkey", r.staticAddress.serverPubkey],
    ] as const
  ) {
    if (key.length !== 33 || !validPoint(key)) throw fail(`${name} is not a valid compressed secp256k1 key`);
  }
  if (!r.deposits.length) throw fail("the swap has no deposits");
  const seen = new Set<string>();
  let total = 0n;
  for (const [i, d] of r.deposits.entries()) {
    let canonical: string;
    try {
      canonical = formatOutpoint(parseOutpoint(d.outpoint));
    } catch (e) {
      throw fail(`deposits[${i}].outpoint "${d.outpoint}" is not an outpoint (${(e as Error).message})`);
    }
    if (canonical !== d.outpoint) throw fail(`deposits[${i}].outpoint "${d.outpoint}" is not canonical`);
    if (seen.has(canonical)) throw fail(`deposit ${canonical} is listed twice`);
    seen.add(canonical);
    if (d.valueSat <= 0n) throw fail(`deposits[${i}].value_sat is not positive`);
    if (!equalBytes(d.pkScript, r.staticAddress.pkScript)) {
      throw fail(`deposit ${canonical} does not pay the record's static address`);
    }
    total += d.valueSat;
  }
  if (total !== r.totalDepositSat) throw fail(`the deposits hold ${total} sat, not total_deposit_sat`);
  if (r.swapAmountSat <= 0n || r.swapAmountSat > r.totalDepositSat) {
    throw fail("swap_amount_sat is not between 1 and total_deposit_sat");
  }
  if (r.changeSat !== r.totalDepositSat - r.swapAmountSat) throw fail("change_sat ≠ total − swap amount");
  const htlcPkScript = htlcP2wshPkScript(htlcV2Script({
    senderPubkey: r.htlcKey.pubkey,
    receiverPubkey: r.htlcServerPubkey,
    swapHash: r.swapHash,
    cltvExpiry: r.htlcExpiry,
  }));
  for (const v of HTLC_VARIANTS) {
    let txid: string;
    let tx;
    try {
      tx = decodeRawTx(r.htlcTxs[v]);
      txid = txidOfRaw(r.htlcTxs[v]);
    } catch {
      throw fail(`htlc_txs.${v} does not decode as a transaction`);
    }
    if (txid !== r.htlcTxids[v]) throw fail(`htlc_txids.${v} is not the txid of htlc_txs.${v}`);
    if (tx.inputsLength !== r.deposits.length) {
      throw fail(`htlc_txs.${v} does not spend exactly the deposits`);
    }
    for (let i = 0; i < tx.inputsLength; i++) {
      const input = tx.getInput(i);
      const op = `${bytesToHex(input.txid!)}:${input.index}`;
      if (op !== r.deposits[i].outpoint) throw fail(`htlc_txs.${v} input ${i} is not deposit ${i}`);
    }
    const out0 = tx.outputsLength ? tx.getOutput(0) : undefined;
    if (!out0?.script || !equalBytes(out0.script, htlcPkScript)) {
      throw fail(`htlc_txs.${v} output 0 does not pay the HTLC of these keys, swap hash and htlc_expiry`);
    }
    // The fee comes out of the HTLC output (spec §4.3): at most the swap amount, never nothing.
    if (out0.amount === undefined || out0.amount <= 0n || out0.amount > r.swapAmountSat) {
      throw fail(`htlc_txs.${v} output 0 holds ${out0.amount} sat, not up to the swap amount`);
    }
  }
}

// ------------------------------------------------------------------------------------------- envelope

/**
 * Seals a record: the backup envelope (`loopbak1` ‖ nonce ‖ secretbox, core/backup/envelope.ts) over
 * {@linkcode encodeSwapRecord}.
 * @param key the 32-byte backup key (`deriveBackupKey`)
 * @param nonce tests only; default a fresh CSPRNG nonce
 * @throws {SwapRecordInvalidError} an inconsistent record
 */
export function sealSwapRecord(key: Uint8Array, r: LoopInSwapRecord, nonce?: Uint8Array): Uint8Array {
  return sealBackup(key, encodeSwapRecord(r), nonce);
}

/**
 * Opens sealed record bytes and decodes them.
 *
 * @param key the 32-byte backup key
 * @param bytes the whole file
 * @param path the file's path (named in every error)
 * @param network when given, the record's network must equal it
 * @throws {SwapRecordInvalidError} (exit 3) a file too short (truncated), another format, undecryptable (wrong
 *   lnd seed or altered bytes), a bad payload, another network, or a swap hash that differs from the name's
 */
export function openSwapRecord(
  key: Uint8Array,
  bytes: Uint8Array,
  path: string,
  network?: NetworkName,
): LoopInSwapRecord {
  const what = `Swap recovery record "${path}"`;
  let plain: Uint8Array;
  try {
    plain = openBackup(key, bytes);
  } catch (e) {
    const hint = (e as LoopkitError).code === "undecryptable"
      ? " (sealed by another lnd seed, or the file is altered or truncated)"
      : "";
    throw new SwapRecordInvalidError(`${what}: ${(e as Error).message}${hint}`, { cause: e });
  }
  const r = decodeSwapRecord(plain, what);
  if (network !== undefined && r.network !== network) {
    throw new SwapRecordInvalidError(`${what}: it is for network ${r.network}, not ${network}`);
  }
  const base = path.slice(path.lastIndexOf("/") + 1);
  const named = parseSwapRecordFileName(base);
  if (named !== null && named !== bytesToHex(r.swapHash)) {
    throw new SwapRecordInvalidError(`${what}: the file name's swap hash is not the record's`);
  }
  return r;
}

// ------------------------------------------------------------------------------------------- from initiation

/** What {@linkcode swapRecordOf} takes: the initiation's values right before the marker (initiate.ts step 8). */
export interface SwapRecordSource {
  network: NetworkName;
  swapHash: Uint8Array;
  preimage: Uint8Array;
  htlcKey: { keyLocator: { family: number; index: number }; rawKeyBytes: Uint8Array };
  quote: {
    deposits: readonly {
      txid: string;
      vout: number;
      amountSat: bigint;
      pkScript: Uint8Array;
      confirmationHeight: number;
      timeoutSweepPkScript: Uint8Array;
    }[];
    address: SwapRecordAddress;
    selectedAmountSat: bigint;
    swapAmountSat: bigint;
    totalDepositSat: bigint;
    changeSat: bigint;
    swapFeeSat: bigint;
    tipHeight: number;
  };
  maxSwapFeeSat: bigint;
  paymentTimeoutSeconds: number;
  fast: boolean;
  label: string;
  initiator: string;
  lastHop: Uint8Array | null;
  initiationTime: Date;
  htlcServerPubkey: Uint8Array;
  htlcExpiry: number;
  feeRates: Record<HtlcVariant, bigint>;
  /** The built variants (`buildHtlcTx`): unsigned bytes and txid. */
  htlcTxs: Record<HtlcVariant, { tx: Uint8Array; txid: string }>;
  timeoutSweepPkScript: Uint8Array;
  swapInvoice: string;
}

/**
 * The record of an initiation about to arm (pure; copies every byte array).
 * @throws {SwapRecordInvalidError} when the values are inconsistent ({@linkcode validateSwapRecord})
 */
export function swapRecordOf(s: SwapRecordSource): LoopInSwapRecord {
  const q = s.quote;
  const a = q.address;
  const r: LoopInSwapRecord = {
    version: SWAP_RECORD_VERSION,
    network: s.network,
    swapHash: s.swapHash.slice(),
    preimage: s.preimage.slice(),
    staticAddress: {
      id: a.id,
      pkScript: a.pkScript.slice(),
      clientPubkey: a.clientPubkey.slice(),
      serverPubkey: a.serverPubkey.slice(),
      expiry: a.expiry,
      clientKeyFamily: a.clientKeyFamily,
      clientKeyIndex: a.clientKeyIndex,
    },
    htlcKey: {
      family: s.htlcKey.keyLocator.family,
      index: s.htlcKey.keyLocator.index,
      pubkey: s.htlcKey.rawKeyBytes.slice(),
    },
    htlcServerPubkey: s.htlcServerPubkey.slice(),
    htlcExpiry: s.htlcExpiry,
    feeRates: { ...s.feeRates },
    htlcTxids: variants(s.htlcTxs, (t) => t.txid),
    htlcTxs: variants(s.htlcTxs, (t) => t.tx.slice()),
    timeoutSweepPkScript: s.timeoutSweepPkScript.slice(),
    deposits: q.deposits.map((d) => ({
      outpoint: formatOutpoint({ txid: d.txid, vout: d.vout }),
      valueSat: d.amountSat,
      pkScript: d.pkScript.slice(),
      confirmationHeight: d.confirmationHeight,
      timeoutSweepPkScript: d.timeoutSweepPkScript.slice(),
    })),
    initiationHeight: q.tipHeight,
    initiationTime: s.initiationTime,
    selectedAmountSat: q.selectedAmountSat,
    swapAmountSat: q.swapAmountSat,
    totalDepositSat: q.totalDepositSat,
    changeSat: q.changeSat,
    quotedSwapFeeSat: q.swapFeeSat,
    maxSwapFeeSat: s.maxSwapFeeSat,
    paymentTimeoutSeconds: s.paymentTimeoutSeconds,
    fast: s.fast,
    label: s.label,
    initiator: s.initiator,
    lastHop: s.lastHop ? s.lastHop.slice() : null,
    swapInvoice: s.swapInvoice,
  };
  validateSwapRecord(r, `Swap recovery record of loop-in ${bytesToHex(s.swapHash)}`);
  return r;
}
