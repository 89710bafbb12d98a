/**
 * The LOCAL swap server: a test peer speaking loopkit's wire-compatible subset of Loop's swap
 * server protocol (`proto/swapserver.proto`, package `looprpc`) on 127.0.0.1, behind an L402 gate
 * that behaves like Aperture in front of Loop's server (project decision 7). It is not a mock of
 * loopkit code: the gate mints and verifies macaroons with the npm `macaroon` package (not
 * core/l402), and invoices come from an injected {@linkcode InvoiceSource} (bob's lnd in regtest,
 * {@linkcode InProcessLightning} in unit tests).
 *
 * The L402 gate (Aperture `proxy` + `mint`):
 * - a call without a valid credential gets a trailers-only error, gRPC status INTERNAL (13),
 *   message `payment required`, and two `www-authenticate` values, first
 *   `LSAT macaroon="<base64>", invoice="<bolt11>"` then the same with `L402`; the macaroon is
 *   minted with the server's root key, location `lsat`, identifier = version 0 ‖ payment hash ‖
 *   random token ID, and a first-party caveat `services=loop:0`; the invoice is a fresh one from
 *   the invoice source for `priceSat`;
 * - accepted credentials: metadata `macaroon` (or `token`) = hex of the macaroon with a
 *   `preimage=<hex>` caveat, or `authorization: L402|LSAT <base64>:<preimage hex>`; the signature
 *   chain must verify under the root key, `SHA-256(preimage)` must equal the identifier's payment
 *   hash and the `services` caveat must name `loop`;
 * - an invalid credential gets a fresh challenge, as Aperture does (or, with
 *   `misbehave.rejectInvalidCredential = "unauthenticated"`, status UNAUTHENTICATED).
 *
 * Implemented methods: `StaticAddressServer.ServerNewAddress` (server key from its own BIP-32 seed
 * at m/0/<n>, one fresh key per request, CSV expiry 14400 by default), `SwapServer.FetchL402` (empty
 * answer once paid), and the static loop-in of `./loopin.ts`: `LoopInTerms`, `LoopOutTerms`,
 * `LoopInQuote`, `Probe`, `SubscribeNotifications`, `ServerStaticAddressLoopIn`,
 * `PushStaticAddressHtlcSigs`, `PushStaticAddressSweeplessSigs` (HTLC keys at m/1/<n>, sweep wallet
 * key m/2/0). Loop-ins need a `chain` (./chain.ts) and, to be paid, a `payer`.
 *
 * Needs `--allow-net` (127.0.0.1), and for TLS `--allow-run=openssl --allow-read --allow-write`.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { HDKey } from "@scure/bip32";
import { base64, hex } from "@scure/base";
import * as macaroonLib from "macaroon";
import { Buffer } from "node:buffer";
import { loadSwapServerProto } from "../../proto/mod.ts";
import { generateTestCert } from "../fakelnd/tls.ts";
import { startTcpRelay, type TcpRelay } from "../tcp_relay.ts";
import type { InvoiceSource } from "./lightning.ts";
import type { NetworkName } from "../../core/staticaddr/network.ts";
import type { ChainSource } from "./chain.ts";
import { type InvoicePayer, type IssuedAddress, type LoopInKnobs, LoopInServer } from "./loopin.ts";
import { StatusError } from "./status.ts";

/** Default CSV expiry the server hands out (blocks; what Loop's regtest server uses). */
export const DEFAULT_SERVER_EXPIRY = 14400;
/** Default L402 price, sat. */
export const DEFAULT_L402_PRICE_SAT = 10n;
/** Macaroon location Aperture's mint uses. */
export const APERTURE_MACAROON_LOCATION = "lsat";
/** The service caveat the server mints and requires. */
export const LOOP_SERVICES_CAVEAT = "services=loop:0";

/** Deliberate misbehaviour, for client tests. */
export interface SwapServerMisbehaviour {
  /** Answer a 33-byte server key with prefix 0x02 whose x is not on the curve. */
  badServerKey?: boolean;
  /** Answer an empty server key. */
  emptyServerKey?: boolean;
  /** Answer a 33-byte key with prefix 0x04 (not compressed). */
  uncompressedPrefix?: boolean;
  /** Answer without `params`. */
  missingParams?: boolean;
  /** Answer this expiry instead of the configured one (e.g. 0, 28801, 0x80000000). */
  expiry?: number;
  /** How an invalid credential is answered: a fresh challenge (Aperture, default) or UNAUTHENTICATED. */
  rejectInvalidCredential?: "challenge" | "unauthenticated";
}

/** Options of {@linkcode startSwapServer}. */
export interface StartSwapServerOptions {
  /** Where challenge invoices come from. */
  invoices: InvoiceSource;
  /** L402 price, sat (default {@linkcode DEFAULT_L402_PRICE_SAT}). */
  priceSat?: bigint;
  /** CSV expiry of new addresses, blocks (default {@linkcode DEFAULT_SERVER_EXPIRY}). */
  expiry?: number;
  /** BIP-32 seed of the server keys (16–64 bytes; default random). */
  seed?: Uint8Array;
  /** 32-byte macaroon root key (default random). */
  rootKey?: Uint8Array;
  /** Serve TLS with a fresh self-signed certificate (default plaintext). */
  tls?: boolean;
  /** Deliberate misbehaviour. */
  misbehave?: SwapServerMisbehaviour;
  /** Network of the swap invoices the loop-in accepts (default regtest). */
  network?: NetworkName;
  /** The chain the loop-in checks deposits against and publishes to; without it loop-ins are refused. */
  chain?: ChainSource;
  /** Who pays the swap invoices (bob's lnd in regtest); without it no swap is paid. */
  payer?: InvoicePayer;
  /** Loop-in terms, fees and misbehaviour (see {@linkcode LoopInKnobs}); change later with `loopIn.setKnobs`. */
  loopIn?: Partial<LoopInKnobs>;
  /** pkScript the sweepless sweep pays (default P2TR of the server's key m/2/0). */
  sweepPkScript?: Uint8Array;
}

/** A `ServerNewAddress` the server answered. */
export interface NewAddressRecord {
  /** Client key as sent. */
  clientKey: Uint8Array;
  /** Server key answered (possibly malformed under misbehaviour). */
  serverKey: Uint8Array;
  /** BIP-32 index of the server key (m/0/<index>). */
  keyIndex: number;
  /** Expiry answered. */
  expiry: number;
  /** Token ID (hex) of the credential used. */
  tokenId: string;
}

/** What the server saw. */
export interface SwapServerCalls {
  /** Challenges issued (= invoices requested from the invoice source). */
  challenges: number;
  /** Calls that carried a credential the gate accepted. */
  paidCalls: number;
  /** Calls that carried a credential the gate refused. */
  rejectedCredentials: number;
  /** Calls per method (`Service/Method`), counted before the gate. */
  methods: Record<string, number>;
  /** Token IDs (hex) of every accepted credential. */
  tokenIds: Set<string>;
  /** Every answered `ServerNewAddress`. */
  newAddresses: NewAddressRecord[];
}

/** A running local swap server. */
export interface LocalSwapServer {
  /** `127.0.0.1:<port>`. */
  address: string;
  /** True when serving TLS. */
  tls: boolean;
  /** The certificate (PEM) when serving TLS. */
  tlsCertPem?: Uint8Array;
  /** The macaroon root key. */
  rootKey: Uint8Array;
  /** What the server saw. */
  calls: SwapServerCalls;
  /** The server's public key at BIP-32 index `i` (m/0/i), 33 bytes. */
  serverKeyAt(i: number): Uint8Array;
  /** Changes the misbehaviour for later calls. */
  setMisbehaviour(m: SwapServerMisbehaviour): void;
  /** The static loop-in: knobs, swap table, records, signed HTLC transactions, sweeps. */
  loopIn: LoopInServer;
  /**
   * Drops every client connection (no HTTP/2 GOAWAY: `tests/tcp_relay.ts`), ends open calls, removes the TLS
   * temp directory. Idempotent.
   */
  stop(): Promise<void>;
}

// deno-lint-ignore no-explicit-any
type Msg = Record<string, any>;

/** 33 bytes, prefix 0x02, with an x for which x³ + 7 has no square root (not a curve point). */
function offCurveKey(): Uint8Array {
  for (let x = 1;; x++) {
    const key = new Uint8Array(33);
    key[0] = 0x02;
    new DataView(key.buffer).setUint32(29, x);
    try {
      secp256k1.Point.fromBytes(key);
    } catch {
      return key;
    }
  }
}

function metadataString(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key);
  if (v.length === 0) return undefined;
  return typeof v[0] === "string" ? v[0] : new TextDecoder().decode(v[0]);
}

const AUTHORIZATION_RE = /(LSAT|L402) (.*?):([a-f0-9]{64})/;

/**
 * Starts the local swap server on a free 127.0.0.1 port.
 *
 * @example
 * ```ts ignore
 * const ln = new InProcessLightning("regtest");
 * const server = await startSwapServer({ invoices: ln });
 * try {
 *   // openSwapServer({ address: server.address, tls: false, network: "regtest", ... })
 * } finally {
 *   await server.stop();
 * }
 * ```
 */
export async function startSwapServer(opts: StartSwapServerOptions): Promise<LocalSwapServer> {
  const priceSat = opts.priceSat ?? DEFAULT_L402_PRICE_SAT;
  const expiry = opts.expiry ?? DEFAULT_SERVER_EXPIRY;
  const rootKey = opts.rootKey ?? crypto.getRandomValues(new Uint8Array(32));
  const master = HDKey.fromMasterSeed(opts.seed ?? crypto.getRandomValues(new Uint8Array(32)));
  const hd = master.deriveChild(0);
  const htlcHd = master.deriveChild(1);
  let misbehave: SwapServerMisbehaviour = { ...opts.misbehave };
  let nextKeyIndex = 0;
  const calls: SwapServerCalls = {
    challenges: 0,
    paidCalls: 0,
    rejectedCredentials: 0,
    methods: {},
    tokenIds: new Set(),
    newAddresses: [],
  };
  const serverKeyAt = (i: number) => hd.deriveChild(i).publicKey!;
  const sweepKey = master.deriveChild(2).deriveChild(0).publicKey!;
  const loopIn = new LoopInServer({
    network: opts.network ?? "regtest",
    chain: opts.chain,
    payer: opts.payer,
    addressesForToken: (tokenId): IssuedAddress[] =>
      calls.newAddresses.filter((a) => a.tokenId === tokenId).map((a) => ({
        clientKey: a.clientKey,
        serverKey: a.serverKey,
        keyIndex: a.keyIndex,
        expiry: a.expiry,
      })),
    staticServerPrivKey: (i) => hd.deriveChild(i).privateKey!,
    htlcKey: (i) => {
      const k = htlcHd.deriveChild(i);
      return { priv: k.privateKey!, pub: k.publicKey! };
    },
    sweepPkScript: opts.sweepPkScript ?? Uint8Array.of(0x51, 0x20, ...sweepKey.subarray(1)),
  }, opts.loopIn);

  const challenge = async (): Promise<StatusError> => {
    calls.challenges++;
    const { paymentRequest, paymentHash } = await opts.invoices.addInvoice(priceSat, "L402 token for loop");
    const id = new Uint8Array(66);
    id.set(paymentHash, 2);
    id.set(crypto.getRandomValues(new Uint8Array(32)), 34);
    const mac = macaroonLib.newMacaroon({
      identifier: id,
      location: APERTURE_MACAROON_LOCATION,
      rootKey,
      version: 2,
    });
    mac.addFirstPartyCaveat(LOOP_SERVICES_CAVEAT);
    const b64 = base64.encode(mac.exportBinary());
    const md = new grpc.Metadata();
    md.add("www-authenticate", `LSAT macaroon="${b64}", invoice="${paymentRequest}"`);
    md.add("www-authenticate", `L402 macaroon="${b64}", invoice="${paymentRequest}"`);
    return new StatusError(grpc.status.INTERNAL, "payment required", md);
  };

  /** Aperture `FromHeader` + `VerifyL402`; returns the token ID, or the reason for refusal. */
  const verify = (md: grpc.Metadata): { tokenId: string } | { reason: string } | null => {
    let macBytes: Uint8Array;
    let preimage: Uint8Array | undefined;
    const authorization = metadataString(md, "authorization");
    const macHex = metadataString(md, "token") ?? metadataString(md, "macaroon");
    try {
      if (authorization !== undefined) {
        const m = AUTHORIZATION_RE.exec(authorization);
        if (!m) return { reason: `invalid auth header format: ${authorization}` };
        macBytes = base64.decode(m[2]);
        preimage = hex.decode(m[3]);
      } else if (macHex !== undefined) {
        macBytes = hex.decode(macHex);
      } else {
        return null;
      }
    } catch (e) {
      return { reason: `cannot decode credential: ${(e as Error).message}` };
    }
    // deno-lint-ignore no-explicit-any
    let mac: any;
    try {
      mac = macaroonLib.importMacaroon(macBytes);
    } catch (e) {
      return { reason: `unable to unmarshal token: ${(e as Error).message}` };
    }
    const id: Uint8Array = mac.identifier;
    if (id.length < 66 || id[0] !== 0 || id[1] !== 0) return { reason: "unknown L402 identifier" };
    if (preimage === undefined) {
      for (const c of mac.caveats as { identifier: Uint8Array }[]) {
        const text = new TextDecoder().decode(c.identifier);
        if (text.startsWith("preimage=")) {
          try {
            preimage = hex.decode(text.slice("preimage=".length));
          } catch {
            return { reason: "hex decode of preimage failed" };
          }
          break;
        }
      }
      if (preimage === undefined) return { reason: "preimage caveat not found" };
    }
    if (preimage.length !== 32 || hex.encode(sha256(preimage)) !== hex.encode(id.subarray(2, 34))) {
      return { reason: "invalid preimage for the token's payment hash" };
    }
    try {
      mac.verify(rootKey, (cond: string) => {
        if (cond.startsWith("services=")) {
          const names = cond.slice("services=".length).split(",").map((s) => s.split(":")[0]);
          return names.includes("loop") ? null : `service not authorized: ${cond}`;
        }
        return null;
      });
    } catch (e) {
      return { reason: (e as Error).message };
    }
    return { tokenId: hex.encode(id.subarray(34, 66)) };
  };

  /** The gate: resolves to the token ID, or throws the status to answer. */
  const gate = async (md: grpc.Metadata): Promise<string> => {
    const v = verify(md);
    if (v === null) throw await challenge();
    if ("reason" in v) {
      calls.rejectedCredentials++;
      if (misbehave.rejectInvalidCredential === "unauthenticated") {
        throw new StatusError(grpc.status.UNAUTHENTICATED, `invalid L402 credential: ${v.reason}`);
      }
      throw await challenge();
    }
    calls.paidCalls++;
    calls.tokenIds.add(v.tokenId);
    return v.tokenId;
  };

  const toStatus = (err: unknown): Partial<grpc.StatusObject> =>
    err instanceof StatusError
      ? { code: err.code, details: err.details, metadata: err.metadata ?? new grpc.Metadata() }
      : { code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) };

  const unary =
    (name: string, fn: (req: Msg, tokenId: string) => Msg | Promise<Msg>) =>
    (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      calls.methods[name] = (calls.methods[name] ?? 0) + 1;
      (async () => fn(call.request, await gate(call.metadata)))().then(
        (res) => cb(null, res),
        (err) => {
          loopIn.noteRefusal(name, err);
          cb(toStatus(err), null);
        },
      );
    };

  const serverNewAddress = (req: Msg, tokenId: string): Msg => {
    if (req.protocolVersion !== 0) {
      throw new StatusError(
        grpc.status.INVALID_ARGUMENT,
        `unsupported protocol version ${req.protocolVersion}`,
      );
    }
    const clientKey = Uint8Array.from(req.clientKey ?? []);
    try {
      if (clientKey.length !== 33) throw new Error(`${clientKey.length} bytes`);
      secp256k1.Point.fromBytes(clientKey);
    } catch (e) {
      throw new StatusError(grpc.status.INVALID_ARGUMENT, `invalid client key: ${(e as Error).message}`);
    }
    const keyIndex = nextKeyIndex++;
    let serverKey: Uint8Array = serverKeyAt(keyIndex);
    if (misbehave.badServerKey) serverKey = offCurveKey();
    if (misbehave.emptyServerKey) serverKey = new Uint8Array(0);
    if (misbehave.uncompressedPrefix) serverKey = Uint8Array.from([0x04, ...serverKey.subarray(1)]);
    const answeredExpiry = misbehave.expiry ?? expiry;
    calls.newAddresses.push({ clientKey, serverKey, keyIndex, expiry: answeredExpiry, tokenId });
    if (misbehave.missingParams) return {};
    return { params: { serverKey: Buffer.from(serverKey), expiry: answeredExpiry } };
  };

  const pkg = grpc.loadPackageDefinition(loadSwapServerProto()) as unknown as {
    looprpc: Record<string, { service: grpc.ServiceDefinition }>;
  };
  const server = new grpc.Server();
  server.addService(pkg.looprpc.StaticAddressServer.service, {
    ServerNewAddress: unary("StaticAddressServer/ServerNewAddress", serverNewAddress),
    ServerStaticAddressLoopIn: unary(
      "StaticAddressServer/ServerStaticAddressLoopIn",
      (req, tokenId) => loopIn.serverStaticAddressLoopIn(req, tokenId),
    ),
    PushStaticAddressHtlcSigs: unary(
      "StaticAddressServer/PushStaticAddressHtlcSigs",
      (req, tokenId) => loopIn.pushHtlcSigs(req, tokenId),
    ),
    PushStaticAddressSweeplessSigs: unary(
      "StaticAddressServer/PushStaticAddressSweeplessSigs",
      (req, tokenId) => loopIn.pushSweeplessSigs(req, tokenId),
    ),
  });
  server.addService(pkg.looprpc.SwapServer.service, {
    LoopOutTerms: unary("SwapServer/LoopOutTerms", (req) => loopIn.loopOutTerms(req)),
    LoopInTerms: unary("SwapServer/LoopInTerms", (req) => loopIn.loopInTerms(req)),
    LoopInQuote: unary("SwapServer/LoopInQuote", (req, tokenId) => loopIn.loopInQuote(req, tokenId)),
    Probe: unary("SwapServer/Probe", (req, tokenId) => loopIn.probe(req, tokenId)),
    FetchL402: unary("SwapServer/FetchL402", () => ({})),
    SubscribeNotifications: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      const name = "SwapServer/SubscribeNotifications";
      calls.methods[name] = (calls.methods[name] ?? 0) + 1;
      gate(call.metadata).then(
        (tokenId) => {
          if (call.cancelled) return;
          loopIn.subscribe(call, tokenId);
        },
        (err) => call.emit("error", toStatus(err)),
      );
    },
  });

  let tlsDir: string | undefined;
  let certPem: Uint8Array | undefined;
  let relay: TcpRelay | undefined;
  let stopped = false;
  try {
    let creds: grpc.ServerCredentials;
    if (opts.tls) {
      tlsDir = await Deno.makeTempDir({ prefix: "loopkit-swapserver-" });
      const cert = await generateTestCert(tlsDir);
      certPem = cert.certPem;
      creds = grpc.ServerCredentials.createSsl(
        Buffer.from(cert.certPem),
        [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) }],
        false,
      );
    } else {
      creds = grpc.ServerCredentials.createInsecure();
    }
    const grpcPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", creds, (err, p) => err ? reject(err) : resolve(p))
    );
    // Clients reach the server through a TCP relay: stop() drops their connections instead of sending
    // them a GOAWAY, which can abort Deno 2.9.6 with an idle in-process client (denoland/deno#36788).
    relay = startTcpRelay(grpcPort);
    return {
      address: `127.0.0.1:${relay.port}`,
      tls: Boolean(opts.tls),
      tlsCertPem: certPem,
      rootKey,
      calls,
      serverKeyAt,
      setMisbehaviour(m) {
        misbehave = { ...m };
      },
      loopIn,
      async stop() {
        if (stopped) return;
        stopped = true;
        loopIn.stop();
        await relay?.close(); // clients see the connection drop, never a GOAWAY
        server.forceShutdown();
        if (tlsDir) await Deno.remove(tlsDir, { recursive: true }).catch(() => {});
      },
    };
  } catch (e) {
    loopIn.stop();
    await relay?.close();
    server.forceShutdown();
    if (tlsDir) await Deno.remove(tlsDir, { recursive: true }).catch(() => {});
    throw e;
  }
}
