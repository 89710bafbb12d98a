/**
 * {@linkcode GrpcLndClient}: the {@linkcode LndClient} loopkit uses in production, over lnd's gRPC
 * API (`lnd/rpc.ts`). Every method is one lnd RPC; requests and responses are converted between
 * lnd's wire conventions (snake_case, int64 as strings, internal-order hashes) and loopkit's
 * (`Uint8Array`, `bigint`, display-hex txids). Responses are checked for shape (lengths, hex)
 * before they reach core code.
 *
 * Errors: every failure is a `LoopkitError` mapped by `lndError` (`lnd/errors.ts`):
 * `lnd_unreachable`/`lnd_timeout`/`lnd_not_ready` (exit 75), `lnd_auth`/`lnd_tls` (exit 2),
 * `LndRpcError` `lnd_rpc`/`lnd_bad_response` (exit 1). Invalid arguments throw `RangeError`.
 *
 * @module
 */
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { Transaction } from "@scure/btc-signer";
import { Buffer } from "node:buffer";
import { ExitCode } from "../core/errors.ts";
import {
  GrpcStatus,
  INVOICE_NOT_FOUND_PATTERN,
  INVOICE_SETTLED_PATTERN,
  lndError,
  LndInvoiceErrorCode,
  LndRpcError,
} from "./errors.ts";
import { DEFAULT_DEADLINE_MS, type LndRpc, type RpcClient, serverStream, unary } from "./rpc.ts";
import { Metadata } from "@grpc/grpc-js";
import { type DecodedUtxos, decodeListUnspent, WireError } from "./utxo_wire.ts";
import { rawListUnspent } from "./unspent_stream.ts";
import type {
  AddInvoiceRequest,
  AddInvoiceResult,
  ConfirmationDetails,
  ImportTapscriptResult,
  InvoiceInfo,
  InvoiceState,
  KeyDescriptor,
  KeyLocator,
  LndClient,
  LndInfo,
  MuSig2Session,
  PaymentResult,
  PaymentStatus,
  RouteHint,
  SignDescriptor,
  SpendDetails,
  TxOut,
  Utxo,
  WalletTransaction,
} from "./types.ts";

/** Tapscript leaf version of BIP-342 scripts (spec/static-address-and-deposits.md §2.8). */
export const TAPSCRIPT_LEAF_VERSION = 0xc0;

/** Extra time given to a SendPaymentV2 stream beyond lnd's own `timeout_seconds`, ms. */
const PAYMENT_STREAM_MARGIN_MS = 30_000;

/** Options of {@linkcode GrpcLndClient}. */
export interface GrpcLndClientOptions {
  /** Deadline of each unary call, ms (default 30 000). */
  callTimeoutMs?: number;
}

// Wire shapes (the fields read; names as in lnd's .proto files).
interface WireKeyLocator {
  key_family: number;
  key_index: number;
}
interface WireKeyDescriptor {
  raw_key_bytes: Uint8Array;
  key_loc: WireKeyLocator | null;
}
interface WirePayment {
  payment_hash: string;
  payment_preimage: string;
  status: string;
  fee_msat: string;
  value_msat: string;
  failure_reason: string;
}
interface WireConfEvent {
  event?: "conf" | "reorg";
  conf: { raw_tx: Uint8Array; block_hash: Uint8Array; block_height: number; tx_index: number } | null;
}
interface WireSpendEvent {
  event?: "spend" | "reorg";
  spend: { spending_tx_hash: Uint8Array; spending_input_index: number; spending_height: number } | null;
}

interface WireInvoice {
  state: string;
  value_msat: string;
  amt_paid_msat: string;
  settle_date: string;
  payment_request: string;
}
interface WireTransaction {
  tx_hash: string;
  raw_tx_hex: string;
  num_confirmations: number;
  block_height: number;
  previous_outpoints: { outpoint: string }[] | null;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX = /^([0-9a-f]{2})*$/;
const OUTPOINT = /^[0-9a-f]{64}:\d{1,10}$/;
const INVOICE_STATES: readonly InvoiceState[] = ["OPEN", "SETTLED", "CANCELED", "ACCEPTED"];
/** lnd's "no such MuSig2 session" text (`input.MusigSessionManager`). */
const SESSION_NOT_FOUND = /not found/i;
const FINAL_STATUSES: readonly PaymentStatus[] = ["SUCCEEDED", "FAILED"];

function assertInt(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`lnd: ${name} ${v} is out of range [${min}, ${max}]`);
  }
}

function assertKeyLocator(loc: KeyLocator): void {
  assertInt("key family", loc.family, 0, 0x7fffffff);
  assertInt("key index", loc.index, 0, 0x7fffffff);
}

function assertLen(name: string, b: Uint8Array, len: number): void {
  if (b.length !== len) throw new RangeError(`lnd: ${name} must be ${len} bytes, got ${b.length}`);
}

/** Route hints in lnd's wire layout (`lnrpc.RouteHint`), checked. */
export function wireRouteHints(hints: RouteHint[] | undefined): object[] {
  return (hints ?? []).map((h, i) => ({
    hop_hints: h.hopHints.map((hop, j) => {
      const where = `route hint ${i} hop ${j}`;
      if (!/^0[23][0-9a-f]{64}$/.test(hop.nodeId)) {
        throw new RangeError(`lnd: ${where} node id is not a 33-byte compressed key in hex`);
      }
      if (hop.chanId < 0n || hop.chanId >= 1n << 64n) {
        throw new RangeError(`lnd: ${where} chan id out of range`);
      }
      assertInt(`${where} fee base msat`, hop.feeBaseMsat, 0, 0xffffffff);
      assertInt(`${where} fee proportional millionths`, hop.feeProportionalMillionths, 0, 0xffffffff);
      assertInt(`${where} cltv expiry delta`, hop.cltvExpiryDelta, 0, 0xffffffff);
      return {
        node_id: hop.nodeId,
        chan_id: hop.chanId.toString(),
        fee_base_msat: hop.feeBaseMsat,
        fee_proportional_millionths: hop.feeProportionalMillionths,
        cltv_expiry_delta: hop.cltvExpiryDelta,
      };
    }),
  }));
}

/** Reverses a byte array (display hex ⇄ internal byte order of hashes). */
function reversed(b: Uint8Array): Uint8Array {
  return Uint8Array.from(b).reverse();
}

/** Copies a Buffer into a plain Uint8Array (callers compare with `Uint8Array` equality). */
function bytes(b: Uint8Array | null | undefined): Uint8Array {
  return b ? Uint8Array.from(b) : new Uint8Array();
}

/** The lnd client over gRPC. Owns `rpc`: {@linkcode close} closes it. */
/**
 * True when a stream ended because the call's own deadline ran out: DEADLINE_EXCEEDED, or CANCELLED once
 * `deadlineAt` has passed. lnd's Go server enforces the same `grpc-timeout` and resets the stream with CANCELLED
 * ("Call cancelled"); on a loaded machine that reset can be read before the client's deadline timer fires.
 * A CANCELLED before the deadline stays an error.
 */
export function ownDeadlinePassed(err: unknown, deadlineAt: number): boolean {
  const code = (err as { code?: unknown }).code;
  return code === GrpcStatus.DEADLINE_EXCEEDED || (code === GrpcStatus.CANCELLED && Date.now() >= deadlineAt);
}

export class GrpcLndClient implements LndClient {
  readonly #rpc: LndRpc;
  readonly #callTimeoutMs: number;

  /**
   * @param rpc an open connection from `openLndRpc` (normally made by `connectLnd`)
   * @param opts call deadline
   */
  constructor(rpc: LndRpc, opts: GrpcLndClientOptions = {}) {
    this.#rpc = rpc;
    this.#callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_DEADLINE_MS;
  }

  /** Unary call with error mapping. `rpc` is "Service.Method". */
  async #call<Res>(
    client: RpcClient,
    rpc: string,
    request: object,
    opts: { deadlineMs?: number; phase?: "connect" | "call" } = {},
  ): Promise<Res> {
    const method = rpc.slice(rpc.indexOf(".") + 1);
    try {
      return await unary<Res>(client, method, request, {
        deadlineMs: opts.deadlineMs ?? this.#callTimeoutMs,
      });
    } catch (err) {
      throw lndError(err, { rpc, rpcServer: this.#rpc.rpcServer, phase: opts.phase ?? "call" });
    }
  }

  #badResponse(rpc: string, what: string): LndRpcError {
    return new LndRpcError(rpc, undefined, `unexpected response: ${what}`, "lnd_bad_response");
  }

  #keyDescriptor(rpc: string, res: WireKeyDescriptor): KeyDescriptor {
    const raw = bytes(res.raw_key_bytes);
    if (raw.length !== 33 || (raw[0] !== 2 && raw[0] !== 3)) {
      throw this.#badResponse(rpc, `raw_key_bytes is not a 33-byte compressed key (${raw.length} bytes)`);
    }
    if (!res.key_loc) throw this.#badResponse(rpc, "key_loc is missing");
    return { rawKeyBytes: raw, keyLocator: { family: res.key_loc.key_family, index: res.key_loc.key_index } };
  }

  /**
   * `lnrpc.Lightning/GetInfo`.
   * @param opts `deadlineMs` (default: the call timeout); `phase: "connect"` when this is the
   *   first call of a session, so that a deadline is reported as `lnd_unreachable`
   */
  async getInfo(opts: { deadlineMs?: number; phase?: "connect" | "call" } = {}): Promise<LndInfo> {
    const res = await this.#call<{
      identity_pubkey: string;
      block_height: number;
      block_hash: string;
      chains: { chain: string; network: string }[];
      synced_to_chain: boolean;
      version: string;
    }>(this.#rpc.lightning, "Lightning.GetInfo", {}, opts);
    return {
      identityPubkey: res.identity_pubkey,
      blockHeight: res.block_height,
      blockHash: res.block_hash,
      chains: res.chains.map((c) => ({ chain: c.chain, network: c.network })),
      syncedToChain: res.synced_to_chain,
      version: res.version,
    };
  }

  /**
   * `signrpc.Signer/DeriveSharedKey` with `ephemeral_pubkey` and the deprecated `key_loc` field
   * (`key_desc` unset), exactly as Loop calls it (spec/backup-and-recovery.md §1.5).
   * @throws {RangeError} when `ephemeralPubkey` is not 33 bytes or the locator is out of range
   */
  async deriveSharedKey(ephemeralPubkey: Uint8Array, keyLoc: KeyLocator): Promise<Uint8Array> {
    if (ephemeralPubkey.length !== 33) {
      throw new RangeError(`lnd: ephemeral pubkey must be 33 bytes, got ${ephemeralPubkey.length}`);
    }
    assertKeyLocator(keyLoc);
    const rpc = "Signer.DeriveSharedKey";
    const res = await this.#call<{ shared_key: Uint8Array }>(this.#rpc.signer, rpc, {
      ephemeral_pubkey: ephemeralPubkey,
      key_loc: { key_family: keyLoc.family, key_index: keyLoc.index },
    });
    const key = bytes(res.shared_key);
    if (key.length !== 32) throw this.#badResponse(rpc, `shared_key is ${key.length} bytes, expected 32`);
    return key;
  }

  /** `walletrpc.WalletKit/DeriveKey`; checks lnd answers for the requested locator. */
  async deriveKey(keyLoc: KeyLocator): Promise<KeyDescriptor> {
    assertKeyLocator(keyLoc);
    const rpc = "WalletKit.DeriveKey";
    const res = await this.#call<WireKeyDescriptor>(this.#rpc.walletKit, rpc, {
      key_family: keyLoc.family,
      key_index: keyLoc.index,
    });
    const desc = this.#keyDescriptor(rpc, res);
    if (desc.keyLocator.family !== keyLoc.family || desc.keyLocator.index !== keyLoc.index) {
      throw this.#badResponse(
        rpc,
        `key_loc ${desc.keyLocator.family}/${desc.keyLocator.index} differs from the request ${keyLoc.family}/${keyLoc.index}`,
      );
    }
    return desc;
  }

  /** `walletrpc.WalletKit/DeriveNextKey`; checks lnd answers in the requested family. */
  async deriveNextKey(family: number): Promise<KeyDescriptor> {
    assertInt("key family", family, 0, 0x7fffffff);
    const rpc = "WalletKit.DeriveNextKey";
    const res = await this.#call<WireKeyDescriptor>(this.#rpc.walletKit, rpc, { key_family: family });
    const desc = this.#keyDescriptor(rpc, res);
    if (desc.keyLocator.family !== family) {
      throw this.#badResponse(rpc, `key family ${desc.keyLocator.family} differs from the request ${family}`);
    }
    return desc;
  }

  /**
   * `walletrpc.WalletKit/ListUnspent` (see {@linkcode LndClient.listUnspent}). The answer is decoded by
   * `lnd/utxo_wire.ts` straight from the message bytes; with `opts.pkScripts` only the UTXOs paying one of
   * those scripts are decoded at all, so a 100 000-UTXO wallet costs its bytes, not 100 000 objects.
   */
  async listUnspent(
    minConfs: number,
    maxConfs: number,
    opts?: { account?: string; pkScripts?: readonly Uint8Array[] },
  ): Promise<Utxo[]> {
    assertInt("min confs", minConfs, 0, 0x7fffffff);
    assertInt("max confs", maxConfs, 0, 0x7fffffff);
    const rpc = "WalletKit.ListUnspent";
    const client = this.#rpc.walletKit;
    const def = (client.constructor as unknown as {
      service: Record<string, { path: string; requestSerialize: (req: object) => Buffer }>;
    }).service.ListUnspent;
    const request = {
      min_confs: minConfs,
      max_confs: maxConfs,
      ...(opts?.account ? { account: opts.account } : {}),
    };
    const pkScripts = opts?.pkScripts;
    let decoded: DecodedUtxos | WireError;
    const endpoint = this.#rpc.endpoint;
    if (pkScripts && !opts?.account && endpoint) {
      // The whole wallet, of which few UTXOs are kept: decode it as it arrives on a raw HTTP/2 call, so the
      // 17.5 MB answer of a 100 000-UTXO wallet is never held whole (bench/README.md).
      let raw: DecodedUtxos;
      try {
        raw = await rawListUnspent(endpoint, request, pkScripts, this.#callTimeoutMs);
      } catch (err) {
        if (err instanceof WireError) throw this.#badResponse(rpc, err.message);
        throw lndError(err, { rpc, rpcServer: this.#rpc.rpcServer, phase: "call" });
      }
      return this.#checkUtxos(rpc, raw.utxos);
    }
    try {
      decoded = await new Promise<DecodedUtxos | WireError>((resolve, reject) => {
        client.makeUnaryRequest(
          def.path,
          def.requestSerialize,
          (buf: Buffer): DecodedUtxos | WireError => {
            try {
              return decodeListUnspent(buf, pkScripts);
            } catch (err) {
              if (err instanceof WireError) return err;
              throw err;
            }
          },
          request,
          new Metadata(),
          { deadline: Date.now() + this.#callTimeoutMs },
          (err, res) => (err ? reject(err) : resolve(res!)),
        );
      });
    } catch (err) {
      throw lndError(err, { rpc, rpcServer: this.#rpc.rpcServer, phase: "call" });
    }
    if (decoded instanceof WireError) throw this.#badResponse(rpc, decoded.message);
    return this.#checkUtxos(rpc, decoded.utxos);
  }

  #checkUtxos(rpc: string, utxos: Utxo[]): Utxo[] {
    for (const u of utxos) {
      if (!HEX64.test(u.txid)) throw this.#badResponse(rpc, `utxo txid "${u.txid}" is not 64 hex digits`);
    }
    return utxos;
  }

  /**
   * `walletrpc.WalletKit/ImportTapscript` (see {@linkcode LndClient.importTapscript}).
   * @throws {RangeError} when the internal key is not 32 bytes or the script is empty
   */
  async importTapscript(
    internalKeyXOnly: Uint8Array,
    leafScript: Uint8Array,
  ): Promise<ImportTapscriptResult> {
    if (internalKeyXOnly.length !== 32) {
      throw new RangeError(`lnd: internal key must be 32 bytes (x-only), got ${internalKeyXOnly.length}`);
    }
    if (leafScript.length === 0) throw new RangeError("lnd: tapscript leaf is empty");
    const rpc = "WalletKit.ImportTapscript";
    try {
      const res = await this.#call<{ p2tr_address: string }>(this.#rpc.walletKit, rpc, {
        internal_public_key: internalKeyXOnly,
        full_tree: { all_leaves: [{ leaf_version: TAPSCRIPT_LEAF_VERSION, script: leafScript }] },
      });
      return { imported: true, address: res.p2tr_address };
    } catch (err) {
      if (err instanceof LndRpcError && err.details.includes("already exists")) return { imported: false };
      throw err;
    }
  }

  /** `walletrpc.WalletKit/NextAddr`: default account, `TAPROOT_PUBKEY`, not change. */
  async nextAddr(): Promise<string> {
    const rpc = "WalletKit.NextAddr";
    const res = await this.#call<{ addr: string }>(this.#rpc.walletKit, rpc, {
      account: "",
      type: "TAPROOT_PUBKEY",
      change: false,
    });
    if (!res.addr) throw this.#badResponse(rpc, "empty address");
    return res.addr;
  }

  /** `walletrpc.WalletKit/PublishTransaction`; a non-empty `publish_error` throws `LndRpcError`. */
  async publishTransaction(tx: Uint8Array, label = ""): Promise<void> {
    if (tx.length === 0) throw new RangeError("lnd: transaction is empty");
    const rpc = "WalletKit.PublishTransaction";
    const res = await this.#call<{ publish_error: string }>(this.#rpc.walletKit, rpc, { tx_hex: tx, label });
    if (res.publish_error) throw new LndRpcError(rpc, undefined, res.publish_error);
  }

  async #estimateFee(confTarget: number): Promise<{ sat_per_kw: string; min_relay_fee_sat_per_kw: string }> {
    assertInt("conf target", confTarget, 1, 1008);
    return await this.#call(this.#rpc.walletKit, "WalletKit.EstimateFee", { conf_target: confTarget });
  }

  /** `walletrpc.WalletKit/EstimateFee` → `sat_per_kw`. */
  async estimateFeeSatPerKw(confTarget: number): Promise<bigint> {
    return BigInt((await this.#estimateFee(confTarget)).sat_per_kw);
  }

  /** `walletrpc.WalletKit/EstimateFee(6)` → `min_relay_fee_sat_per_kw` (lndclient `MinRelayFee`). */
  async minRelayFeeSatPerKw(): Promise<bigint> {
    return BigInt((await this.#estimateFee(6)).min_relay_fee_sat_per_kw);
  }

  /**
   * `chainrpc.ChainNotifier/RegisterConfirmationsNtfn` (see {@linkcode LndClient.registerConfirmation}).
   * Reorg events before the confirmation are skipped. Default timeout 30 s.
   */
  async registerConfirmation(
    txid: string | null,
    pkScript: Uint8Array,
    numConfs: number,
    heightHint: number,
    opts: { timeoutMs?: number } = {},
  ): Promise<ConfirmationDetails | null> {
    if (txid !== null && !HEX64.test(txid)) throw new RangeError(`lnd: txid "${txid}" is not 64 hex digits`);
    if (pkScript.length === 0) throw new RangeError("lnd: pkScript is empty");
    assertInt("num confs", numConfs, 1, 0xffff);
    assertInt("height hint", heightHint, 0, 0xffffffff);
    const rpc = "ChainNotifier.RegisterConfirmationsNtfn";
    const request = {
      txid: txid === null ? new Uint8Array(32) : reversed(hexToBytes(txid)),
      script: pkScript,
      num_confs: numConfs,
      height_hint: heightHint,
    };
    const deadlineMs = opts.timeoutMs ?? DEFAULT_DEADLINE_MS;
    const deadlineAt = Date.now() + deadlineMs;
    try {
      for await (
        const ev of serverStream<WireConfEvent>(
          this.#rpc.chainNotifier,
          "RegisterConfirmationsNtfn",
          request,
          { deadlineMs },
        )
      ) {
        if (ev.event !== "conf" || !ev.conf) continue;
        const hash = bytes(ev.conf.block_hash);
        if (hash.length !== 32) throw this.#badResponse(rpc, `block_hash is ${hash.length} bytes`);
        return {
          blockHeight: ev.conf.block_height,
          blockHash: bytesToHex(reversed(hash)),
          txIndex: ev.conf.tx_index,
          rawTx: bytes(ev.conf.raw_tx),
        };
      }
    } catch (err) {
      if (ownDeadlinePassed(err, deadlineAt)) return null;
      throw lndError(err, { rpc, rpcServer: this.#rpc.rpcServer, phase: "call" });
    }
    throw new LndRpcError(rpc, undefined, "the notification stream ended before a confirmation");
  }

  /**
   * `chainrpc.ChainNotifier/RegisterSpendNtfn` (see {@linkcode LndClient.registerSpend}). Sends the
   * outpoint hash in internal byte order; reorg events before the spend are skipped; the stream is
   * cancelled once a spend arrives or the timeout passes. Default timeout 30 s.
   * @throws {RangeError} for a malformed txid, a vout or height hint out of range, an empty pkScript
   */
  async registerSpend(
    outpoint: { txid: string; vout: number },
    pkScript: Uint8Array,
    heightHint: number,
    opts: { timeoutMs?: number } = {},
  ): Promise<SpendDetails | null> {
    if (!HEX64.test(outpoint.txid)) throw new RangeError(`lnd: txid "${outpoint.txid}" is not 64 hex digits`);
    assertInt("vout", outpoint.vout, 0, 0xffffffff);
    if (pkScript.length === 0) throw new RangeError("lnd: pkScript is empty");
    assertInt("height hint", heightHint, 0, 0xffffffff);
    const rpc = "ChainNotifier.RegisterSpendNtfn";
    const request = {
      outpoint: { hash: reversed(hexToBytes(outpoint.txid)), index: outpoint.vout },
      script: pkScript,
      height_hint: heightHint,
    };
    const deadlineMs = opts.timeoutMs ?? DEFAULT_DEADLINE_MS;
    const deadlineAt = Date.now() + deadlineMs;
    try {
      for await (
        const ev of serverStream<WireSpendEvent>(this.#rpc.chainNotifier, "RegisterSpendNtfn", request, {
          deadlineMs,
        })
      ) {
        if (ev.event !== "spend" || !ev.spend) continue;
        const hash = bytes(ev.spend.spending_tx_hash);
        if (hash.length !== 32) throw this.#badResponse(rpc, `spending_tx_hash is ${hash.length} bytes`);
        return {
          spendingTxid: bytesToHex(reversed(hash)),
          spendingHeight: ev.spend.spending_height,
          spendingInputIndex: ev.spend.spending_input_index,
        };
      }
    } catch (err) {
      if (ownDeadlinePassed(err, deadlineAt)) return null;
      throw lndError(err, { rpc, rpcServer: this.#rpc.rpcServer, phase: "call" });
    }
    throw new LndRpcError(rpc, undefined, "the notification stream ended before a spend");
  }

  /**
   * `signrpc.Signer/SignOutputRaw` (see {@linkcode LndClient.signOutputRaw}). Sends each key as
   * `key_desc` with `key_loc` (and `raw_key_bytes` when given).
   * @throws {RangeError} for an empty transaction, no descriptors, a bad locator or input index
   * @throws {LndRpcError} `lnd_bad_response` when lnd returns another number of signatures or a
   *   taproot signature that is not 64 bytes
   */
  async signOutputRaw(
    tx: Uint8Array,
    signDescs: SignDescriptor[],
    prevOutputs: TxOut[],
  ): Promise<Uint8Array[]> {
    if (tx.length === 0) throw new RangeError("lnd: transaction is empty");
    if (signDescs.length === 0) throw new RangeError("lnd: no sign descriptors");
    const rpc = "Signer.SignOutputRaw";
    const txOut = (o: TxOut) => ({ value: o.valueSat.toString(), pk_script: o.pkScript });
    const descs = signDescs.map((d) => {
      assertKeyLocator(d.keyDesc.keyLocator);
      assertInt("input index", d.inputIndex, 0, 0x7fffffff);
      assertInt("sighash", d.sighash, 0, 0xff);
      if (d.keyDesc.rawKeyBytes && d.keyDesc.rawKeyBytes.length !== 33) {
        throw new RangeError(`lnd: raw key must be 33 bytes, got ${d.keyDesc.rawKeyBytes.length}`);
      }
      return {
        key_desc: {
          raw_key_bytes: d.keyDesc.rawKeyBytes ?? new Uint8Array(),
          key_loc: { key_family: d.keyDesc.keyLocator.family, key_index: d.keyDesc.keyLocator.index },
        },
        witness_script: d.witnessScript ?? new Uint8Array(),
        output: txOut(d.output),
        sighash: d.sighash,
        input_index: d.inputIndex,
        sign_method: d.signMethod,
      };
    });
    const res = await this.#call<{ raw_sigs: Uint8Array[] }>(this.#rpc.signer, rpc, {
      raw_tx_bytes: tx,
      sign_descs: descs,
      prev_outputs: prevOutputs.map(txOut),
    });
    const sigs = (res.raw_sigs ?? []).map((s) => bytes(s));
    if (sigs.length !== signDescs.length) {
      throw this.#badResponse(rpc, `${sigs.length} signatures for ${signDescs.length} descriptors`);
    }
    signDescs.forEach((d, i) => {
      if (d.signMethod !== "SIGN_METHOD_WITNESS_V0" && d.sighash === 0 && sigs[i].length !== 64) {
        throw this.#badResponse(rpc, `taproot signature ${i} is ${sigs[i].length} bytes, expected 64`);
      }
    });
    return sigs;
  }

  /** Follows a payment stream until a final status or the deadline. */
  async #followPayment(
    rpc: string,
    method: string,
    request: object,
    deadlineMs: number,
    fallbackHash: string,
  ): Promise<PaymentResult> {
    let last: PaymentResult | undefined;
    const deadlineAt = Date.now() + deadlineMs;
    try {
      for await (const p of serverStream<WirePayment>(this.#rpc.router, method, request, { deadlineMs })) {
        last = this.#payment(rpc, p);
        if (FINAL_STATUSES.includes(last.status)) return last;
      }
    } catch (err) {
      if (!ownDeadlinePassed(err, deadlineAt)) {
        throw lndError(err, { rpc, rpcServer: this.#rpc.rpcServer, phase: "call" });
      }
    }
    return last ?? {
      paymentHash: fallbackHash,
      status: "UNKNOWN",
      feeMsat: 0n,
      valueMsat: 0n,
      failureReason: "FAILURE_REASON_NONE",
    };
  }

  #payment(rpc: string, p: WirePayment): PaymentResult {
    const known: readonly string[] = ["INITIATED", "IN_FLIGHT", "SUCCEEDED", "FAILED"];
    const status = (known.includes(p.status) ? p.status : "UNKNOWN") as PaymentStatus;
    const out: PaymentResult = {
      paymentHash: p.payment_hash,
      status,
      feeMsat: BigInt(p.fee_msat || "0"),
      valueMsat: BigInt(p.value_msat || "0"),
      failureReason: p.failure_reason || "FAILURE_REASON_NONE",
    };
    if (status === "SUCCEEDED") {
      if (!HEX64.test(p.payment_preimage)) throw this.#badResponse(rpc, "settled payment without a preimage");
      out.preimage = hexToBytes(p.payment_preimage);
    }
    return out;
  }

  /**
   * `routerrpc.Router/SendPaymentV2` (see {@linkcode LndClient.sendPaymentV2}). Follows the
   * stream for `timeoutSec` + 30 s; `paymentHash` is "" if no update arrived by then.
   * @throws {RangeError} for a negative fee limit or a timeout outside 1..3600 s
   */
  async sendPaymentV2(invoice: string, feeLimitSat: bigint, timeoutSec: number): Promise<PaymentResult> {
    if (!invoice) throw new RangeError("lnd: invoice is empty");
    if (feeLimitSat < 0n) throw new RangeError(`lnd: fee limit ${feeLimitSat} sat is negative`);
    assertInt("payment timeout (s)", timeoutSec, 1, 3600);
    return await this.#followPayment(
      "Router.SendPaymentV2",
      "SendPaymentV2",
      {
        payment_request: invoice,
        fee_limit_sat: feeLimitSat.toString(),
        timeout_seconds: timeoutSec,
        no_inflight_updates: false,
      },
      timeoutSec * 1000 + PAYMENT_STREAM_MARGIN_MS,
      "",
    );
  }

  /**
   * `routerrpc.Router/TrackPaymentV2` (see {@linkcode LndClient.trackPaymentV2}). Default timeout
   * 30 s. An unknown payment throws `LndRpcError` with `grpcCode` NOT_FOUND (5).
   */
  async trackPaymentV2(paymentHash: Uint8Array, opts: { timeoutMs?: number } = {}): Promise<PaymentResult> {
    if (paymentHash.length !== 32) {
      throw new RangeError(`lnd: payment hash must be 32 bytes, got ${paymentHash.length}`);
    }
    return await this.#followPayment(
      "Router.TrackPaymentV2",
      "TrackPaymentV2",
      { payment_hash: Buffer.from(paymentHash), no_inflight_updates: false },
      opts.timeoutMs ?? DEFAULT_DEADLINE_MS,
      bytesToHex(paymentHash),
    );
  }

  /**
   * `signrpc.Signer/MuSig2CreateSession` (see {@linkcode LndClient.muSig2CreateSession}) with
   * `version = MUSIG2_VERSION_V100RC2` and `taproot_tweak = {script_root, key_spend_only: false}`.
   * @throws {RangeError} for a bad locator, keys that are not 33 bytes, fewer than 2 keys, a root
   *   that is not 32 bytes or a nonce that is not 66 bytes
   * @throws {LndRpcError} `lnd_bad_response` when lnd answers another version or wrong lengths
   */
  async muSig2CreateSession(req: {
    keyLocator: KeyLocator;
    allSignerPubkeys: Uint8Array[];
    taprootScriptRoot: Uint8Array;
    otherSignerPublicNonces?: Uint8Array[];
  }): Promise<MuSig2Session> {
    assertKeyLocator(req.keyLocator);
    if (req.allSignerPubkeys.length < 2) throw new RangeError("lnd: MuSig2 needs at least 2 signer keys");
    req.allSignerPubkeys.forEach((k, i) => assertLen(`signer key ${i}`, k, 33));
    assertLen("taproot script root", req.taprootScriptRoot, 32);
    const nonces = req.otherSignerPublicNonces ?? [];
    nonces.forEach((n, i) => assertLen(`public nonce ${i}`, n, 66));
    const rpc = "Signer.MuSig2CreateSession";
    const res = await this.#call<{
      session_id: Uint8Array;
      combined_key: Uint8Array;
      taproot_internal_key: Uint8Array;
      local_public_nonces: Uint8Array;
      have_all_nonces: boolean;
      version: string;
    }>(this.#rpc.signer, rpc, {
      key_loc: { key_family: req.keyLocator.family, key_index: req.keyLocator.index },
      all_signer_pubkeys: req.allSignerPubkeys.map((k) => Buffer.from(k)),
      other_signer_public_nonces: nonces.map((n) => Buffer.from(n)),
      taproot_tweak: { script_root: Buffer.from(req.taprootScriptRoot), key_spend_only: false },
      version: "MUSIG2_VERSION_V100RC2",
    });
    const out: MuSig2Session = {
      sessionId: bytes(res.session_id),
      combinedKey: bytes(res.combined_key),
      taprootInternalKey: bytes(res.taproot_internal_key),
      localPublicNonces: bytes(res.local_public_nonces),
      haveAllNonces: res.have_all_nonces,
    };
    if (res.version !== "MUSIG2_VERSION_V100RC2") throw this.#badResponse(rpc, `version ${res.version}`);
    for (
      const [name, v, len] of [
        ["session_id", out.sessionId, 32],
        ["combined_key", out.combinedKey, 32],
        ["taproot_internal_key", out.taprootInternalKey, 32],
        ["local_public_nonces", out.localPublicNonces, 66],
      ] as const
    ) {
      if (v.length !== len) throw this.#badResponse(rpc, `${name} is ${v.length} bytes, expected ${len}`);
    }
    return out;
  }

  /** `signrpc.Signer/MuSig2RegisterNonces` (see {@linkcode LndClient.muSig2RegisterNonces}). */
  async muSig2RegisterNonces(sessionId: Uint8Array, otherSignerPublicNonces: Uint8Array[]): Promise<boolean> {
    assertLen("session id", sessionId, 32);
    if (otherSignerPublicNonces.length === 0) throw new RangeError("lnd: no public nonces to register");
    otherSignerPublicNonces.forEach((n, i) => assertLen(`public nonce ${i}`, n, 66));
    const res = await this.#call<{ have_all_nonces: boolean }>(
      this.#rpc.signer,
      "Signer.MuSig2RegisterNonces",
      {
        session_id: Buffer.from(sessionId),
        other_signer_public_nonces: otherSignerPublicNonces.map((n) => Buffer.from(n)),
      },
    );
    return res.have_all_nonces;
  }

  /**
   * `signrpc.Signer/MuSig2Sign` (see {@linkcode LndClient.muSig2Sign}).
   * @throws {LndRpcError} `lnd_bad_response` when the partial signature is not 32 bytes
   */
  async muSig2Sign(sessionId: Uint8Array, messageDigest: Uint8Array, cleanup = false): Promise<Uint8Array> {
    assertLen("session id", sessionId, 32);
    assertLen("message digest", messageDigest, 32);
    const rpc = "Signer.MuSig2Sign";
    const res = await this.#call<{ local_partial_signature: Uint8Array }>(this.#rpc.signer, rpc, {
      session_id: Buffer.from(sessionId),
      message_digest: Buffer.from(messageDigest),
      cleanup,
    });
    const sig = bytes(res.local_partial_signature);
    if (sig.length !== 32) {
      throw this.#badResponse(rpc, `partial signature is ${sig.length} bytes, expected 32`);
    }
    return sig;
  }

  /** `signrpc.Signer/MuSig2Cleanup`; lnd's "session ... not found" counts as success. */
  async muSig2Cleanup(sessionId: Uint8Array): Promise<void> {
    assertLen("session id", sessionId, 32);
    try {
      await this.#call(this.#rpc.signer, "Signer.MuSig2Cleanup", { session_id: Buffer.from(sessionId) });
    } catch (err) {
      if (err instanceof LndRpcError && err.code === "lnd_rpc" && SESSION_NOT_FOUND.test(err.details)) return;
      throw err;
    }
  }

  /**
   * `lnrpc.Lightning/AddInvoice` with `memo`, `r_preimage`, `value_msat`, `expiry`, `private`,
   * `route_hints` (see {@linkcode LndClient.addInvoice}).
   * @throws {RangeError} for an amount ≤ 0, a preimage that is not 32 bytes, an expiry out of range
   * @throws {LndRpcError} `lnd_bad_response` when lnd answers another payment hash than SHA-256(preimage)
   */
  async addInvoice(req: AddInvoiceRequest): Promise<AddInvoiceResult> {
    if (req.valueMsat <= 0n || req.valueMsat >= 1n << 63n) {
      throw new RangeError(`lnd: invoice amount ${req.valueMsat} msat is out of range`);
    }
    assertLen("preimage", req.preimage, 32);
    assertInt("invoice expiry (s)", req.expirySec, 1, 0x7fffffff);
    const rpc = "Lightning.AddInvoice";
    const res = await this.#call<{ r_hash: Uint8Array; payment_request: string; add_index: string }>(
      this.#rpc.lightning,
      rpc,
      {
        memo: req.memo,
        r_preimage: Buffer.from(req.preimage),
        value_msat: req.valueMsat.toString(),
        expiry: String(req.expirySec),
        private: req.private,
        route_hints: wireRouteHints(req.routeHints),
      },
    );
    const hash = bytes(res.r_hash);
    if (bytesToHex(hash) !== bytesToHex(sha256(req.preimage))) {
      throw this.#badResponse(rpc, `r_hash ${bytesToHex(hash)} is not the SHA-256 of the preimage`);
    }
    if (!res.payment_request) throw this.#badResponse(rpc, "empty payment_request");
    return { paymentRequest: res.payment_request, paymentHash: hash, addIndex: BigInt(res.add_index || "0") };
  }

  /** `lnrpc.Lightning/LookupInvoice{r_hash}`; NOT_FOUND (or lnd's not-found text) → null. */
  async lookupInvoice(paymentHash: Uint8Array): Promise<InvoiceInfo | null> {
    assertLen("payment hash", paymentHash, 32);
    const rpc = "Lightning.LookupInvoice";
    let res: WireInvoice;
    try {
      res = await this.#call<WireInvoice>(this.#rpc.lightning, rpc, { r_hash: Buffer.from(paymentHash) });
    } catch (err) {
      if (
        err instanceof LndRpcError && err.code === "lnd_rpc" &&
        (err.grpcCode === GrpcStatus.NOT_FOUND || INVOICE_NOT_FOUND_PATTERN.test(err.details))
      ) return null;
      throw err;
    }
    if (!INVOICE_STATES.includes(res.state as InvoiceState)) {
      throw this.#badResponse(rpc, `state ${res.state}`);
    }
    for (const [name, v] of [["value_msat", res.value_msat], ["amt_paid_msat", res.amt_paid_msat]] as const) {
      if (!/^\d+$/.test(v)) throw this.#badResponse(rpc, `${name} "${v}" is not a non-negative integer`);
    }
    return {
      state: res.state as InvoiceState,
      valueMsat: BigInt(res.value_msat),
      amtPaidMsat: BigInt(res.amt_paid_msat),
      settleDate: Number(res.settle_date || "0"),
      paymentRequest: res.payment_request,
    };
  }

  /**
   * `invoicesrpc.Invoices/CancelInvoice{payment_hash}` (see {@linkcode LndClient.cancelInvoice}).
   * lnd itself answers success for an invoice already canceled.
   * @throws {LndRpcError} `lnd_invoice_settled` / `lnd_invoice_not_found` (lnd's texts, `lnd/errors.ts`)
   */
  async cancelInvoice(paymentHash: Uint8Array): Promise<void> {
    assertLen("payment hash", paymentHash, 32);
    const rpc = "Invoices.CancelInvoice";
    try {
      await this.#call(this.#rpc.invoices, rpc, { payment_hash: Buffer.from(paymentHash) });
    } catch (err) {
      if (!(err instanceof LndRpcError) || err.code !== "lnd_rpc") throw err;
      const kind = INVOICE_SETTLED_PATTERN.test(err.details)
        ? LndInvoiceErrorCode.AlreadySettled
        : err.grpcCode === GrpcStatus.NOT_FOUND || INVOICE_NOT_FOUND_PATTERN.test(err.details)
        ? LndInvoiceErrorCode.NotFound
        : undefined;
      if (!kind) throw err;
      throw new LndRpcError(rpc, err.grpcCode, err.details, kind, ExitCode.Failure, { cause: err });
    }
  }

  /**
   * `lnrpc.Lightning/GetTransactions{start_height, end_height}` (see
   * {@linkcode LndClient.getTransactions}). Every entry must carry a decodable raw transaction
   * whose txid is lnd's `tx_hash` (spec/static-loop-in.md §3.8: one bad entry fails the lookup).
   * @throws {LndRpcError} `lnd_bad_response` for a missing/malformed raw tx, txid or outpoint
   */
  async getTransactions(startHeight = 0, endHeight = -1): Promise<WalletTransaction[]> {
    assertInt("start height", startHeight, 0, 0x7fffffff);
    assertInt("end height", endHeight, -1, 0x7fffffff);
    const rpc = "Lightning.GetTransactions";
    const res = await this.#call<{ transactions: WireTransaction[] }>(this.#rpc.lightning, rpc, {
      start_height: startHeight,
      end_height: endHeight,
    });
    return (res.transactions ?? []).map((t) => {
      if (!HEX64.test(t.tx_hash)) throw this.#badResponse(rpc, `tx_hash "${t.tx_hash}" is not 64 hex digits`);
      if (!t.raw_tx_hex || !HEX.test(t.raw_tx_hex)) {
        throw this.#badResponse(rpc, `transaction ${t.tx_hash} has no raw_tx_hex`);
      }
      const rawTx = hexToBytes(t.raw_tx_hex);
      let txid: string;
      try {
        txid = Transaction.fromRaw(rawTx, { allowUnknownOutputs: true, allowUnknownInputs: true }).id;
      } catch (err) {
        throw this.#badResponse(rpc, `transaction ${t.tx_hash}: raw_tx_hex does not decode (${err})`);
      }
      if (txid !== t.tx_hash) {
        throw this.#badResponse(rpc, `raw_tx_hex hashes to ${txid}, not tx_hash ${t.tx_hash}`);
      }
      const previousOutpoints = (t.previous_outpoints ?? []).map((p) => {
        if (!OUTPOINT.test(p.outpoint)) {
          throw this.#badResponse(
            rpc,
            `transaction ${t.tx_hash}: previous outpoint "${p.outpoint}" malformed`,
          );
        }
        return p.outpoint;
      });
      return {
        txid,
        rawTx,
        numConfirmations: Math.max(0, t.num_confirmations),
        blockHeight: Math.max(0, t.block_height),
        previousOutpoints,
      };
    });
  }

  /** Closes the gRPC channel. Idempotent. */
  close(): void {
    this.#rpc.close();
  }
}
