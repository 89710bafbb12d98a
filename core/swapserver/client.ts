/**
 * Typed client for Loop's swap server over gRPC, every call through L402 pay-and-retry
 * (spec/static-loop-in.md §1.3, §5; spec/static-address-and-deposits.md §3.2–§3.3).
 *
 * - One gRPC channel per client while a call is in flight (closed when the last call ends, opened again
 *   by the next: denoland/deno#36788), TLS with the system roots by default (or a given certificate);
 *   plaintext only to a loopback host (the L402 credential is a bearer secret; Loop's `--notls`
 *   is "testing only").
 * - Calls are serialised by the {@linkcode L402Client}; each attempt has a 30 s deadline.
 * - Errors: L402 errors from core/l402/client.ts pass through; the server unreachable or timing
 *   out → exit 75 (`swap_server_unreachable` / `swap_server_timeout`) naming `--swapserver`; a TLS
 *   failure → `swap_server_tls` (exit 2); any other gRPC error → `swap_server_rpc` (exit 1).
 *
 * Response validation is the caller's (`validateServerAddressParams` in core/staticaddr, called by
 * `ensureStaticAddress`); this module only checks that an answer arrived (spec §3.4 step 1).
 *
 * Permissions: `--allow-net` (server), `--allow-read` (proto file), plus the token store's.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type { MethodDefinition } from "@grpc/proto-loader";
import { Buffer } from "node:buffer";
import { ExitCode, LoopkitError, tempFailure, usageError } from "../errors.ts";
import { credentialFor, isPaymentRequired, L402Client, type L402ClientOptions } from "../l402/client.ts";
import { paidTokenProblem } from "../l402/store.ts";
import type { RouteHint } from "../../lnd/types.ts";
import denoConfig from "../../deno.json" with { type: "json" };
import type { NetworkName } from "../staticaddr/network.ts";
import {
  type ServerAddressParamsMessage,
  STATIC_ADDRESS_PROTOCOL_V0,
  validateClientPubkey,
} from "../staticaddr/script.ts";
import { loadSwapServerProto } from "../../proto/mod.ts";

/**
 * Loop's default swap servers (Loop `loopd/config.go`: mainnet, testnet, signet). Other networks
 * (regtest, simnet, testnet4) have none: `--swapserver` is required there.
 */
export const DEFAULT_SWAP_SERVERS: Readonly<Partial<Record<NetworkName, string>>> = Object.freeze({
  mainnet: "swap.lightning.today:11010",
  testnet: "test.swap.lightning.today:11010",
  signet: "signet.swap.lightning.today:11010",
});

/** Agent name in the `user_agent` of swap-server requests (spec/static-loop-in.md §1.6; Loop's is `loopd`). */
export const USER_AGENT_NAME = "loopkit";

/** loopkit's version (deno.json), the `v<semver>` part of the user agent. */
export const LOOPKIT_VERSION: string = denoConfig.version;

/** `ProtocolVersion.MUSIG2`: what loop-in terms, probe and quote requests carry (spec §1.4). */
export const PROTOCOL_VERSION_MUSIG2 = 11;

/** `SubscribeNotificationsRequest.ListenerVersion.V1` (spec §1.4). */
export const LISTENER_VERSION_V1 = 1;

const SEMANTIC_ALPHABET = /[0-9A-Za-z-]/;
const INITIATOR_ALPHABET = /[0-9A-Za-z-. ]/;

/**
 * The `user_agent` of swap-server requests, Loop's format (spec §1.6, Loop `version.go` `UserAgent`):
 * `<agent>/v<semver>/commit=<commit>` plus `,initiator=<initiator>` when an initiator is given. The
 * initiator is trimmed, reduced to `[0-9A-Za-z-]`, `.` and space, and `,initiator=<…>` is cut to 150
 * characters; the version keeps only `[0-9A-Za-z-.]`.
 *
 * @param opts `version` (default {@linkcode LOOPKIT_VERSION}), `commit` (default ""), `initiator`
 * @returns e.g. `loopkit/v0.1.0/commit=,initiator=loopkit-cli`
 */
export function userAgent(opts: { version?: string; commit?: string; initiator?: string } = {}): string {
  const keep = (s: string, re: RegExp) => [...s].filter((c) => re.test(c)).join("");
  const version = keep(opts.version ?? LOOPKIT_VERSION, /[0-9A-Za-z-.]/);
  const initiator = keep((opts.initiator ?? "").trim(), INITIATOR_ALPHABET);
  const suffix = initiator ? `,initiator=${initiator}`.slice(0, 150) : "";
  return `${USER_AGENT_NAME}/v${version}/commit=${keep(opts.commit ?? "", SEMANTIC_ALPHABET)}${suffix}`;
}

/** The flag that names the server, used in error messages. */
export const SWAP_SERVER_FLAG = "--swapserver";

/**
 * The swap server for a network: the flag value when given, else Loop's default.
 *
 * @param network the active network
 * @param flag the `--swapserver` value, if any
 * @returns `host:port`
 * @throws {LoopkitError} usage error `swap_server_required` when there is no default for `network`
 */
export function swapServerAddress(network: NetworkName, flag?: string): string {
  if (flag !== undefined && flag !== "") return flag;
  const def = DEFAULT_SWAP_SERVERS[network];
  if (def === undefined) {
    throw usageError(
      `No default swap server for network ${network}: pass ${SWAP_SERVER_FLAG} host:port`,
      "swap_server_required",
    );
  }
  return def;
}

/** Splits and checks `host:port` (`[v6]:port` for IPv6). */
export function parseServerAddress(address: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\[\]\s]+):([0-9]{1,5})$/.exec(address);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) {
    throw usageError(`${SWAP_SERVER_FLAG} "${address}" is not host:port`, "swap_server_address");
  }
  return { host: m[1], port };
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Options of {@linkcode openSwapServer}. */
export interface SwapServerOptions {
  /** `host:port` of the server (see {@linkcode swapServerAddress}). */
  address: string;
  /** Use TLS (default servers: yes). Plaintext is refused unless the host is loopback. */
  tls: boolean;
  /** PEM certificate to trust instead of the system roots (self-signed test servers). */
  tlsCert?: Uint8Array;
  /**
   * Name the TLS certificate must carry. Default: the host, or `localhost` when the host is an IP
   * literal (Deno's TLS refuses an IP as server name; self-signed test certificates name localhost).
   */
  tlsServerName?: string;
  /** Active network. */
  network: NetworkName;
  /** L402 settings: token store, payer (lnd), limits. */
  l402: Omit<L402ClientOptions, "network">;
  /** Build commit for the user agent (default ""). */
  commit?: string;
  /** Default initiator of the user agent (spec §1.6), e.g. `loopkit-cli`; a call may name its own. */
  initiator?: string;
}

/** Swap limits of `SwapServer/LoopInTerms`. */
export interface LoopInTerms {
  /** Smallest swap amount, sat. */
  minSwapAmountSat: bigint;
  /** Largest swap amount, sat. */
  maxSwapAmountSat: bigint;
}

/** Request of `SwapServer/Probe` (spec §1.7 step 6). */
export interface ProbeRequest {
  /** Amount to probe for, sat. */
  amtSat: bigint;
  /** Our node's 33-byte identity key. */
  target: Uint8Array;
  /** Optional 33-byte pubkey of the peer the payment must arrive through. */
  lastHop?: Uint8Array;
  /** Route hints to our node. */
  routeHints?: RouteHint[];
}

/** Request of `SwapServer/LoopInQuote` (spec §1.7 step 7). */
export interface LoopInQuoteRequest {
  /** Swap amount, sat. */
  amtSat: bigint;
  /** Our node's 33-byte identity key. */
  pubkey: Uint8Array;
  /** Optional 33-byte last-hop pubkey. */
  lastHop?: Uint8Array;
  /** Route hints to our node. */
  routeHints?: RouteHint[];
  /** Number of static-address deposits the swap spends. */
  numDeposits: number;
  /** The user's `fast` flag. */
  fast: boolean;
  /** Initiator for this request's user agent (default: the client's). */
  initiator?: string;
}

/** Answer of `SwapServer/LoopInQuote` (only `swap_fee` is used by Loop; spec §1.4). */
export interface LoopInQuote {
  /** Swap fee, sat (never negative: a negative answer is refused). */
  swapFeeSat: bigint;
  /** `cltv_delta`, blocks. */
  cltvDelta: number;
}

/** Request of `StaticAddressServer/ServerStaticAddressLoopIn` (spec §1.4 table). */
export interface ServerStaticAddressLoopInRequest {
  /** 33-byte HTLC client key (lnd family 42060, fresh per swap). */
  htlcClientPubKey: Uint8Array;
  /** 32-byte swap hash, SHA-256(preimage). */
  swapHash: Uint8Array;
  /** Selected deposit outpoints `txid:vout`, in selection order (the HTLC input order). */
  depositOutpoints: string[];
  /** The BOLT 11 swap invoice from lnd. */
  swapInvoice: string;
  /** Optional 33-byte last-hop pubkey. */
  lastHop?: Uint8Array;
  /** Payment timeout, s (Loop default 60). */
  paymentTimeoutSeconds: number;
  /** Selected amount, sat; 0 = all of the deposits. */
  amountSat: bigint;
  /** The user's `fast` flag. */
  fast: boolean;
  /** Initiator for this request's user agent (default: the client's). */
  initiator?: string;
}

/** One fee variant of the server's HTLC signing data (`ServerHtlcSigningInfo`). */
export interface ServerHtlcSigningInfo {
  /** The server's public nonces, one per deposit in deposit order (66 bytes each when well-formed). */
  nonces: Uint8Array[];
  /** Fee rate of this HTLC transaction variant, sat/kw. */
  feeRateSatPerKw: bigint;
}

/**
 * Answer of `ServerStaticAddressLoopIn`, converted but not validated: lengths, the expiry window and
 * the fee guards are the caller's rules (spec §1.7 step 18, §3.7). A variant the server left out comes
 * back with no nonces and fee rate 0.
 */
export interface ServerStaticAddressLoopInResponse {
  /** The server's HTLC key (33 bytes when well-formed). */
  htlcServerPubKey: Uint8Array;
  /** Absolute CLTV expiry height of the HTLC. */
  htlcExpiry: number;
  /** Standard fee variant. */
  standard: ServerHtlcSigningInfo;
  /** High fee variant. */
  high: ServerHtlcSigningInfo;
  /** Extreme fee variant. */
  extreme: ServerHtlcSigningInfo;
}

/** Our nonces and MuSig2 partial signatures for one HTLC variant, both in deposit order. */
export interface ClientHtlcSigningInfo {
  /** 66-byte public nonces. */
  nonces: Uint8Array[];
  /** 32-byte partial signatures. */
  sigs: Uint8Array[];
}

/** Request of `StaticAddressServer/PushStaticAddressHtlcSigs`; only `swapHash` = abandon the swap. */
export interface PushStaticAddressHtlcSigsRequest {
  /** 32-byte swap hash. */
  swapHash: Uint8Array;
  /** Standard variant. */
  standard?: ClientHtlcSigningInfo;
  /** High fee variant. */
  high?: ClientHtlcSigningInfo;
  /** Extreme fee variant. */
  extreme?: ClientHtlcSigningInfo;
}

/** Request of `StaticAddressServer/PushStaticAddressSweeplessSigs` (spec §4.6). */
export interface PushStaticAddressSweeplessSigsRequest {
  /** 32-byte swap hash. */
  swapHash: Uint8Array;
  /** 32-byte txid of the sweep, internal byte order (not display order). */
  txid: Uint8Array;
  /** Per deposit outpoint (`txid:vout`): our 66-byte nonce and 32-byte partial signature. */
  signingInfo: Map<string, { nonce: Uint8Array; sig: Uint8Array }>;
  /** Set (with an empty `signingInfo`) to refuse, e.g. `swap not finished yet`. */
  errorMessage?: string;
}

/** One spent output of a sweep, as the server describes it (`PrevoutInfo`). */
export interface SweepPrevout {
  /** Value, sat. */
  valueSat: bigint;
  /** Output script. */
  pkScript: Uint8Array;
  /** Txid, display hex (the wire `txid_bytes` reversed; not checked for length here). */
  txid: string;
  /** Output index. */
  vout: number;
}

/**
 * A notification from `SwapServer/SubscribeNotifications`, converted but not validated (spec §3.10: a
 * swap hash that is not 32 bytes is the caller's to log and drop). `other` is any notification the
 * loop-in does not use (`field` = the oneof member's name, "" when none is set or it is unknown to our
 * proto).
 */
export type ServerNotification =
  | { kind: "risk_accepted" | "risk_rejected"; swapHash: Uint8Array }
  | {
    kind: "sweep";
    swapHash: Uint8Array;
    /** Binary PSBT of the sweep. */
    sweepTxPsbt: Uint8Array;
    /** Deposit outpoint → the server's 66-byte nonce. */
    depositToNonces: Map<string, Uint8Array>;
    /** The sweep's inputs' prevouts, as sent. */
    prevoutInfo: SweepPrevout[];
  }
  | { kind: "other"; field: string };

/** Options of {@linkcode SwapServerClient.subscribeNotifications}. */
export interface SubscribeNotificationsOptions {
  /** Aborting it cancels the stream; the call then resolves. */
  signal: AbortSignal;
  /**
   * Called once per notification, in arrival order; the next one waits until the returned promise
   * settles (spec §4.6: sweep requests one at a time). If it throws, the stream is cancelled and the
   * call rejects with that error.
   */
  onNotification: (n: ServerNotification) => void | Promise<void>;
}

/** The swap-server calls loopkit makes. Structurally an `AddressServer` (core/staticaddr/new_address.ts). */
export interface SwapServerClient {
  /** `host:port`. */
  readonly address: string;
  /** The L402 layer (token store, last acquisition). */
  readonly l402: L402Client;
  /**
   * `SwapServer/FetchL402`: does nothing on the server but makes sure a paid L402 token exists,
   * paying one if needed (Loop calls it before creating a static address).
   * @throws {LoopkitError} see {@linkcode L402Client.call} and the module doc
   */
  ensurePaidToken(): Promise<void>;
  /**
   * `StaticAddressServer/ServerNewAddress(protocol_version = V0, client_key)`.
   * @param clientPubkey 33-byte compressed client key (lnd family 42060)
   * @returns the raw `params` (server key bytes, CSV expiry), or null when the answer has none;
   *   validate with `validateServerAddressParams` before use
   * @throws {LoopkitError} `invalid_static_address` for a bad client key (nothing sent), or when no
   *   answer arrived; otherwise see the module doc
   */
  serverNewAddress(clientPubkey: Uint8Array): Promise<ServerAddressParamsMessage | null>;
  /**
   * `SwapServer/LoopInTerms{protocol_version = MUSIG2, user_agent}` (spec §1.7 step 4).
   * @throws {LoopkitError} `swap_server_bad_response` for a malformed amount; otherwise the module doc
   */
  loopInTerms(opts?: { initiator?: string }): Promise<LoopInTerms>;
  /**
   * `SwapServer/Probe{protocol_version = MUSIG2, amt, target, last_hop, route_hints}` (spec §1.7 step 6;
   * Loop logs and ignores a probe error, the caller decides).
   * @throws {RangeError} for a key that is not 33 bytes or an amount ≤ 0 (nothing sent)
   */
  probe(req: ProbeRequest): Promise<void>;
  /**
   * `SwapServer/LoopInQuote{amt, protocol_version = MUSIG2, pubkey, last_hop, route_hints, user_agent,
   * num_static_address_deposits, fast}` (spec §1.7 step 7).
   * @throws {RangeError} for bad arguments (nothing sent)
   * @throws {LoopkitError} `swap_server_bad_response` for a malformed or negative swap fee
   */
  loopInQuote(req: LoopInQuoteRequest): Promise<LoopInQuote>;
  /**
   * `StaticAddressServer/ServerStaticAddressLoopIn` with `protocol_version = V0` and the user agent
   * (spec §1.4, §1.7 step 17). The answer is converted, not validated (see
   * {@linkcode ServerStaticAddressLoopInResponse}).
   * @throws {RangeError} for bad arguments (nothing sent)
   */
  serverStaticAddressLoopIn(
    req: ServerStaticAddressLoopInRequest,
  ): Promise<ServerStaticAddressLoopInResponse>;
  /**
   * `StaticAddressServer/PushStaticAddressHtlcSigs` (spec §1.7 step 27). With only `swapHash` it tells
   * the server the client abandons the swap.
   * @throws {RangeError} for a swap hash that is not 32 bytes, a nonce not 66, a signature not 32, or
   *   a variant with different nonce and signature counts (nothing sent)
   */
  pushStaticAddressHtlcSigs(req: PushStaticAddressHtlcSigsRequest): Promise<void>;
  /**
   * `StaticAddressServer/PushStaticAddressSweeplessSigs` (spec §4.6 steps 3 and 9).
   * @throws {RangeError} for a swap hash or txid not 32 bytes, a nonce not 66, a signature not 32
   */
  pushStaticAddressSweeplessSigs(req: PushStaticAddressSweeplessSigsRequest): Promise<void>;
  /**
   * `SwapServer/SubscribeNotifications{version = V1}`, a server stream. Opened only with the **paid**
   * token attached: it never pays (spec §5.3, §3.10; a payment-required answer is `l402_rejected`).
   * Resolves when `opts.signal` aborts, {@linkcode close} is called or the server ends the stream; no
   * deadline.
   * @throws {LoopkitError} `l402_no_paid_token` (nothing sent; a paid unary call such as
   *   {@linkcode ensurePaidToken} creates one), `l402_token_invalid`, `l402_rejected`; stream errors
   *   mapped as for unary calls; or what `onNotification` threw
   */
  subscribeNotifications(opts: SubscribeNotificationsOptions): Promise<void>;
  /** Closes the channel (if a call holds it open) and refuses further calls. Idempotent. */
  close(): void;
}

// deno-lint-ignore no-explicit-any
type Msg = Record<string, any>;

interface GrpcErrorLike {
  code?: number;
  details?: string;
  message?: string;
}

/** grpc-js's words for a peer that does not speak gRPC over HTTP/2. */
const NOT_GRPC_PATTERNS = [/Protocol error/i, /Received HTTP status code/i, /RST_STREAM/i, /Bad HTTP\/2/i];

function mapGrpcError(err: unknown, method: string, address: string): unknown {
  if (err instanceof LoopkitError) return err;
  const e = err as GrpcErrorLike;
  if (typeof e?.code !== "number") return err;
  // grpc-js ends connection failures with an empty ". Resolution note: ": drop it.
  const details = (e.details ?? e.message ?? "").replace(/\.?\s*Resolution note:\s*$/, "").trim();
  const where = `swap server ${address} (${SWAP_SERVER_FLAG})`;
  if (
    NOT_GRPC_PATTERNS.some((p) => p.test(details)) || e.code === grpc.status.CANCELLED ||
    (e.code === grpc.status.RESOURCE_EXHAUSTED && /Received message larger than max/.test(details))
  ) {
    // An HTTP/2 (or HTTP/1, or raw) server that is not a gRPC server: the length prefix of a gRPC message is
    // read from its HTML or text ("message larger than max"), its frames are refused ("Protocol error"), or
    // it resets the stream ("CANCELLED"). Retrying does not help; the address is wrong.
    return new LoopkitError(
      "swap_server_protocol",
      `The ${where} did not answer ${method} in gRPC (${grpc.status[e.code] ?? e.code}: ${details}): ` +
        `is it a Loop swap server's gRPC address (TLS unless --no-swapserver-tls)?`,
      ExitCode.Usage,
      { cause: err },
    );
  }
  if (/certificate|ssl|tls|handshake|self[- ]signed/i.test(details)) {
    return new LoopkitError(
      "swap_server_tls",
      `TLS with the ${where} failed on ${method}: ${details}`,
      ExitCode.Usage,
      { cause: err },
    );
  }
  if (e.code === grpc.status.UNAVAILABLE) {
    return tempFailure(`Cannot reach the ${where} for ${method}: ${details}`, "swap_server_unreachable", err);
  }
  if (e.code === grpc.status.DEADLINE_EXCEEDED) {
    return tempFailure(
      `The ${where} did not answer ${method} in time: ${details}`,
      "swap_server_timeout",
      err,
    );
  }
  const name = grpc.status[e.code] ?? String(e.code);
  return new LoopkitError(
    "swap_server_rpc",
    `Swap server ${method} failed: ${name}: ${details}`,
    ExitCode.Failure,
    { cause: err },
  );
}

function badResponse(method: string, what: string): LoopkitError {
  return new LoopkitError("swap_server_bad_response", `Swap server ${method} answered malformed: ${what}`);
}

function u64(method: string, field: string, v: unknown): bigint {
  if (typeof v !== "string" || !/^\d{1,20}$/.test(v)) {
    throw badResponse(method, `${field} "${v}" is not an integer`);
  }
  return BigInt(v);
}

function assertBytes(name: string, b: Uint8Array | undefined, len: number): void {
  if (!(b instanceof Uint8Array) || b.length !== len) {
    throw new RangeError(`swap server request: ${name} must be ${len} bytes, got ${b?.length}`);
  }
}

function assertAmount(name: string, v: bigint, allowZero = false): void {
  if (typeof v !== "bigint" || v < (allowZero ? 0n : 1n) || v >= 1n << 64n) {
    throw new RangeError(`swap server request: ${name} ${v} is out of range`);
  }
}

function assertUint32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`swap server request: ${name} ${v} is out of range`);
  }
}

/** Route hints in the swap server's wire layout (`common.proto`, camelCase for proto-loader). */
function wireRouteHints(hints: RouteHint[] | undefined): Msg[] {
  return (hints ?? []).map((h, i) => ({
    hopHints: h.hopHints.map((hop, j) => {
      const where = `route hint ${i} hop ${j}`;
      if (!/^0[23][0-9a-f]{64}$/.test(hop.nodeId)) {
        throw new RangeError(`swap server request: ${where} node id`);
      }
      assertAmount(`${where} chan id`, hop.chanId, true);
      assertUint32(`${where} fee base msat`, hop.feeBaseMsat);
      assertUint32(`${where} fee proportional millionths`, hop.feeProportionalMillionths);
      assertUint32(`${where} cltv expiry delta`, hop.cltvExpiryDelta);
      return {
        nodeId: hop.nodeId,
        chanId: hop.chanId.toString(),
        feeBaseMsat: hop.feeBaseMsat,
        feeProportionalMillionths: hop.feeProportionalMillionths,
        cltvExpiryDelta: hop.cltvExpiryDelta,
      };
    }),
  }));
}

function optionalKey(name: string, key: Uint8Array | undefined): Buffer {
  if (key === undefined || key.length === 0) return Buffer.alloc(0);
  assertBytes(name, key, 33);
  return Buffer.from(key);
}

function copy(b: unknown): Uint8Array {
  return b instanceof Uint8Array ? Uint8Array.from(b) : new Uint8Array();
}

function serverSigningInfo(method: string, name: string, v: Msg | null | undefined): ServerHtlcSigningInfo {
  if (v === null || v === undefined) return { nonces: [], feeRateSatPerKw: 0n };
  return {
    nonces: ((v.nonces ?? []) as unknown[]).map(copy),
    feeRateSatPerKw: u64(method, `${name}.fee_rate`, v.feeRate ?? "0"),
  };
}

function clientSigningInfo(name: string, v: ClientHtlcSigningInfo | undefined): Msg | null {
  if (v === undefined) return null;
  if (v.nonces.length !== v.sigs.length) {
    throw new RangeError(
      `swap server request: ${name} has ${v.nonces.length} nonces and ${v.sigs.length} sigs`,
    );
  }
  v.nonces.forEach((n, i) => assertBytes(`${name} nonce ${i}`, n, 66));
  v.sigs.forEach((sg, i) => assertBytes(`${name} sig ${i}`, sg, 32));
  return { nonces: v.nonces.map((n) => Buffer.from(n)), sigs: v.sigs.map((sg) => Buffer.from(sg)) };
}

/** Converts one `SubscribeNotificationsResponse` (proto-loader object, `oneofs: true`). */
function notification(msg: Msg): ServerNotification {
  const field: string = msg?.notification ?? "";
  switch (field) {
    case "staticLoopInRiskAccepted":
    case "staticLoopInRiskRejected":
      return {
        kind: field === "staticLoopInRiskAccepted" ? "risk_accepted" : "risk_rejected",
        swapHash: copy(msg[field]?.swapHash),
      };
    case "staticLoopInSweep": {
      const n = msg[field] ?? {};
      const nonces = new Map<string, Uint8Array>();
      for (const [op, nonce] of Object.entries(n.depositToNonces ?? {})) nonces.set(op, copy(nonce));
      return {
        kind: "sweep",
        swapHash: copy(n.swapHash),
        sweepTxPsbt: copy(n.sweepTxPsbt),
        depositToNonces: nonces,
        prevoutInfo: ((n.prevoutInfo ?? []) as Msg[]).map((p) => ({
          valueSat: u64("SubscribeNotifications", "prevout_info.value", p.value ?? "0"),
          pkScript: copy(p.pkScript),
          txid: hexOf(copy(p.txidBytes).reverse()),
          vout: p.outputIndex ?? 0,
        })),
      };
    }
    default:
      return { kind: "other", field: snakeCase(field) };
  }
}

function hexOf(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

function snakeCase(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * Opens a client for the swap server. No network traffic happens until the first call.
 *
 * @param opts address, TLS, network and L402 settings
 * @returns the client; close it when done
 * @throws {LoopkitError} usage errors for a malformed address or plaintext to a non-loopback host
 * @example
 * ```ts ignore
 * const store = await L402TokenStore.open(`${loopDir}/mainnet`);
 * const server = openSwapServer({
 *   address: swapServerAddress("mainnet"),
 *   tls: true,
 *   network: "mainnet",
 *   l402: { store, payer: lnd },
 * });
 * try {
 *   await server.ensurePaidToken();
 *   const params = await server.serverNewAddress(clientKey);
 * } finally {
 *   server.close();
 * }
 * ```
 */
export function openSwapServer(opts: SwapServerOptions): SwapServerClient {
  const { host } = parseServerAddress(opts.address);
  if (!opts.tls && !isLoopback(host)) {
    throw usageError(
      `Refusing plaintext to the swap server ${opts.address}: the L402 token would travel in the clear; ` +
        `plaintext is for a local test server on a loopback address only`,
      "swap_server_insecure",
    );
  }
  const creds = opts.tls
    ? grpc.credentials.createSsl(opts.tlsCert ? Buffer.from(opts.tlsCert) : undefined)
    : grpc.credentials.createInsecure();
  const pkg = loadSwapServerProto();
  const method = (service: string, name: string) =>
    (pkg[`looprpc.${service}`] as unknown as Record<string, MethodDefinition<Msg, Msg>>)[name];
  const newAddress = method("StaticAddressServer", "ServerNewAddress");
  const fetchL402 = method("SwapServer", "FetchL402");
  const termsDef = method("SwapServer", "LoopInTerms");
  const probeDef = method("SwapServer", "Probe");
  const quoteDef = method("SwapServer", "LoopInQuote");
  const subscribeDef = method("SwapServer", "SubscribeNotifications");
  const loopInDef = method("StaticAddressServer", "ServerStaticAddressLoopIn");
  const htlcSigsDef = method("StaticAddressServer", "PushStaticAddressHtlcSigs");
  const sweeplessDef = method("StaticAddressServer", "PushStaticAddressSweeplessSigs");
  const agent = (initiator?: string) =>
    userAgent({ commit: opts.commit, initiator: initiator ?? opts.initiator });
  const bare = host.replace(/^\[|\]$/g, "");
  const isIp = /^[0-9.]+$/.test(bare) || bare.includes(":");
  const serverName = opts.tlsServerName ?? (isIp ? "localhost" : bare);
  const channelOptions = {
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
    ...(opts.tls
      ? { "grpc.ssl_target_name_override": serverName, "grpc.default_authority": serverName }
      : {}),
  };
  // The channel lives only while a call is in flight: the first call opens it, the end of the last one
  // closes it (the next call connects again). An HTTP/2 GOAWAY reaching a grpc-js session with no call in
  // flight can abort Deno 2.9.6 (denoland/deno#36788, lnd/README.md "Known limitation"); a session that
  // is closed as soon as it is idle never receives one, and an open call was never seen to trip it.
  let channel: grpc.Client | undefined;
  let inFlight = 0;
  const acquire = (): grpc.Client => {
    channel ??= new grpc.Client(opts.address, creds, channelOptions);
    inFlight++;
    return channel;
  };
  const release = () => {
    if (--inFlight > 0 || !channel) return;
    channel.close();
    channel = undefined;
  };
  const l402 = new L402Client({ ...opts.l402, network: opts.network });
  let closed = false;
  const streams = new Set<grpc.ClientReadableStream<Msg>>();

  const assertOpen = () => {
    if (closed) {
      throw new LoopkitError("swap_server_closed", `Swap server client for ${opts.address} is closed`);
    }
  };

  const unary = async (name: string, def: MethodDefinition<Msg, Msg>, request: Msg): Promise<Msg> => {
    assertOpen();
    try {
      return await l402.call(name, (credential, timeoutMs) =>
        new Promise<Msg>((resolve, reject) => {
          const md = new grpc.Metadata();
          if (credential) md.set(credential.key, credential.value);
          const ch = acquire();
          try {
            ch.makeUnaryRequest(
              def.path,
              def.requestSerialize,
              def.responseDeserialize,
              request,
              md,
              { deadline: Date.now() + timeoutMs },
              (err, res) => {
                release();
                if (err) reject(err);
                else resolve(res ?? {});
              },
            );
          } catch (err) {
            release(); // not sent
            throw err;
          }
        }));
    } catch (err) {
      throw mapGrpcError(err, name, opts.address);
    }
  };

  return {
    address: opts.address,
    l402,
    async ensurePaidToken() {
      await unary("FetchL402", fetchL402, {});
    },
    async serverNewAddress(clientPubkey) {
      validateClientPubkey(clientPubkey);
      const res = await unary("ServerNewAddress", newAddress, {
        protocolVersion: STATIC_ADDRESS_PROTOCOL_V0,
        clientKey: Buffer.from(clientPubkey),
      });
      if (res === null || typeof res !== "object") {
        throw new LoopkitError(
          "invalid_static_address",
          "staticAddress: missing server new address response",
        );
      }
      const p = res.params as { serverKey?: Uint8Array | null; expiry?: number | null } | null | undefined;
      if (p === null || p === undefined) return null;
      return {
        serverKey: p.serverKey ? Uint8Array.from(p.serverKey) : p.serverKey ?? null,
        expiry: p.expiry ?? null,
      };
    },
    async loopInTerms(o = {}) {
      const m = "LoopInTerms";
      const res = await unary(m, termsDef, {
        protocolVersion: PROTOCOL_VERSION_MUSIG2,
        userAgent: agent(o.initiator),
      });
      return {
        minSwapAmountSat: u64(m, "min_swap_amount", res.minSwapAmount),
        maxSwapAmountSat: u64(m, "max_swap_amount", res.maxSwapAmount),
      };
    },
    async probe(req) {
      assertAmount("amt", req.amtSat);
      assertBytes("target", req.target, 33);
      await unary("Probe", probeDef, {
        protocolVersion: PROTOCOL_VERSION_MUSIG2,
        amt: req.amtSat.toString(),
        target: Buffer.from(req.target),
        lastHop: optionalKey("last hop", req.lastHop),
        routeHints: wireRouteHints(req.routeHints),
      });
    },
    async loopInQuote(req) {
      assertAmount("amt", req.amtSat);
      assertBytes("pubkey", req.pubkey, 33);
      assertUint32("num deposits", req.numDeposits);
      const m = "LoopInQuote";
      const res = await unary(m, quoteDef, {
        amt: req.amtSat.toString(),
        protocolVersion: PROTOCOL_VERSION_MUSIG2,
        pubkey: Buffer.from(req.pubkey),
        lastHop: optionalKey("last hop", req.lastHop),
        routeHints: wireRouteHints(req.routeHints),
        userAgent: agent(req.initiator),
        numStaticAddressDeposits: req.numDeposits,
        fast: req.fast,
      });
      if (typeof res.swapFee !== "string" || !/^-?\d{1,19}$/.test(res.swapFee)) {
        throw badResponse(m, `swap_fee "${res.swapFee}" is not an integer`);
      }
      const swapFeeSat = BigInt(res.swapFee);
      if (swapFeeSat < 0n) throw badResponse(m, `swap_fee ${swapFeeSat} is negative`);
      return { swapFeeSat, cltvDelta: Number(res.cltvDelta ?? 0) };
    },
    async serverStaticAddressLoopIn(req) {
      assertBytes("htlc client pubkey", req.htlcClientPubKey, 33);
      assertBytes("swap hash", req.swapHash, 32);
      if (req.depositOutpoints.length === 0) {
        throw new RangeError("swap server request: no deposit outpoints");
      }
      for (const op of req.depositOutpoints) {
        if (!/^[0-9a-f]{64}:\d{1,10}$/.test(op)) {
          throw new RangeError(`swap server request: outpoint "${op}"`);
        }
      }
      if (!req.swapInvoice) throw new RangeError("swap server request: swap invoice is empty");
      assertUint32("payment timeout seconds", req.paymentTimeoutSeconds);
      assertAmount("amount", req.amountSat, true);
      const m = "ServerStaticAddressLoopIn";
      const res = await unary(m, loopInDef, {
        htlcClientPubKey: Buffer.from(req.htlcClientPubKey),
        swapHash: Buffer.from(req.swapHash),
        depositOutpoints: [...req.depositOutpoints],
        swapInvoice: req.swapInvoice,
        lastHop: optionalKey("last hop", req.lastHop),
        protocolVersion: STATIC_ADDRESS_PROTOCOL_V0,
        userAgent: agent(req.initiator),
        paymentTimeoutSeconds: req.paymentTimeoutSeconds,
        amount: req.amountSat.toString(),
        fast: req.fast,
      });
      return {
        htlcServerPubKey: copy(res.htlcServerPubKey),
        htlcExpiry: Number(res.htlcExpiry ?? 0),
        standard: serverSigningInfo(m, "standard_htlc_info", res.standardHtlcInfo),
        high: serverSigningInfo(m, "high_fee_htlc_info", res.highFeeHtlcInfo),
        extreme: serverSigningInfo(m, "extreme_fee_htlc_info", res.extremeFeeHtlcInfo),
      };
    },
    async pushStaticAddressHtlcSigs(req) {
      assertBytes("swap hash", req.swapHash, 32);
      await unary("PushStaticAddressHtlcSigs", htlcSigsDef, {
        swapHash: Buffer.from(req.swapHash),
        standardHtlcInfo: clientSigningInfo("standard", req.standard),
        highFeeHtlcInfo: clientSigningInfo("high", req.high),
        extremeFeeHtlcInfo: clientSigningInfo("extreme", req.extreme),
      });
    },
    async pushStaticAddressSweeplessSigs(req) {
      assertBytes("swap hash", req.swapHash, 32);
      assertBytes("txid", req.txid, 32);
      const signingInfo: Record<string, Msg> = {};
      for (const [op, info] of req.signingInfo) {
        if (!/^[0-9a-f]{64}:\d{1,10}$/.test(op)) {
          throw new RangeError(`swap server request: outpoint "${op}"`);
        }
        assertBytes(`nonce of ${op}`, info.nonce, 66);
        assertBytes(`sig of ${op}`, info.sig, 32);
        signingInfo[op] = { nonce: Buffer.from(info.nonce), sig: Buffer.from(info.sig) };
      }
      await unary("PushStaticAddressSweeplessSigs", sweeplessDef, {
        swapHash: Buffer.from(req.swapHash),
        txid: Buffer.from(req.txid),
        signingInfo,
        errorMessage: req.errorMessage ?? "",
      });
    },
    async subscribeNotifications(o) {
      assertOpen();
      const m = "SubscribeNotifications";
      if (o.signal.aborted) return;
      const token = await l402.store.currentToken();
      if (!token?.paid) {
        throw new LoopkitError(
          "l402_no_paid_token",
          `${m} needs a paid L402 token and there is ${
            token ? `only the pending token "${token.path}"` : "none"
          }: ` +
            `a paid swap-server call (e.g. a quote) obtains one; loopkit never pays from a stream`,
        );
      }
      const problem = paidTokenProblem({
        paymentHash: token.paymentHash,
        preimage: token.preimage,
        identifierPaymentHash: token.identifier.paymentHash,
      });
      if (problem) {
        throw new LoopkitError(
          "l402_token_invalid",
          `L402 token file "${token.path}" cannot be used: ${problem}`,
        );
      }
      const credential = credentialFor(token);
      assertOpen(); // close() may have run while the token was read
      if (o.signal.aborted) return;
      const md = new grpc.Metadata();
      md.set(credential.key, credential.value);
      const call = acquire().makeServerStreamRequest(
        subscribeDef.path,
        subscribeDef.requestSerialize,
        subscribeDef.responseDeserialize,
        { version: LISTENER_VERSION_V1 },
        md,
        {},
      );
      streams.add(call);
      await new Promise<void>((resolve, reject) => {
        let settled = false;
        let chain: Promise<void> = Promise.resolve();
        const onAbort = () => call.cancel();
        const finish = (err?: unknown) => {
          if (settled) return;
          settled = true;
          o.signal.removeEventListener("abort", onAbort);
          streams.delete(call);
          release();
          if (err === undefined) resolve();
          else reject(err);
        };
        o.signal.addEventListener("abort", onAbort, { once: true });
        call.on("data", (msg: Msg) => {
          call.pause(); // one notification at a time; the next waits for the handler
          chain = chain.then(async () => {
            if (settled) return;
            try {
              await o.onNotification(notification(msg));
            } catch (err) {
              call.cancel();
              finish(err);
              return;
            }
            call.resume();
          });
        });
        call.on("end", () => void chain.then(() => finish()));
        call.on("error", (err: GrpcErrorLike) => {
          void chain.then(() => {
            if ((o.signal.aborted || closed) && err.code === grpc.status.CANCELLED) return finish();
            if (isPaymentRequired(err)) {
              return finish(
                new LoopkitError(
                  "l402_rejected",
                  `The swap server refused the paid L402 token ${credential.tokenId} from "${token.path}" on ${m}: ${
                    err.details ?? ""
                  }; loopkit never replaces a paid token`,
                  ExitCode.Failure,
                  { cause: err },
                ),
              );
            }
            finish(mapGrpcError(err, m, opts.address));
          });
        });
      });
    },
    close() {
      if (closed) return;
      closed = true;
      for (const call of streams) call.cancel(); // their subscribeNotifications() calls resolve
      channel?.close(); // unary calls still open fail; their release() finds no channel
      channel = undefined;
    },
  };
}
