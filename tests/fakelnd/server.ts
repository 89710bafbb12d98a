/**
 * A fake lnd for tests: a real gRPC server on 127.0.0.1 speaking lnd's own `.proto` services over
 * TLS, with lnd's macaroon check, lnd's key derivation and ECDH on a BIP-32 seed, and settable
 * wallet/chain state. It is a test peer for `lnd/grpc_client.ts` and for core code that needs "an
 * lnd" without running one; the regtest suite (tests/regtest/) covers the real daemon.
 *
 * What it implements (everything else answers UNIMPLEMENTED):
 * - `Lightning.GetInfo` (network, block height, identity key = locator (6, 0));
 * - `Signer.DeriveSharedKey` (lnd's rules for `key_loc` / `key_desc`, SHA-256 of the compressed
 *   ECDH point);
 * - `Signer.SignOutputRaw` for taproot script-path spends (`SIGN_METHOD_TAPROOT_SCRIPT_SPEND`,
 *   `SIGHASH_DEFAULT`): a real BIP-340 signature over the BIP-341 script-path sighash (computed with
 *   @scure/btc-signer) with the key ring's key at `key_loc`;
 * - `WalletKit.DeriveKey`, `DeriveNextKey` (per-family counter from 0), `ListUnspent` (lnd's
 *   min/max confs rules and account filter), `ImportTapscript` (computes the P2TR address; a repeat answers
 *   "already exists"), `NextAddr` (BIP-86 addresses), `PublishTransaction`, `EstimateFee`;
 * - `ChainNotifier.RegisterConfirmationsNtfn` (from {@linkcode FakeLnd.setConfirmation});
 * - `ChainNotifier.RegisterSpendNtfn` by outpoint (from {@linkcode FakeLnd.setSpend}; without a spend
 *   the stream stays open until the client cancels it);
 * - `Router.SendPaymentV2`, `TrackPaymentV2` (scripted with {@linkcode FakeLnd.setPayment});
 * - `Signer.MuSig2CreateSession` / `RegisterNonces` / `Sign` / `Cleanup` with real BIP-327 math
 *   (@scure/btc-signer/musig2.js) as lnd runs `MUSIG2_VERSION_V100RC2`: keys sorted, the BIP-341
 *   taproot tweak with `script_root` applied as an x-only tweak, session id =
 *   SHA-256(compressed tweaked key ‖ local public nonce), lnd's error texts;
 * - `Lightning.AddInvoice` (signed BOLT 11 payment requests by the identity key, with `r` route
 *   hints), `LookupInvoice` (NOT_FOUND as lnd), `Invoices.CancelInvoice` (lnd's idempotency and
 *   texts); invoices settle when a test calls {@linkcode FakeLnd.settleInvoice};
 * - `Lightning.GetTransactions` from {@linkcode FakeLnd.addTransaction} (previous outpoints read
 *   from the raw transaction).
 *
 * Fault injection: {@linkcode FakeLnd.failCall} makes any RPC answer a gRPC error.
 *
 * Macaroon check as lnd does it: every call except `WalletUnlocker`/`State` needs metadata
 * `macaroon` = hex of the expected bytes; lnd's own texts with gRPC status UNKNOWN otherwise.
 *
 * Needs `--allow-net`, `--allow-read`, `--allow-write` (temp dir), `--allow-run=openssl`.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { NETWORK, p2tr, TEST_NETWORK, Transaction } from "@scure/btc-signer";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { bech32 } from "@scure/base";
import {
  keyAggExport,
  keyAggregate,
  nonceAggregate,
  nonceGen,
  Session,
  sortKeys,
} from "@scure/btc-signer/musig2.js";
import type { NetworkName } from "../../core/staticaddr/network.ts";
import { encodeInvoice } from "../swapserver/lightning.ts";
import { Buffer } from "node:buffer";
import { lndService } from "../../lnd/rpc.ts";
import { FakeKeyRing, NODE_KEY_FAMILY } from "./keyring.ts";
import { generateTestCert } from "./tls.ts";
import { startTcpRelay, type TcpRelay } from "../tcp_relay.ts";

/** A wallet output the fake reports from `WalletKit.ListUnspent`. */
export interface FakeUtxo {
  /** Outpoint txid, display hex. */
  txid: string;
  /** Output index. */
  vout: number;
  /** Value, sat. */
  amountSat: bigint;
  /** Output script. */
  pkScript: Uint8Array;
  /** Confirmations (0 = mempool). */
  confirmations: number;
  /** Address string (default ""). */
  address?: string;
  /**
   * lnd wallet account holding it. Default: "imported" when it pays a script this fake imported with
   * `ImportTapscript` (as lnd files it), else "default".
   */
  account?: string;
}

/** A recorded `WalletKit.ImportTapscript`. */
export interface FakeImport {
  /** 32-byte x-only internal key. */
  internalKey: Uint8Array;
  /** Leaves as sent. */
  leaves: { leafVersion: number; script: Uint8Array }[];
  /** The P2TR address the fake answered (computed with @scure/btc-signer). */
  address: string;
  /** Its output script. */
  pkScript: Uint8Array;
}

/** A confirmation the fake's ChainNotifier reports. */
export interface FakeConfirmation {
  /** Block height. */
  blockHeight: number;
  /** Block hash, display hex (default: derived from the height). */
  blockHash?: string;
  /** Transaction index in the block (default 1). */
  txIndex?: number;
  /** Raw transaction (default empty). */
  rawTx?: Uint8Array;
}

/** A spend the fake's ChainNotifier reports for an outpoint. */
export interface FakeSpend {
  /** Txid of the spending transaction, display hex. */
  spendingTxid: string;
  /** Height of its block. */
  spendingHeight: number;
  /** Index of the spending input (default 0). */
  spendingInputIndex?: number;
  /** Raw spending transaction (default empty). */
  rawSpendingTx?: Uint8Array;
}

/** One streamed update of a scripted payment. */
export interface FakePaymentUpdate {
  /** `lnrpc.Payment.PaymentStatus` name. */
  status: "INITIATED" | "IN_FLIGHT" | "SUCCEEDED" | "FAILED";
  /** 32-byte preimage (with SUCCEEDED). */
  preimage?: Uint8Array;
  /** Routing fee, msat. */
  feeMsat?: bigint;
  /** Amount, msat. */
  valueMsat?: bigint;
  /** `lnrpc.PaymentFailureReason` name (with FAILED). */
  failureReason?: string;
  /** Wait this long before sending the update, ms. */
  delayMs?: number;
}

/** An invoice the fake holds (`AddInvoice`). */
export interface FakeInvoice {
  /** `lnrpc.Invoice.InvoiceState`. */
  state: "OPEN" | "SETTLED" | "CANCELED" | "ACCEPTED";
  /** 32-byte preimage. */
  preimage: Uint8Array;
  /** 32-byte payment hash, SHA-256(preimage). */
  paymentHash: Uint8Array;
  /** Amount, msat. */
  valueMsat: bigint;
  /** Amount received, msat. */
  amtPaidMsat: bigint;
  /** Memo. */
  memo: string;
  /** Expiry, s. */
  expirySec: number;
  /** `private` as requested. */
  private: boolean;
  /** Route hints as requested (wire layout: node_id hex, chan_id string, fees, cltv delta). */
  routeHints: { hop_hints: Msg[] }[];
  /** The BOLT 11 payment request. */
  paymentRequest: string;
  /** Add index (1, 2, ...). */
  addIndex: number;
  /** Creation time, Unix s. */
  creationDate: number;
  /** Settlement time, Unix s (0 unless settled). */
  settleDate: number;
}

/** A wallet transaction the fake's `GetTransactions` lists. */
export interface FakeWalletTx {
  /** The raw transaction. */
  rawTx: Uint8Array;
  /** Height of its block; 0 = unconfirmed (default 0). */
  blockHeight?: number;
  /** Confirmations (default: from the fake's block height, 0 when unconfirmed). */
  numConfirmations?: number;
  /** Label (default ""). */
  label?: string;
  /** `tx_hash` to report instead of the raw transaction's txid (a misbehaving lnd; with an empty `rawTx` too). */
  txHash?: string;
}

/** A gRPC failure to inject with {@linkcode FakeLnd.failCall}. */
export interface FakeFailure {
  /** gRPC status code (default 2, UNKNOWN, as lnd answers most refusals). */
  code?: number;
  /** Error text. */
  details: string;
  /** How many calls fail (default 1; `Infinity` until {@linkcode FakeLnd.clearFailures}). */
  times?: number;
  /**
   * Streams only: send the failure this many ms after the call arrived instead of at once (as lnd's Go server
   * resets a stream with CANCELLED when the call's own `grpc-timeout` runs out).
   */
  afterMs?: number;
}

/** Options of {@linkcode startFakeLnd}. */
export interface FakeLndOptions {
  /** lnd network name reported by GetInfo (default "regtest"); decides the coin type. */
  network?: string;
  /** BIP-32 seed (default: SHA-256 of "loopkit fakelnd seed"). */
  seed?: Uint8Array;
  /** Block height reported by GetInfo (default 100). */
  blockHeight?: number;
  /** Macaroon bytes the fake expects (default: a V2-shaped macaroon with random signature). */
  macaroon?: Uint8Array;
}

/** A running fake lnd. */
export interface FakeLnd {
  /** `127.0.0.1:<port>`. */
  rpcServer: string;
  /** Path of the PEM certificate (inside {@linkcode dir}). */
  tlsCertPath: string;
  /** Path of the expected macaroon (inside {@linkcode dir}). */
  macaroonPath: string;
  /** Temp directory holding the files; removed by {@linkcode stop}. */
  dir: string;
  /** Number of calls per `Service.Method` (e.g. `calls["Signer.DeriveSharedKey"]`), counted before the macaroon check. */
  calls: Record<string, number>;
  /** Every authorised request, in order. */
  requests: { rpc: string; request: Record<string, unknown> }[];
  /** Every successful ImportTapscript. */
  imports: FakeImport[];
  /** Every PublishTransaction. */
  published: { tx: Uint8Array; label: string }[];
  /** The key ring (to compute expected keys in tests). */
  keyRing: FakeKeyRing;
  /** Node identity key, 33 bytes compressed. */
  identityPubkey: Uint8Array;
  /** Replaces the wallet's UTXO list. */
  setUtxos(utxos: FakeUtxo[]): void;
  /** Changes the height GetInfo reports. */
  setBlockHeight(height: number): void;
  /** Changes EstimateFee's answer (sat/kw). */
  setFeeRate(satPerKw: bigint, minRelayFeeSatPerKw?: bigint): void;
  /** Makes PublishTransaction answer with this `publish_error` ("" for success). */
  setPublishError(text: string): void;
  /**
   * Makes ImportTapscript fail with this lnd error text (gRPC UNKNOWN) after `afterCalls` more
   * successful imports; "" restores normal behaviour (fault injection for rollback tests).
   */
  setImportTapscriptError(text: string, afterCalls?: number): void;
  /**
   * Makes a unary call (`Service.Method`, e.g. `WalletKit.ImportTapscript`) stall: it is counted and
   * authorised, then never answered while stalled (an lnd that hangs). `false` answers future calls again.
   */
  setStall(rpc: string, stalled: boolean): void;
  /** Marks a transaction confirmed; pending notifications for it fire. */
  setConfirmation(txid: string, conf: FakeConfirmation, pkScript?: Uint8Array): void;
  /** Marks an outpoint spent; pending spend notifications for it fire. */
  setSpend(txid: string, vout: number, spend: FakeSpend): void;
  /** Scripts a payment: SendPaymentV2 (by `paymentRequest`) and TrackPaymentV2 (by hash) stream `updates`. */
  setPayment(paymentHash: string, opts: { paymentRequest: string; updates: FakePaymentUpdate[] }): void;
  /** Invoices by payment hash (hex), as added. */
  invoices: Map<string, FakeInvoice>;
  /**
   * Settles an invoice as if it had been paid in full now (lnd settles a regular invoice itself).
   * @throws {Error} when the invoice is unknown or not OPEN/ACCEPTED
   */
  settleInvoice(paymentHash: Uint8Array | string): void;
  /** Adds a wallet transaction to what `GetTransactions` lists (in the order added). */
  addTransaction(tx: FakeWalletTx): void;
  /** Number of MuSig2 sessions lnd still holds (created, not cleaned up). */
  muSig2Sessions(): number;
  /** Forgets every MuSig2 session, as an lnd restart does (later calls on them: "session ... not found"). */
  dropMuSig2Sessions(): void;
  /** Makes the next `failure.times` calls of `rpc` (`"Service.Method"`) fail, after the macaroon check. */
  failCall(rpc: string, failure: FakeFailure): void;
  /** Removes every injected failure. */
  clearFailures(): void;
  /** Number of server-streaming calls still open (cancelled or ended ones are not counted). */
  openStreams(): number;
  /**
   * Drops every client connection (as an lnd crash would), shuts the server down and removes
   * {@linkcode dir}. Idempotent.
   */
  stop(): Promise<void>;
}

// deno-lint-ignore no-explicit-any
type Msg = Record<string, any>;
type UnaryHandler = (req: Msg) => Msg | Promise<Msg>;
type StreamHandler = (
  req: Msg,
  call: grpc.ServerWritableStream<Msg, Msg>,
  cleanup: (fn: () => void) => void,
) => void;

/** One MuSig2 session held by the fake. */
interface MuSigState {
  /** Every signer's key, sorted (BIP-327 KeySort, as lnd does). */
  keys: Uint8Array[];
  /** The fake's private key for this session. */
  privateKey: Uint8Array;
  /** BIP-341 TapTweak scalar applied as an x-only tweak. */
  tweak: Uint8Array;
  /** Secret nonce; unset once used. */
  secretNonce?: Uint8Array;
  /** Public nonces known, the fake's own first. */
  nonces: Uint8Array[];
  /** True when every signer's nonce is known. */
  haveAllNonces: boolean;
}

/** BOLT 11 `r` field bytes: per hop pubkey (33) ‖ short channel id (8) ‖ fee base (4) ‖ fee ppm (4) ‖ CLTV delta (2). */
function routeHintBytes(hops: Msg[]): Uint8Array {
  const out = new Uint8Array(51 * hops.length);
  const view = new DataView(out.buffer);
  hops.forEach((h, i) => {
    const o = 51 * i;
    out.set(hexToBytes(h.node_id), o);
    view.setBigUint64(o + 33, BigInt(h.chan_id));
    view.setUint32(o + 41, h.fee_base_msat);
    view.setUint32(o + 45, h.fee_proportional_millionths);
    view.setUint16(o + 49, h.cltv_expiry_delta);
  });
  return out;
}

/** A gRPC error as lnd produces it. */
class StatusError extends Error {
  constructor(readonly code: number, readonly details: string, readonly afterMs = 0) {
    super(details);
  }
}

const UNAUTH_WHITELIST = new Set(["WalletUnlocker", "State"]);

function addressNetwork(network: string): typeof NETWORK {
  switch (network) {
    case "mainnet":
      return NETWORK;
    case "regtest":
      return { ...TEST_NETWORK, bech32: "bcrt" };
    case "simnet":
      return { bech32: "sb", pubKeyHash: 0x3f, scriptHash: 0x7b, wif: 0x64 };
    default:
      return TEST_NETWORK;
  }
}

/** A macaroon-shaped V2 binary blob: location "lnd", 1+16-byte id, no caveats, 32-byte signature. */
function defaultMacaroon(): Uint8Array {
  const id = new Uint8Array(17);
  id[0] = 3;
  crypto.getRandomValues(id.subarray(1));
  const sig = crypto.getRandomValues(new Uint8Array(32));
  return Uint8Array.from([
    0x02,
    0x01,
    3,
    ...new TextEncoder().encode("lnd"),
    0x02,
    id.length,
    ...id,
    0x00,
    0x00,
    0x06,
    sig.length,
    ...sig,
  ]);
}

function blockHashFor(height: number): string {
  return bytesToHex(sha256(new TextEncoder().encode(`fakelnd block ${height}`)));
}

function paymentMsg(hash: string, request: string, u: FakePaymentUpdate): Msg {
  return {
    payment_hash: hash,
    payment_request: request,
    payment_preimage: u.preimage ? bytesToHex(u.preimage) : "0".repeat(64),
    status: u.status,
    fee_msat: String(u.feeMsat ?? 0n),
    fee_sat: String((u.feeMsat ?? 0n) / 1000n),
    value_msat: String(u.valueMsat ?? 0n),
    value_sat: String((u.valueMsat ?? 0n) / 1000n),
    failure_reason: u.failureReason ?? "FAILURE_REASON_NONE",
  };
}

/**
 * Starts a fake lnd on a free 127.0.0.1 port, with a fresh self-signed certificate and macaroon
 * written into a temp directory.
 *
 * @example
 * ```ts ignore
 * const fake = await startFakeLnd({ network: "regtest" });
 * try {
 *   const { lnd } = await connectLnd({ ...fake, network: "regtest" });
 *   // ...
 *   lnd.close();
 * } finally {
 *   await fake.stop();
 * }
 * ```
 */
export async function startFakeLnd(opts: FakeLndOptions = {}): Promise<FakeLnd> {
  const network = opts.network ?? "regtest";
  const seed = opts.seed ?? sha256(new TextEncoder().encode("loopkit fakelnd seed"));
  const keyRing = new FakeKeyRing(seed, network);
  const identityPubkey = keyRing.publicKey(NODE_KEY_FAMILY, 0);
  const macaroon = opts.macaroon ?? defaultMacaroon();
  const macaroonHex = bytesToHex(macaroon);
  const addrNet = addressNetwork(network);

  const dir = await Deno.makeTempDir({ prefix: "loopkit-fakelnd-" });
  const server = new grpc.Server();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let stopped = false;
  let proxy: TcpRelay | undefined;
  try {
    const cert = await generateTestCert(dir);
    const macaroonPath = `${dir}/admin.macaroon`;
    await Deno.writeFile(macaroonPath, macaroon, { mode: 0o600 });

    // ---- state
    let blockHeight = opts.blockHeight ?? 100;
    let utxos: FakeUtxo[] = [];
    let fee = { satPerKw: 2500n, minRelay: 253n };
    let publishError = "";
    let importError = { text: "", after: 0 };
    const nextKeyIndex = new Map<number, number>();
    let nextAddrIndex = 0;
    const confirmations = new Map<string, FakeConfirmation>(); // key: txid or "script:<hex>"
    const confWaiters = new Set<{ keys: string[]; fire: (c: FakeConfirmation) => void }>();
    const spends = new Map<string, FakeSpend>(); // key: "txid:vout"
    const spendWaiters = new Set<{ key: string; fire: (s: FakeSpend) => void }>();
    const payments = new Map<string, { request: string; updates: FakePaymentUpdate[]; sent: boolean }>();
    const invoices = new Map<string, FakeInvoice>(); // key: payment hash hex
    let invoiceAddIndex = 0;
    const walletTxs: FakeWalletTx[] = [];
    const musigSessions = new Map<string, MuSigState>(); // key: session id hex
    const failures = new Map<string, FakeFailure & { left: number }>();
    const calls: Record<string, number> = {};
    const stalls = new Set<string>();
    /** Stalled unary calls: answered (with their real result) on release, or ended on cancel/stop. */
    const stalled = new Set<{ rpc: string; run: () => void; end: () => void }>();
    let openStreams = 0;
    const requests: FakeLnd["requests"] = [];
    const imports: FakeImport[] = [];
    const published: FakeLnd["published"] = [];

    const later = (ms: number, fn: () => void) => {
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
      }, ms);
      timers.add(t);
      return t;
    };

    const authError = (md: grpc.Metadata): StatusError | undefined => {
      const values = md.get("macaroon");
      if (values.length !== 1) {
        return new StatusError(grpc.status.UNKNOWN, `expected 1 macaroon, got ${values.length}`);
      }
      if (String(values[0]) !== macaroonHex) {
        return new StatusError(
          grpc.status.UNKNOWN,
          "verification failed: signature mismatch after caveat verification",
        );
      }
      return undefined;
    };

    const injectedFailure = (rpc: string): StatusError | undefined => {
      const f = failures.get(rpc);
      if (!f) return undefined;
      if (--f.left <= 0) failures.delete(rpc);
      return new StatusError(f.code ?? grpc.status.UNKNOWN, f.details, f.afterMs ?? 0);
    };

    const toStatus = (err: unknown) =>
      err instanceof StatusError
        ? { code: err.code, details: err.details }
        : { code: grpc.status.UNKNOWN, details: err instanceof Error ? err.message : String(err) };

    const unaryHandler = (service: string, method: string, fn: UnaryHandler) =>
    (
      call: grpc.ServerUnaryCall<Msg, Msg>,
      cb: grpc.sendUnaryData<Msg>,
    ) => {
      const rpc = `${service}.${method}`;
      calls[rpc] = (calls[rpc] ?? 0) + 1;
      const denied = UNAUTH_WHITELIST.has(service) ? undefined : authError(call.metadata);
      if (denied) return cb(toStatus(denied), null);
      requests.push({ rpc, request: call.request });
      const injected = injectedFailure(rpc);
      if (injected) return cb(toStatus(injected), null);
      let answered = false;
      const run = () => {
        if (answered) return;
        answered = true;
        Promise.resolve().then(() => fn(call.request)).then(
          (res) => cb(null, res),
          (err) => cb(toStatus(err), null),
        );
      };
      if (stalls.has(rpc)) {
        // Not answered until released; a cancelled call (the client went away) is ended so no HTTP/2
        // stream is left open at shutdown.
        const entry = {
          rpc,
          run: () => {
            stalled.delete(entry);
            run();
          },
          end: () => {
            stalled.delete(entry);
            if (answered) return;
            answered = true;
            cb({ code: grpc.status.CANCELLED, details: "fakelnd: stalled call ended" }, null);
          },
        };
        stalled.add(entry);
        call.on("cancelled", entry.end);
        return;
      }
      run();
    };

    const streamHandler = (service: string, method: string, fn: StreamHandler) =>
    (
      call: grpc.ServerWritableStream<Msg, Msg>,
    ) => {
      const rpc = `${service}.${method}`;
      calls[rpc] = (calls[rpc] ?? 0) + 1;
      const cleanups: (() => void)[] = [];
      let finished = false;
      openStreams++;
      const finish = () => {
        if (finished) return;
        finished = true;
        openStreams--;
        for (const c of cleanups.splice(0)) c();
      };
      call.on("cancelled", finish);
      call.on("finish", finish);
      call.on("close", finish);
      const denied = UNAUTH_WHITELIST.has(service) ? undefined : authError(call.metadata);
      if (denied) {
        finish();
        call.emit("error", toStatus(denied));
        return;
      }
      requests.push({ rpc, request: call.request });
      const injected = injectedFailure(rpc);
      if (injected) {
        if (injected.afterMs > 0) {
          const t = setTimeout(() => {
            if (finished) return;
            finish();
            call.emit("error", toStatus(injected));
          }, injected.afterMs);
          cleanups.push(() => clearTimeout(t));
          return;
        }
        finish();
        call.emit("error", toStatus(injected));
        return;
      }
      try {
        fn(call.request, call, (c) => finished ? c() : cleanups.push(c));
      } catch (err) {
        finish();
        call.emit("error", toStatus(err));
      }
    };

    const streamError = (call: grpc.ServerWritableStream<Msg, Msg>, err: StatusError) => {
      call.emit("error", { code: err.code, details: err.details });
    };

    // ---- MuSig2 (lnd input/musig2_session_manager.go semantics, BIP-327 via @scure)
    const musigSession = (rawId: Uint8Array | undefined): MuSigState => {
      const id = bytesToHex(Uint8Array.from(rawId ?? []));
      const st = musigSessions.get(id);
      if (!st) throw new StatusError(grpc.status.UNKNOWN, `session with ID ${id} not found`);
      return st;
    };
    const registerNonces = (st: MuSigState, nonces: Uint8Array[]) => {
      for (const n of nonces) {
        if (n.length !== 66) {
          throw new StatusError(grpc.status.UNKNOWN, `error parsing other nonces: nonce must be 66 bytes`);
        }
        try {
          nonceAggregate([n]); // both points must decode
        } catch (err) {
          throw new StatusError(grpc.status.UNKNOWN, `error registering other signer public nonce: ${err}`);
        }
        st.nonces.push(n);
      }
      st.haveAllNonces = st.nonces.length === st.keys.length;
    };
    const muSig2CreateSession = (req: Msg): Msg => {
      if (req.version !== "MUSIG2_VERSION_V100RC2") {
        throw new StatusError(grpc.status.UNIMPLEMENTED, `fakelnd: MuSig2 version ${req.version}`);
      }
      const loc = req.key_loc;
      if (!loc) throw new StatusError(grpc.status.UNKNOWN, "missing key_loc");
      const keys = ((req.all_signer_pubkeys ?? []) as Uint8Array[]).map((k) => Uint8Array.from(k));
      if (keys.length < 2 || keys.some((k) => k.length !== 33)) {
        throw new StatusError(
          grpc.status.UNKNOWN,
          "error parsing all signer public keys: expected 33-byte compressed keys (at least 2)",
        );
      }
      for (const k of keys) {
        try {
          secp256k1.Point.fromBytes(k).assertValidity();
        } catch (err) {
          throw new StatusError(grpc.status.UNKNOWN, `error parsing all signer public keys: ${err}`);
        }
      }
      const privateKey = keyRing.privateKey(loc.key_family, loc.key_index);
      const localKey = keyRing.publicKey(loc.key_family, loc.key_index);
      if (!keys.some((k) => bytesToHex(k) === bytesToHex(localKey))) {
        throw new StatusError(
          grpc.status.UNKNOWN,
          "error creating signing context: signing key is not a part of the public key set",
        );
      }
      const tt = req.taproot_tweak;
      if (!tt || tt.key_spend_only || Uint8Array.from(tt.script_root ?? []).length !== 32) {
        throw new StatusError(
          grpc.status.UNIMPLEMENTED,
          "fakelnd: only a taproot tweak with a 32-byte script_root (key_spend_only false)",
        );
      }
      if ((req.tweaks ?? []).length > 0) {
        throw new StatusError(grpc.status.UNIMPLEMENTED, "fakelnd: generic tweaks");
      }
      const sorted = sortKeys(keys);
      const internalKey = keyAggExport(keyAggregate(sorted)); // x-only
      const tweak = schnorr.utils.taggedHash("TapTweak", internalKey, Uint8Array.from(tt.script_root));
      const tweaked = keyAggregate(sorted, [tweak], [true]);
      const combinedKey = keyAggExport(tweaked);
      const nonces = nonceGen(localKey, privateKey, combinedKey);
      const st: MuSigState = {
        keys: sorted,
        privateKey,
        tweak,
        secretNonce: nonces.secret,
        nonces: [nonces.public],
        haveAllNonces: false,
      };
      const others = ((req.other_signer_public_nonces ?? []) as Uint8Array[]).map((n) => Uint8Array.from(n));
      if (others.length > keys.length - 1) {
        throw new StatusError(grpc.status.UNKNOWN, "too many other signer public nonces");
      }
      registerNonces(st, others);
      const compressedTweaked = tweaked.aggPublicKey.toBytes(true);
      const id = sha256(new Uint8Array([...compressedTweaked, ...nonces.public]));
      musigSessions.set(bytesToHex(id), st);
      return {
        session_id: id,
        combined_key: combinedKey,
        taproot_internal_key: internalKey,
        local_public_nonces: nonces.public,
        have_all_nonces: st.haveAllNonces,
        version: "MUSIG2_VERSION_V100RC2",
      };
    };

    // ---- invoices
    const invoiceMsg = (inv: FakeInvoice): Msg => ({
      memo: inv.memo,
      r_preimage: inv.preimage,
      r_hash: inv.paymentHash,
      value: String(inv.valueMsat / 1000n),
      value_msat: String(inv.valueMsat),
      creation_date: String(inv.creationDate),
      settle_date: String(inv.settleDate),
      payment_request: inv.paymentRequest,
      expiry: String(inv.expirySec),
      cltv_expiry: "80",
      route_hints: inv.routeHints,
      private: inv.private,
      add_index: String(inv.addIndex),
      amt_paid_sat: String(inv.amtPaidMsat / 1000n),
      amt_paid_msat: String(inv.amtPaidMsat),
      state: inv.state,
    });
    const addInvoice = (req: Msg): Msg => {
      const preimage = Uint8Array.from(req.r_preimage ?? []);
      if (preimage.length !== 32) {
        throw new StatusError(
          grpc.status.UNKNOWN,
          "fakelnd: r_preimage must be 32 bytes (random preimages not supported)",
        );
      }
      const value = BigInt(req.value ?? "0");
      const valueMsat = BigInt(req.value_msat ?? "0");
      if (value !== 0n && valueMsat !== 0n) {
        throw new StatusError(grpc.status.UNKNOWN, "value and value_msat are mutually exclusive");
      }
      const amountMsat = valueMsat !== 0n ? valueMsat : value * 1000n;
      const paymentHash = sha256(preimage);
      const key = bytesToHex(paymentHash);
      if (invoices.has(key)) {
        throw new StatusError(grpc.status.UNKNOWN, "invoice with payment hash already exists");
      }
      const expirySec = Number(req.expiry ?? "0") || 86400;
      const routeHints = ((req.route_hints ?? []) as Msg[]).map((h) => ({
        hop_hints: ((h.hop_hints ?? []) as Msg[]).map((hop) => ({ ...hop })),
      }));
      const creationDate = Math.floor(Date.now() / 1000);
      const paymentRequest = encodeInvoice({
        network: network as NetworkName,
        amountMsat: amountMsat === 0n ? undefined : amountMsat,
        paymentHash,
        description: req.memo ?? "",
        timestampSec: creationDate,
        expirySec,
        nodeKey: keyRing.privateKey(NODE_KEY_FAMILY, 0),
        extraFields: routeHints.map((h) => ({ tag: 3, words: bech32.toWords(routeHintBytes(h.hop_hints)) })),
      });
      const inv: FakeInvoice = {
        state: "OPEN",
        preimage,
        paymentHash,
        valueMsat: amountMsat,
        amtPaidMsat: 0n,
        memo: req.memo ?? "",
        expirySec,
        private: !!req.private,
        routeHints,
        paymentRequest,
        addIndex: ++invoiceAddIndex,
        creationDate,
        settleDate: 0,
      };
      invoices.set(key, inv);
      return {
        r_hash: paymentHash,
        payment_request: paymentRequest,
        add_index: String(inv.addIndex),
        payment_addr: new Uint8Array(32),
      };
    };

    // ---- Lightning
    server.addService(lndService("lnrpc.Lightning").service, {
      GetInfo: unaryHandler("Lightning", "GetInfo", () => ({
        identity_pubkey: bytesToHex(identityPubkey),
        alias: "fakelnd",
        block_height: blockHeight,
        block_hash: blockHashFor(blockHeight),
        synced_to_chain: true,
        synced_to_graph: true,
        testnet: network === "testnet" || network === "testnet4",
        chains: [{ chain: "bitcoin", network }],
        version: "0.21.3-beta commit=fakelnd",
      })),
      AddInvoice: unaryHandler("Lightning", "AddInvoice", (req) => addInvoice(req)),
      LookupInvoice: unaryHandler("Lightning", "LookupInvoice", (req) => {
        const hash = req.r_hash && req.r_hash.length
          ? bytesToHex(Uint8Array.from(req.r_hash))
          : req.r_hash_str;
        if (!/^[0-9a-f]{64}$/.test(hash ?? "")) {
          throw new StatusError(grpc.status.UNKNOWN, "payment hash must be exactly 32 bytes");
        }
        const inv = invoices.get(hash);
        if (!inv) {
          // lnd (rpcserver.go LookupInvoice): ErrInvoiceNotFound / ErrNoInvoicesCreated → NOT_FOUND.
          throw new StatusError(
            grpc.status.NOT_FOUND,
            invoices.size === 0 ? "there are no existing invoices" : "unable to locate invoice",
          );
        }
        return invoiceMsg(inv);
      }),
      GetTransactions: unaryHandler("Lightning", "GetTransactions", (req) => {
        const start: number = req.start_height ?? 0;
        const end: number = req.end_height === 0 || req.end_height === undefined ? -1 : req.end_height;
        const txs = walletTxs.filter((t) => {
          const h = t.blockHeight ?? 0;
          if (h === 0) return end === -1; // unconfirmed: only with the "up to the mempool" end
          return h >= start && (end === -1 || h <= end);
        });
        return {
          transactions: txs.map((t) => {
            const tx = t.rawTx.length === 0 ? undefined : Transaction.fromRaw(t.rawTx, {
              allowUnknownInputs: true,
              allowUnknownOutputs: true,
              disableScriptCheck: true,
            });
            const h = t.blockHeight ?? 0;
            const prev: Msg[] = [];
            for (let i = 0; i < (tx?.inputsLength ?? 0); i++) {
              const input = tx!.getInput(i);
              prev.push({ outpoint: `${bytesToHex(input.txid!)}:${input.index}`, is_our_output: false });
            }
            return {
              tx_hash: t.txHash ?? tx!.id,
              amount: "0",
              num_confirmations: t.numConfirmations ?? (h === 0 ? 0 : Math.max(0, blockHeight - h + 1)),
              block_hash: h === 0 ? "" : blockHashFor(h),
              block_height: h,
              time_stamp: "0",
              total_fees: "0",
              raw_tx_hex: bytesToHex(t.rawTx),
              label: t.label ?? "",
              previous_outpoints: prev,
            };
          }),
          last_index: String(txs.length),
          first_index: "0",
        };
      }),
    });

    // ---- Invoices
    server.addService(lndService("invoicesrpc.Invoices").service, {
      CancelInvoice: unaryHandler("Invoices", "CancelInvoice", (req) => {
        const hash = Uint8Array.from(req.payment_hash ?? []);
        if (hash.length !== 32) {
          throw new StatusError(grpc.status.UNKNOWN, `invalid hash length of ${hash.length}, want 32`);
        }
        const inv = invoices.get(bytesToHex(hash));
        // lnd's invoice registry: idempotent for CANCELED; the DB refuses SETTLED; UNKNOWN status.
        if (!inv) throw new StatusError(grpc.status.UNKNOWN, "unable to locate invoice");
        if (inv.state === "SETTLED") throw new StatusError(grpc.status.UNKNOWN, "invoice already settled");
        inv.state = "CANCELED";
        return {};
      }),
    });

    // ---- Signer
    server.addService(lndService("signrpc.Signer").service, {
      DeriveSharedKey: unaryHandler("Signer", "DeriveSharedKey", (req) => {
        const eph: Uint8Array = req.ephemeral_pubkey;
        if (!eph || eph.length === 0) {
          throw new StatusError(grpc.status.UNKNOWN, "must provide ephemeral pubkey");
        }
        if (eph.length !== 33) {
          throw new StatusError(
            grpc.status.UNKNOWN,
            "error in ephemeral pubkey: pubkey must be serialized in compressed format if specified",
          );
        }
        if (req.key_desc && req.key_loc) {
          throw new StatusError(grpc.status.UNKNOWN, "use either key_desc or key_loc");
        }
        if (req.key_desc && !req.key_desc.key_loc) {
          throw new StatusError(
            grpc.status.UNKNOWN,
            "when setting key_desc the field key_desc.key_loc must also be set",
          );
        }
        const loc = req.key_loc ?? req.key_desc?.key_loc ?? { key_family: NODE_KEY_FAMILY, key_index: 0 };
        let key: Uint8Array;
        try {
          key = keyRing.sharedKey(eph, loc.key_family, loc.key_index);
        } catch (err) {
          throw new StatusError(grpc.status.UNKNOWN, `error in ephemeral pubkey: ${err}`);
        }
        return { shared_key: key };
      }),
      SignOutputRaw: unaryHandler("Signer", "SignOutputRaw", (req) => {
        let tx: Transaction;
        try {
          tx = Transaction.fromRaw(Uint8Array.from(req.raw_tx_bytes ?? []), {
            allowUnknownInputs: true,
            allowUnknownOutputs: true,
            disableScriptCheck: true,
          });
        } catch (err) {
          throw new StatusError(grpc.status.UNKNOWN, `unable to parse raw tx: ${err}`);
        }
        const prev = (req.prev_outputs ?? []) as Msg[];
        if (prev.length !== tx.inputsLength) {
          throw new StatusError(
            grpc.status.UNKNOWN,
            `fakelnd: ${prev.length} prev_outputs for ${tx.inputsLength} inputs (taproot needs all)`,
          );
        }
        const prevScripts = prev.map((o) => Uint8Array.from(o.pk_script ?? []));
        const prevAmounts = prev.map((o) => BigInt(o.value));
        const sigs = ((req.sign_descs ?? []) as Msg[]).map((d) => {
          if (d.sign_method !== "SIGN_METHOD_TAPROOT_SCRIPT_SPEND") {
            throw new StatusError(grpc.status.UNIMPLEMENTED, `fakelnd: sign method ${d.sign_method}`);
          }
          if (d.sighash !== 0) {
            throw new StatusError(grpc.status.UNIMPLEMENTED, "fakelnd: only SIGHASH_DEFAULT");
          }
          const loc = d.key_desc?.key_loc;
          if (!loc) throw new StatusError(grpc.status.UNKNOWN, "fakelnd: key_desc.key_loc is required");
          const priv = keyRing.privateKey(loc.key_family, loc.key_index);
          const raw = Uint8Array.from(d.key_desc.raw_key_bytes ?? []);
          if (
            raw.length && bytesToHex(raw) !== bytesToHex(keyRing.publicKey(loc.key_family, loc.key_index))
          ) {
            throw new StatusError(grpc.status.UNKNOWN, "fakelnd: raw_key_bytes do not match key_loc");
          }
          const leaf = Uint8Array.from(d.witness_script ?? []);
          if (leaf.length === 0) {
            throw new StatusError(grpc.status.UNKNOWN, "witness script must be set for script path spend");
          }
          const out = d.output;
          const idx: number = d.input_index;
          if (
            !out || BigInt(out.value) !== prevAmounts[idx] ||
            bytesToHex(Uint8Array.from(out.pk_script ?? [])) !==
              bytesToHex(prevScripts[idx] ?? new Uint8Array())
          ) {
            throw new StatusError(
              grpc.status.UNKNOWN,
              `fakelnd: output of input ${idx} differs from prev_outputs`,
            );
          }
          const hash = tx.preimageWitnessV1(idx, prevScripts, 0, prevAmounts, -1, leaf, 0xc0);
          return schnorr.sign(hash, priv);
        });
        return { raw_sigs: sigs };
      }),
      MuSig2CreateSession: unaryHandler("Signer", "MuSig2CreateSession", (req) => muSig2CreateSession(req)),
      MuSig2RegisterNonces: unaryHandler("Signer", "MuSig2RegisterNonces", (req) => {
        const st = musigSession(req.session_id);
        if (st.haveAllNonces) throw new StatusError(grpc.status.UNKNOWN, "already have all nonces");
        const nonces = ((req.other_signer_public_nonces ?? []) as Uint8Array[]).map((n) =>
          Uint8Array.from(n)
        );
        const remaining = st.keys.length - st.nonces.length;
        if (nonces.length > remaining) {
          throw new StatusError(
            grpc.status.UNKNOWN,
            `only ${remaining} other nonces remaining but trying to register ${nonces.length} more`,
          );
        }
        registerNonces(st, nonces);
        return { have_all_nonces: st.haveAllNonces };
      }),
      MuSig2Sign: unaryHandler("Signer", "MuSig2Sign", (req) => {
        const id = bytesToHex(Uint8Array.from(req.session_id ?? []));
        const st = musigSession(req.session_id);
        const digest = Uint8Array.from(req.message_digest ?? []);
        if (digest.length !== 32) {
          throw new StatusError(grpc.status.UNKNOWN, `message digest must be 32 bytes, got ${digest.length}`);
        }
        if (!st.haveAllNonces) {
          throw new StatusError(
            grpc.status.UNKNOWN,
            `only have ${st.nonces.length} of ${st.keys.length} required nonces`,
          );
        }
        if (!st.secretNonce) {
          throw new StatusError(grpc.status.UNKNOWN, "error signing with local key: nonce already used");
        }
        const session = new Session(nonceAggregate(st.nonces), st.keys, digest, [st.tweak], [true]);
        const secretNonce = st.secretNonce;
        st.secretNonce = undefined; // one signature per session, as lnd
        const partial = session.sign(secretNonce, st.privateKey);
        if (req.cleanup) musigSessions.delete(id);
        return { local_partial_signature: partial };
      }),
      MuSig2Cleanup: unaryHandler("Signer", "MuSig2Cleanup", (req) => {
        const id = bytesToHex(Uint8Array.from(req.session_id ?? []));
        if (!musigSessions.delete(id)) {
          throw new StatusError(grpc.status.UNKNOWN, `session with ID ${id} not found`);
        }
        return {};
      }),
    });

    // ---- WalletKit
    const keyDesc = (family: number, index: number) => ({
      raw_key_bytes: keyRing.publicKey(family, index),
      key_loc: { key_family: family, key_index: index },
    });
    server.addService(lndService("walletrpc.WalletKit").service, {
      DeriveKey: unaryHandler("WalletKit", "DeriveKey", (req) => keyDesc(req.key_family, req.key_index)),
      DeriveNextKey: unaryHandler("WalletKit", "DeriveNextKey", (req) => {
        const index = nextKeyIndex.get(req.key_family) ?? 0;
        nextKeyIndex.set(req.key_family, index + 1);
        return keyDesc(req.key_family, index);
      }),
      ListUnspent: unaryHandler("WalletKit", "ListUnspent", (req) => {
        const min: number = req.min_confs;
        let max: number = req.max_confs;
        if (req.unconfirmed_only && min !== 0 && max !== 0) {
          throw new StatusError(
            grpc.status.UNKNOWN,
            "min_confs and max_confs must be zero if unconfirmed_only is true",
          );
        }
        if (min === 0 && max === 0 && !req.unconfirmed_only) max = 0x7fffffff;
        if (min > max) throw new StatusError(grpc.status.UNKNOWN, "max_confs cannot be less than min_confs");
        // lnd (v0.21.3, checked on regtest) lists only the named account's outputs; an unknown name gets an
        // empty list, not an error.
        const account: string = req.account ?? "";
        const accountOf = (u: FakeUtxo) =>
          u.account ??
            (imports.some((i) => bytesToHex(i.pkScript) === bytesToHex(u.pkScript)) ? "imported" : "default");
        return {
          utxos: utxos
            .filter((u) => u.confirmations >= min && u.confirmations <= max)
            .filter((u) => account === "" || accountOf(u) === account)
            .map((u) => ({
              address_type: "TAPROOT_PUBKEY",
              address: u.address ?? "",
              amount_sat: String(u.amountSat),
              pk_script: bytesToHex(u.pkScript),
              outpoint: {
                txid_bytes: hexToBytes(u.txid).reverse(),
                txid_str: u.txid,
                output_index: u.vout,
              },
              confirmations: String(u.confirmations),
            })),
        };
      }),
      ImportTapscript: unaryHandler("WalletKit", "ImportTapscript", (req) => {
        if (importError.text !== "") {
          if (importError.after > 0) importError.after--;
          else throw new StatusError(grpc.status.UNKNOWN, importError.text);
        }
        const internalKey = Uint8Array.from(req.internal_public_key ?? []);
        if (internalKey.length !== 32) {
          throw new StatusError(grpc.status.UNKNOWN, "error parsing internal key: invalid key length");
        }
        if (req.script !== "full_tree") {
          throw new StatusError(grpc.status.UNKNOWN, "fakelnd: only full_tree is supported");
        }
        const leaves = (req.full_tree.all_leaves as Msg[]).map((l) => ({
          leafVersion: l.leaf_version as number,
          script: Uint8Array.from(l.script),
        }));
        if (leaves.length !== 1) {
          throw new StatusError(grpc.status.UNKNOWN, "fakelnd: exactly one leaf is supported");
        }
        if (leaves[0].leafVersion !== 0xc0) {
          throw new StatusError(
            grpc.status.UNKNOWN,
            `fakelnd: leaf version ${leaves[0].leafVersion} is not 0xc0`,
          );
        }
        let address: string;
        let pkScript: Uint8Array;
        try {
          const out = p2tr(internalKey, { script: leaves[0].script, leafVersion: 0xc0 }, addrNet, true);
          address = out.address!;
          pkScript = out.script;
        } catch (err) {
          throw new StatusError(grpc.status.UNKNOWN, `error importing script into wallet: ${err}`);
        }
        if (imports.some((i) => i.address === address)) {
          throw new StatusError(
            grpc.status.UNKNOWN,
            "error importing script into wallet: address already exists",
          );
        }
        imports.push({ internalKey, leaves, address, pkScript });
        return { p2tr_address: address };
      }),
      NextAddr: unaryHandler("WalletKit", "NextAddr", (req) => {
        if (req.type !== "TAPROOT_PUBKEY") {
          throw new StatusError(grpc.status.UNKNOWN, `fakelnd: address type ${req.type}`);
        }
        const key = keyRing.taprootKey(req.change ? 1 : 0, nextAddrIndex++);
        return { addr: p2tr(key, undefined, addrNet).address! };
      }),
      PublishTransaction: unaryHandler("WalletKit", "PublishTransaction", (req) => {
        published.push({ tx: Uint8Array.from(req.tx_hex), label: req.label });
        return { publish_error: publishError };
      }),
      EstimateFee: unaryHandler("WalletKit", "EstimateFee", (req) => {
        if (req.conf_target < 2) {
          throw new StatusError(grpc.status.UNKNOWN, "confirmation target must be greater than 1");
        }
        return { sat_per_kw: String(fee.satPerKw), min_relay_fee_sat_per_kw: String(fee.minRelay) };
      }),
    });

    // ---- ChainNotifier
    const confMsg = (c: FakeConfirmation) => ({
      conf: {
        raw_tx: c.rawTx ?? new Uint8Array(),
        block_hash: hexToBytes(c.blockHash ?? blockHashFor(c.blockHeight)).reverse(),
        block_height: c.blockHeight,
        tx_index: c.txIndex ?? 1,
      },
    });
    server.addService(lndService("chainrpc.ChainNotifier").service, {
      RegisterConfirmationsNtfn: streamHandler(
        "ChainNotifier",
        "RegisterConfirmationsNtfn",
        (req, call, cleanup) => {
          const txidBytes = Uint8Array.from(req.txid ?? []);
          const script = Uint8Array.from(req.script ?? []);
          if (script.length === 0) {
            throw new StatusError(grpc.status.UNKNOWN, "an output script must be provided");
          }
          if (req.num_confs === 0) {
            throw new StatusError(grpc.status.UNKNOWN, "a positive number of confirmations must be provided");
          }
          const keys = txidBytes.some((b) => b !== 0)
            ? [bytesToHex(txidBytes.reverse())]
            : [`script:${bytesToHex(script)}`];
          const known = keys.map((k) => confirmations.get(k)).find((c) => c);
          if (known) {
            call.write(confMsg(known));
            return; // lnd keeps the stream open for reorg events; the client cancels
          }
          const waiter = { keys, fire: (c: FakeConfirmation) => call.write(confMsg(c)) };
          confWaiters.add(waiter);
          cleanup(() => confWaiters.delete(waiter));
        },
      ),
      RegisterSpendNtfn: streamHandler("ChainNotifier", "RegisterSpendNtfn", (req, call, cleanup) => {
        const hash = Uint8Array.from(req.outpoint?.hash ?? []);
        const script = Uint8Array.from(req.script ?? []);
        if (hash.length !== 32 || hash.every((b) => b === 0)) {
          throw new StatusError(
            grpc.status.UNKNOWN,
            "fakelnd: only spend registrations by outpoint are supported",
          );
        }
        if (script.length === 0) {
          throw new StatusError(grpc.status.UNKNOWN, "an output script must be provided");
        }
        const op = { hash, index: req.outpoint.index ?? 0 };
        const key = `${bytesToHex(hash.slice().reverse())}:${op.index}`;
        const spendMsg = (sp: FakeSpend) => ({
          spend: {
            spending_outpoint: op,
            raw_spending_tx: sp.rawSpendingTx ?? new Uint8Array(),
            spending_tx_hash: hexToBytes(sp.spendingTxid).reverse(),
            spending_input_index: sp.spendingInputIndex ?? 0,
            spending_height: sp.spendingHeight,
          },
        });
        const known = spends.get(key);
        if (known) {
          call.write(spendMsg(known));
          return; // lnd keeps the stream open for reorg events; the client cancels
        }
        const waiter = { key, fire: (sp: FakeSpend) => call.write(spendMsg(sp)) };
        spendWaiters.add(waiter);
        cleanup(() => spendWaiters.delete(waiter));
      }),
    });

    // ---- Router
    const streamPayment = (
      call: grpc.ServerWritableStream<Msg, Msg>,
      cleanup: (fn: () => void) => void,
      hash: string,
      p: { request: string; updates: FakePaymentUpdate[] },
    ) => {
      let cancelled = false;
      cleanup(() => cancelled = true);
      const pending: ReturnType<typeof setTimeout>[] = [];
      cleanup(() => {
        for (const t of pending) {
          clearTimeout(t);
          timers.delete(t);
        }
      });
      let delay = 0;
      p.updates.forEach((u, i) => {
        delay += u.delayMs ?? 0;
        const send = () => {
          if (cancelled) return;
          call.write(paymentMsg(hash, p.request, u));
          const last = i === p.updates.length - 1;
          if (last && (u.status === "SUCCEEDED" || u.status === "FAILED")) call.end();
        };
        if (delay === 0) send();
        else pending.push(later(delay, send));
      });
    };
    server.addService(lndService("routerrpc.Router").service, {
      SendPaymentV2: streamHandler("Router", "SendPaymentV2", (req, call, cleanup) => {
        const entry = [...payments.entries()].find(([, p]) => p.request === req.payment_request);
        if (!entry) {
          return streamError(
            call,
            new StatusError(grpc.status.UNKNOWN, "invalid payment request: unknown to fakelnd"),
          );
        }
        const [hash, p] = entry;
        if (p.sent && p.updates.at(-1)?.status === "SUCCEEDED") {
          return streamError(call, new StatusError(grpc.status.UNKNOWN, "invoice is already paid"));
        }
        p.sent = true;
        streamPayment(call, cleanup, hash, p);
      }),
      TrackPaymentV2: streamHandler("Router", "TrackPaymentV2", (req, call, cleanup) => {
        const hash = bytesToHex(Uint8Array.from(req.payment_hash ?? []));
        const p = payments.get(hash);
        if (!p || !p.sent) {
          return streamError(call, new StatusError(grpc.status.NOT_FOUND, "payment isn't initiated"));
        }
        streamPayment(call, cleanup, hash, {
          request: p.request,
          updates: p.updates.map((u) => ({ ...u, delayMs: 0 })),
        });
      }),
    });

    const grpcPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(
        "127.0.0.1:0",
        grpc.ServerCredentials.createSsl(
          Buffer.from(cert.certPem),
          [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) }],
          false,
        ),
        (err, p) => err ? reject(err) : resolve(p),
      );
    });
    proxy = startTcpRelay(grpcPort);

    return {
      rpcServer: `127.0.0.1:${proxy.port}`,
      tlsCertPath: `${dir}/tls.cert`,
      macaroonPath,
      dir,
      calls,
      requests,
      imports,
      published,
      keyRing,
      identityPubkey,
      openStreams: () => openStreams,
      invoices,
      settleInvoice(paymentHash) {
        const key = typeof paymentHash === "string" ? paymentHash : bytesToHex(paymentHash);
        const inv = invoices.get(key);
        if (!inv) throw new Error(`fakelnd: no invoice ${key}`);
        if (inv.state !== "OPEN" && inv.state !== "ACCEPTED") {
          throw new Error(`fakelnd: invoice ${key} is ${inv.state}, cannot settle`);
        }
        inv.state = "SETTLED";
        inv.amtPaidMsat = inv.valueMsat;
        inv.settleDate = Math.floor(Date.now() / 1000);
      },
      addTransaction(tx) {
        if (tx.txHash === undefined) {
          Transaction.fromRaw(tx.rawTx, {
            allowUnknownInputs: true,
            allowUnknownOutputs: true,
            disableScriptCheck: true,
          });
        }
        walletTxs.push({ ...tx, rawTx: Uint8Array.from(tx.rawTx) });
      },
      muSig2Sessions: () => musigSessions.size,
      dropMuSig2Sessions() {
        musigSessions.clear();
      },
      failCall(rpc, failure) {
        failures.set(rpc, { ...failure, left: failure.times ?? 1 });
      },
      clearFailures() {
        failures.clear();
      },
      setUtxos(list) {
        utxos = list.map((u) => ({ ...u }));
      },
      setBlockHeight(h) {
        blockHeight = h;
      },
      setFeeRate(satPerKw, minRelay = fee.minRelay) {
        fee = { satPerKw, minRelay };
      },
      setPublishError(text) {
        publishError = text;
      },
      setImportTapscriptError(text, afterCalls = 0) {
        importError = { text, after: afterCalls };
      },
      setStall(rpc, on) {
        if (on) stalls.add(rpc);
        else stalls.delete(rpc);
      },
      setConfirmation(txid, conf, pkScript) {
        confirmations.set(txid, conf);
        if (pkScript) confirmations.set(`script:${bytesToHex(pkScript)}`, conf);
        for (const w of [...confWaiters]) {
          if (w.keys.some((k) => confirmations.get(k) === conf)) {
            confWaiters.delete(w);
            w.fire(conf);
          }
        }
      },
      setSpend(txid, vout, spend) {
        const key = `${txid}:${vout}`;
        spends.set(key, spend);
        for (const w of [...spendWaiters]) {
          if (w.key === key) {
            spendWaiters.delete(w);
            w.fire(spend);
          }
        }
      },
      setPayment(paymentHash, p) {
        payments.set(paymentHash, { request: p.paymentRequest, updates: p.updates, sent: false });
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        for (const t of timers) clearTimeout(t);
        timers.clear();
        for (const c of [...stalled]) c.end();
        confWaiters.clear();
        spendWaiters.clear();
        await proxy?.close(); // clients see the connection drop, never a GOAWAY
        server.forceShutdown();
        await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (err) {
    await proxy?.close();
    server.forceShutdown();
    await Deno.remove(dir, { recursive: true });
    throw err;
  }
}
