/**
 * Typed client for Loop's swap server over gRPC, every call through L402 pay-and-retry
 * (spec/static-loop-in.md §1.3, §5; spec/static-address-and-deposits.md §3.2–§3.3).
 *
 * - One gRPC channel per client, TLS with the system roots by default (or a given certificate);
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
import { L402Client, type L402ClientOptions } from "../l402/client.ts";
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
  /** Closes the channel. Idempotent. */
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
  const bare = host.replace(/^\[|\]$/g, "");
  const isIp = /^[0-9.]+$/.test(bare) || bare.includes(":");
  const serverName = opts.tlsServerName ?? (isIp ? "localhost" : bare);
  const channel = new grpc.Client(opts.address, creds, {
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
    ...(opts.tls
      ? { "grpc.ssl_target_name_override": serverName, "grpc.default_authority": serverName }
      : {}),
  });
  const l402 = new L402Client({ ...opts.l402, network: opts.network });
  let closed = false;

  const unary = async (name: string, def: MethodDefinition<Msg, Msg>, request: Msg): Promise<Msg> => {
    if (closed) {
      throw new LoopkitError("swap_server_closed", `Swap server client for ${opts.address} is closed`);
    }
    try {
      return await l402.call(name, (credential, timeoutMs) =>
        new Promise<Msg>((resolve, reject) => {
          const md = new grpc.Metadata();
          if (credential) md.set(credential.key, credential.value);
          channel.makeUnaryRequest(
            def.path,
            def.requestSerialize,
            def.responseDeserialize,
            request,
            md,
            { deadline: Date.now() + timeoutMs },
            (err, res) => err ? reject(err) : resolve(res ?? {}),
          );
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
    close() {
      if (closed) return;
      closed = true;
      channel.close();
    },
  };
}
