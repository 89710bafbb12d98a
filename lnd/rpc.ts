/**
 * Low-level gRPC access to lnd: loads lnd's own `.proto` files, opens one TLS channel with the
 * macaroon attached to every call, and exposes the raw service clients plus two promise helpers.
 *
 * Higher layers use {@linkcode GrpcLndClient} (`lnd/grpc_client.ts`); this module is for code that
 * needs an RPC the typed client does not wrap (the regtest harness: `GenSeed`/`InitWallet`,
 * funding, channels).
 *
 * Message conventions (the `@grpc/proto-loader` options used here, fixed for the whole project):
 * - field names exactly as in the `.proto` files (`keepCase`), e.g. `raw_key_bytes`, `key_loc`;
 * - 64-bit integers (`int64`/`uint64`) arrive as decimal **strings**; send them as strings or
 *   numbers; convert with `BigInt(x)`, never through `Number` for amounts;
 * - `bytes` fields arrive as `Buffer` (a `Uint8Array`); send `Uint8Array`/`Buffer`;
 * - enums arrive as their names (`"SUCCEEDED"`); send names or numbers;
 * - unset scalar fields are filled with their defaults, unset message fields are `null`;
 * - a set `oneof` is named by a virtual field (`event: "conf"`).
 *
 * Permissions: `--allow-read` (proto files), `--allow-net`, `--allow-env` (optional
 * `LOOPKIT_LND_PROTO_DIR`).
 *
 * @example Initialise a fresh lnd wallet (regtest harness)
 * ```ts ignore
 * const rpc = openLndRpc({ rpcServer: "localhost:10009", tlsCert: await Deno.readFile(certPath) });
 * try {
 *   const seed = await unary<{ cipher_seed_mnemonic: string[] }>(rpc.walletUnlocker, "GenSeed", {});
 *   await unary(rpc.walletUnlocker, "InitWallet", {
 *     wallet_password: new TextEncoder().encode("password"),
 *     cipher_seed_mnemonic: seed.cipher_seed_mnemonic,
 *   });
 * } finally {
 *   rpc.close();
 * }
 * ```
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Buffer } from "node:buffer";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { usageError } from "../core/errors.ts";

/** Environment variable that overrides where lnd's `.proto` files are read from. */
export const PROTO_DIR_ENV = "LOOPKIT_LND_PROTO_DIR";

/** The `.proto` files loaded (all from the `lightning` npm package, `grpc/protos/`). */
export const LND_PROTO_FILES = [
  "lightning.proto",
  "walletunlocker.proto",
  "stateservice.proto",
  "walletkit.proto",
  "signer.proto",
  "chainnotifier.proto",
  "router.proto",
  "invoices.proto",
] as const;

/** Default timeout for a unary call, in milliseconds. */
export const DEFAULT_DEADLINE_MS = 30_000;

/** lnd's own gRPC message size limit (200 MiB, as lncli uses). */
const MAX_MESSAGE_BYTES = 200 * 1024 * 1024;

/** A generated gRPC client (methods are looked up by their `.proto` name, e.g. `"GetInfo"`). */
export type RpcClient = grpc.Client;

/** Options of {@linkcode openLndRpc}. */
export interface LndRpcOptions {
  /** lnd's gRPC endpoint, `host:port` (IPv6 as `[::1]:10009`), the `--rpcserver` flag. */
  rpcServer: string;
  /** lnd's `tls.cert`, PEM bytes (the file content). */
  tlsCert: Uint8Array;
  /**
   * Raw binary macaroon (the `.macaroon` file content). Sent hex-encoded as metadata `macaroon`
   * on every call. Omit only for calls lnd accepts without one (`WalletUnlocker`, `State`).
   */
  macaroon?: Uint8Array;
  /**
   * TLS server name checked against the certificate. Default: the host of `rpcServer`, or
   * `"localhost"` when that host is an IP literal (Deno's TLS refuses an IP as server name; lnd's
   * certificate always lists `localhost`).
   */
  tlsServerName?: string;
}

/** The raw service clients of one lnd connection; all share one channel. */
export interface LndRpc {
  /** `lnrpc.Lightning`. */
  lightning: RpcClient;
  /** `lnrpc.WalletUnlocker` (GenSeed, InitWallet, UnlockWallet). */
  walletUnlocker: RpcClient;
  /** `lnrpc.State` (GetState, SubscribeState). */
  state: RpcClient;
  /** `walletrpc.WalletKit`. */
  walletKit: RpcClient;
  /** `signrpc.Signer`. */
  signer: RpcClient;
  /** `chainrpc.ChainNotifier`. */
  chainNotifier: RpcClient;
  /** `routerrpc.Router`. */
  router: RpcClient;
  /** `invoicesrpc.Invoices`. */
  invoices: RpcClient;
  /** The endpoint as given, for error messages. */
  rpcServer: string;
  /**
   * What a raw HTTP/2 call needs to reach the same lnd (`lnd/unspent_stream.ts`: the full-wallet ListUnspent
   * decoded as it arrives); absent on connections made without it.
   */
  endpoint?: { rpcServer: string; tlsCert: Uint8Array; tlsServerName: string; macaroon?: Uint8Array };
  /** Cancels calls still open (they fail with CANCELLED) and closes the channel. Idempotent. */
  close(): void;
}

/** Options of {@linkcode unary} and {@linkcode serverStream}. */
export interface CallOptions {
  /** Call deadline in milliseconds from now. Default {@linkcode DEFAULT_DEADLINE_MS} for unary calls, none for streams. */
  deadlineMs?: number;
}

let cachedPackage: grpc.GrpcObject | undefined;
let cachedDefinition: protoLoader.PackageDefinition | undefined;

/**
 * Finds the directory holding lnd's `.proto` files: `$LOOPKIT_LND_PROTO_DIR` if set, else
 * `grpc/protos/` of the `lightning` npm package (located through `import.meta.resolve`).
 *
 * @throws {LoopkitError} `lnd_protos_missing` (exit 2) when no directory holds `lightning.proto`
 */
export function lndProtoDir(): string {
  let override: string | undefined;
  try {
    override = Deno.env.get(PROTO_DIR_ENV);
  } catch {
    override = undefined; // no --allow-env: fall back to the package
  }
  if (override) {
    if (!existsSync(join(override, "lightning.proto"))) {
      throw usageError(
        `Cannot load lnd's protocol files: ${PROTO_DIR_ENV}="${override}" has no lightning.proto`,
        "lnd_protos_missing",
      );
    }
    return override;
  }
  let dir: string | undefined;
  try {
    const entry = import.meta.resolve("lightning");
    if (entry.startsWith("file:")) dir = packageDir(dirname(fileURLToPath(entry)), "lightning");
  } catch {
    dir = undefined;
  }
  const protos = dir && join(dir, "grpc", "protos");
  if (!protos || !existsSync(join(protos, "lightning.proto"))) {
    throw usageError(
      `Cannot load lnd's protocol files: the npm package "lightning" was not found; ` +
        `run "deno install" or set ${PROTO_DIR_ENV} to a directory holding lightning.proto`,
      "lnd_protos_missing",
    );
  }
  return protos;
}

/** Walks up from `start` to the directory whose package.json is named `name`. */
function packageDir(start: string, name: string): string | undefined {
  for (let dir = start;; dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, "utf8")).name === name) return dir;
      } catch {
        // unreadable package.json: keep walking
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Loads (once per process) lnd's services from its `.proto` files.
 * @returns the package definition, for servers (`tests/fakelnd/`) as well as clients
 */
export function loadLndProtos(): { definition: protoLoader.PackageDefinition; pkg: grpc.GrpcObject } {
  if (!cachedDefinition || !cachedPackage) {
    const dir = lndProtoDir();
    cachedDefinition = protoLoader.loadSync([...LND_PROTO_FILES], {
      includeDirs: [dir],
      keepCase: true,
      longs: String,
      enums: String,
      bytes: Buffer,
      defaults: true,
      oneofs: true,
    });
    cachedPackage = grpc.loadPackageDefinition(cachedDefinition);
  }
  return { definition: cachedDefinition, pkg: cachedPackage };
}

/** Looks up a service constructor such as `lnrpc.Lightning` in the loaded package. */
export function lndService(name: string): grpc.ServiceClientConstructor {
  const { pkg } = loadLndProtos();
  let node: unknown = pkg;
  for (const part of name.split(".")) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== "function") throw new Error(`lnd service "${name}" is not in the loaded protos`);
  return node as grpc.ServiceClientConstructor;
}

/**
 * Splits `host:port` (`[v6]:port` for IPv6).
 * @throws {LoopkitError} `config_invalid` (exit 2) naming `--rpcserver`
 */
export function parseRpcServer(rpcServer: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]\s]+)):(\d{1,5})$/.exec(rpcServer);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw usageError(`Invalid --rpcserver "${rpcServer}": expected host:port`, "config_invalid");
  }
  return { host: m[1] ?? m[2], port };
}

/** True for an IPv4 or IPv6 literal. */
function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
}

/**
 * Opens a TLS gRPC channel to lnd and returns its service clients. Does not connect yet: the
 * first call does (fail fast: a call made while lnd is unreachable fails with UNAVAILABLE, or
 * DEADLINE_EXCEEDED when the host does not answer before the call's deadline).
 *
 * @throws {LoopkitError} `config_invalid` (exit 2) for a malformed `rpcServer`;
 *   `lnd_protos_missing` (exit 2) when the `.proto` files cannot be found
 */
export function openLndRpc(opts: LndRpcOptions): LndRpc {
  const { host, port } = parseRpcServer(opts.rpcServer);
  const target = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  const serverName = opts.tlsServerName ?? (isIpLiteral(host) ? "localhost" : host);

  let creds = grpc.credentials.createSsl(Buffer.from(opts.tlsCert));
  if (opts.macaroon) {
    const macaroonHex = Buffer.from(opts.macaroon).toString("hex");
    const callCreds = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
      const md = new grpc.Metadata();
      md.set("macaroon", macaroonHex);
      callback(null, md);
    });
    creds = grpc.credentials.combineChannelCredentials(creds, callCreds);
  }
  const channel = new grpc.Channel(target, creds, {
    "grpc.ssl_target_name_override": serverName,
    "grpc.default_authority": serverName,
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  });
  // Every call registers itself until its status arrives, so close() can cancel what is still
  // open (grpc-js' Channel.close() leaves active calls running until their deadlines).
  const active = new Set<grpc.InterceptingCall>();
  const tracker: grpc.Interceptor = (options, nextCall) => {
    const call: grpc.InterceptingCall = new grpc.InterceptingCall(nextCall(options), {
      start(metadata, _listener, next) {
        next(metadata, {
          onReceiveStatus(status, nextStatus) {
            active.delete(call);
            nextStatus(status);
          },
        });
      },
    });
    active.add(call);
    return call;
  };
  const make = (name: string) => {
    const Ctor = lndService(name);
    return new Ctor(target, grpc.credentials.createInsecure(), {
      channelOverride: channel,
      interceptors: [tracker],
    });
  };
  let closed = false;
  return {
    lightning: make("lnrpc.Lightning"),
    walletUnlocker: make("lnrpc.WalletUnlocker"),
    state: make("lnrpc.State"),
    walletKit: make("walletrpc.WalletKit"),
    signer: make("signrpc.Signer"),
    chainNotifier: make("chainrpc.ChainNotifier"),
    router: make("routerrpc.Router"),
    invoices: make("invoicesrpc.Invoices"),
    rpcServer: opts.rpcServer,
    endpoint: {
      rpcServer: target,
      tlsCert: opts.tlsCert,
      tlsServerName: serverName,
      macaroon: opts.macaroon,
    },
    close() {
      if (closed) return;
      closed = true;
      for (const call of [...active]) call.cancelWithStatus(grpc.status.CANCELLED, "lnd connection closed");
      active.clear();
      channel.close();
    },
  };
}

/** The method of `client` named as in the `.proto` file, bound to the client. */
function method(client: RpcClient, name: string): (...args: unknown[]) => unknown {
  const fn = (client as unknown as Record<string, unknown>)[name];
  if (typeof fn !== "function") throw new TypeError(`gRPC client has no method "${name}"`);
  return (fn as (...args: unknown[]) => unknown).bind(client);
}

/**
 * Calls a unary RPC.
 *
 * @param client one of the {@linkcode LndRpc} clients
 * @param name method name as in the `.proto` file, e.g. `"GetInfo"`
 * @param request the request message (see the module doc for field conventions)
 * @param opts deadline (default {@linkcode DEFAULT_DEADLINE_MS})
 * @returns the response message
 * @throws {grpc.ServiceError} unchanged (`code`, `details`, `metadata`); map it with
 *   `lndError` from `lnd/errors.ts`
 */
export function unary<Res = Record<string, unknown>>(
  client: RpcClient,
  name: string,
  request: object,
  opts: CallOptions = {},
): Promise<Res> {
  const fn = method(client, name);
  const deadline = Date.now() + (opts.deadlineMs ?? DEFAULT_DEADLINE_MS);
  return new Promise<Res>((resolve, reject) => {
    fn(request, new grpc.Metadata(), { deadline }, (err: grpc.ServiceError | null, res: Res) => {
      if (err) reject(err);
      else resolve(res);
    });
  });
}

/**
 * Calls a server-streaming RPC and yields its messages. Leaving the loop early (break, throw)
 * cancels the call. Ends when the server ends the stream.
 *
 * @param client one of the {@linkcode LndRpc} clients
 * @param name method name as in the `.proto` file, e.g. `"RegisterConfirmationsNtfn"`
 * @param request the request message
 * @param opts optional deadline for the whole stream (none by default)
 * @throws {grpc.ServiceError} unchanged, from the iteration (DEADLINE_EXCEEDED when the deadline passes)
 */
export async function* serverStream<Res = Record<string, unknown>>(
  client: RpcClient,
  name: string,
  request: object,
  opts: CallOptions = {},
): AsyncGenerator<Res, void, undefined> {
  const fn = method(client, name);
  const callOpts = opts.deadlineMs === undefined ? {} : { deadline: Date.now() + opts.deadlineMs };
  const call = fn(request, new grpc.Metadata(), callOpts) as grpc.ClientReadableStream<Res>;
  let done = false;
  try {
    for await (const msg of call) yield msg as Res;
    done = true;
  } finally {
    if (!done) {
      call.on("error", () => {}); // the CANCELLED status that cancel() produces
      call.cancel();
    }
  }
}
