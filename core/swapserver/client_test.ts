import { secp256k1 } from "@noble/curves/secp256k1.js";
import { hex } from "@scure/base";
import { join } from "node:path";
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../../tests/assert.ts";
import { exists } from "../../tests/fs.ts";
import { startTcpRelay } from "../../tests/tcp_relay.ts";
import { InProcessLightning, type InProcessPayer } from "../../tests/swapserver/lightning.ts";
import {
  DEFAULT_SERVER_EXPIRY,
  type LocalSwapServer,
  startSwapServer,
  type StartSwapServerOptions,
} from "../../tests/swapserver/server.ts";
import { ExitCode, LoopkitError } from "../errors.ts";
import { L402TokenStore } from "../l402/store.ts";
import { parseTokenFile } from "../l402/token_file.ts";
import type { AddressServer } from "../staticaddr/new_address.ts";
import { validateServerAddressParams } from "../staticaddr/script.ts";
import {
  LOOPKIT_VERSION,
  openSwapServer,
  type ServerNotification,
  swapServerAddress,
  type SwapServerClient,
  userAgent,
} from "./client.ts";
import * as grpc from "@grpc/grpc-js";
import { sha256 } from "@noble/hashes/sha2.js";
import { base64 } from "@scure/base";
import * as macaroonLib from "macaroon";
import { Buffer } from "node:buffer";
import { loadSwapServerProto } from "../../proto/mod.ts";

interface Env {
  server: LocalSwapServer;
  ln: InProcessLightning;
  payer: InProcessPayer;
  store: L402TokenStore;
  dir: string;
  open(opts?: { maxCostSat?: bigint }): SwapServerClient;
}

/** Local server + in-process Lightning + a token store in a temp dir; everything cleaned up. */
async function withEnv(
  fn: (env: Env) => Promise<void>,
  serverOpts: Partial<StartSwapServerOptions> = {},
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "loopkit-swapserver-" });
  const ln = new InProcessLightning("regtest");
  const server = await startSwapServer({ invoices: ln, ...serverOpts });
  const clients: SwapServerClient[] = [];
  try {
    const dir = join(root, "regtest");
    const store = await L402TokenStore.open(dir);
    const payer = ln.payer();
    const open = (opts: { maxCostSat?: bigint } = {}) => {
      const c = openSwapServer({
        address: server.address,
        tls: server.tls,
        tlsCert: server.tlsCertPem,
        network: "regtest",
        l402: { store, payer, maxCostSat: opts.maxCostSat, paymentTimeoutSec: 5 },
      });
      clients.push(c);
      return c;
    };
    await fn({ server, ln, payer, store, dir, open });
  } finally {
    for (const c of clients) c.close();
    await server.stop();
    await Deno.remove(root, { recursive: true });
  }
}

/** Polls `cond` every 10 ms; throws naming `what` if it is still false after 5 s. */
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 5_000; !cond();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const clientKey = (i: number) => secp256k1.getPublicKey(new Uint8Array(32).fill(i + 1), true);

Deno.test("first call pays exactly one invoice, stores the paid token 0600 and removes the pending file", async () => {
  await withEnv(async ({ server, payer, store, open }) => {
    const client = open();
    const asAddressServer: AddressServer = client; // what ensureStaticAddress() takes
    const params = await asAddressServer.serverNewAddress(clientKey(0));
    assertEquals(payer.sendCalls.length, 1);
    assertEquals(payer.paidCount, 1);
    assertEquals(payer.sendCalls[0].feeLimitSat, 10n);
    assertEquals(server.calls.challenges, 1);
    assertEquals(server.calls.paidCalls, 1);
    assertEquals(client.l402.lastAcquisition, "paid");

    const { serverPubkey, csvExpiry } = validateServerAddressParams(params);
    assertEquals(serverPubkey, server.serverKeyAt(0));
    assertEquals(csvExpiry, DEFAULT_SERVER_EXPIRY);
    assertEquals(server.calls.newAddresses[0].clientKey, clientKey(0));

    assert(!(await exists(store.pendingPath)));
    assertEquals((await Deno.stat(store.paidPath)).mode! & 0o777, 0o600);
    const token = parseTokenFile(await Deno.readFile(store.paidPath));
    assert(token.paid);
    assertEquals(token.amountPaidMsat, 10_000n); // the server's default price, 10 sat
    assertEquals(token.routingFeePaidMsat, payer.feeMsat);
    assertEquals([...server.calls.tokenIds], [token.tokenId]);
  });
});

Deno.test("later calls reuse the paid token and pay nothing", async () => {
  await withEnv(async ({ server, payer, open }) => {
    const client = open();
    await client.ensurePaidToken();
    await client.serverNewAddress(clientKey(0));
    await client.serverNewAddress(clientKey(1));
    // A new client (a new loopkit invocation) reads the token from disk.
    const again = open();
    const p = validateServerAddressParams(await again.serverNewAddress(clientKey(2)));
    assertEquals(p.serverPubkey, server.serverKeyAt(2));
    assertEquals(payer.sendCalls.length, 1);
    assertEquals(server.calls.challenges, 1);
    assertEquals(server.calls.paidCalls, 4);
    assertEquals(again.l402.lastAcquisition, "none");
  });
});

Deno.test("the pending token is on disk before the payment is attempted", async () => {
  await withEnv(async ({ payer, store, open }) => {
    let seen: { paid: boolean; hash: string } | undefined;
    payer.onSend = async () => {
      const pending = parseTokenFile(await Deno.readFile(store.pendingPath));
      seen = { paid: pending.paid, hash: hex.encode(pending.paymentHash) };
      assert(!(await exists(store.paidPath)));
    };
    await open().ensurePaidToken();
    assert(seen, "the payer was called");
    assertEquals(seen.paid, false);
    const paid = parseTokenFile(await Deno.readFile(store.paidPath));
    assertEquals(seen.hash, hex.encode(paid.paymentHash));
  });
});

Deno.test("a pending token whose payment succeeded meanwhile is completed without paying again", async () => {
  await withEnv(async ({ server, payer, store, open }) => {
    payer.sendOutcome = "in_flight";
    const err = await assertRejects(() => open().ensurePaidToken(), LoopkitError);
    assertEquals(err.code, "l402_payment_pending");
    assertEquals(err.exitCode, ExitCode.TempFail);
    const pending = parseTokenFile(await Deno.readFile(store.pendingPath));

    // The in-flight payment settles while loopkit is not running.
    payer.recordPayment(pending.paymentHash, "SUCCEEDED");
    const client = open();
    await client.serverNewAddress(clientKey(0));
    assertEquals(client.l402.lastAcquisition, "completed_pending");
    assertEquals(payer.sendCalls.length, 1);
    assertEquals(payer.trackCalls, [hex.encode(pending.paymentHash)]);
    assertEquals(server.calls.challenges, 2); // the second call was challenged, but not paid again
    assert(!(await exists(store.pendingPath)));
    assertEquals(parseTokenFile(await Deno.readFile(store.paidPath)).paymentHash, pending.paymentHash);
  });
});

Deno.test("a pending token whose payment failed is removed and the current challenge is paid", async () => {
  await withEnv(async ({ payer, store, open }) => {
    payer.sendOutcome = "fail";
    const err = await assertRejects(() => open().ensurePaidToken(), LoopkitError);
    assertEquals(err.code, "l402_payment_failed");
    const failed = parseTokenFile(await Deno.readFile(store.pendingPath));
    assert(!failed.paid, "the pending token stays after a failed payment");

    payer.sendOutcome = "succeed";
    const client = open();
    await client.ensurePaidToken();
    assertEquals(client.l402.lastAcquisition, "replaced_failed_pending");
    assertEquals(payer.sendCalls.length, 2);
    assertEquals(payer.paidCount, 1);
    const paid = parseTokenFile(await Deno.readFile(store.paidPath));
    assert(hex.encode(paid.paymentHash) !== hex.encode(failed.paymentHash));
    assert(!(await exists(store.pendingPath)));
  });
});

Deno.test("a pending token whose payment lnd has never seen (killed before paying) is discarded and one fresh token paid", async () => {
  await withEnv(async ({ payer, store, open }) => {
    // The killed run: pending token written, SendPaymentV2 never reached lnd.
    let killed = true;
    payer.onSend = () => {
      if (killed) throw new Error("loopkit was killed here");
    };
    const origTrack = payer.trackPaymentV2.bind(payer);
    payer.trackPaymentV2 = (h, o) => killed ? Promise.reject(new Error("process gone")) : origTrack(h, o);
    await assertRejects(() => open().ensurePaidToken(), LoopkitError);
    assert(await exists(store.pendingPath), "a killed run leaves its pending token");
    killed = false;
    const client = open();
    await client.ensurePaidToken();
    assertEquals(client.l402.lastAcquisition, "replaced_unseen_pending");
    assertEquals(payer.paidCount, 1);
    assert(!(await exists(store.pendingPath)));
    assert((await store.currentToken())?.paid);
  });
});

Deno.test("a payment lnd refuses (permissions) discards the pending token at once: nothing was paid, the next run pays", async () => {
  await withEnv(async ({ payer, store, open }) => {
    let refuse = true;
    payer.onSend = () => {
      if (refuse) {
        throw Object.assign(new Error("permission denied"), { grpcCode: 2, details: "permission denied" });
      }
    };
    const err = await assertRejects(() => open().ensurePaidToken(), LoopkitError);
    assertEquals(err.code, "l402_payment_failed");
    assertStringIncludes(err.message, "lnd never saw the payment, so nothing was paid");
    assert(!(await exists(store.pendingPath)), "no stuck pending token");
    assertEquals(payer.paidCount, 0);
    refuse = false;
    await open().ensurePaidToken();
    assertEquals(payer.paidCount, 1);
  });
});

Deno.test("a price above the max cost is refused before anything is written or paid", async () => {
  await withEnv(async ({ payer, store, open }) => {
    const err = await assertRejects(() => open().ensurePaidToken(), LoopkitError);
    assertEquals(err.code, "l402_cost_too_high");
    assertEquals(
      err.message,
      "cannot pay for L402 automatically, cost of 1001000 msat exceeds configured max cost of 1000000 msat",
    );
    assertEquals(payer.sendCalls.length, 0);
    assertEquals(await store.currentToken(), null);
    // A higher limit pays it.
    await open({ maxCostSat: 1001n }).ensurePaidToken();
    assertEquals(payer.paidCount, 1);
  }, { priceSat: 1001n });
});

Deno.test("a paid token the server does not accept gives l402_rejected and is neither paid again nor replaced", async () => {
  for (const mode of ["challenge", "unauthenticated"] as const) {
    await withEnv(async ({ server, payer, store, open }) => {
      await open().ensurePaidToken();
      const before = await Deno.readFile(store.paidPath);
      // Tamper with the macaroon signature (last byte of the stored macaroon).
      const L = new DataView(before.buffer).getUint32(0);
      const tampered = before.slice();
      tampered[4 + L - 1] ^= 0x01;
      await Deno.writeFile(store.paidPath, tampered);
      server.setMisbehaviour({ rejectInvalidCredential: mode });

      const err = await assertRejects(() => open().serverNewAddress(clientKey(0)), LoopkitError);
      assertEquals(err.code, "l402_rejected", mode);
      assertStringIncludes(err.message, store.paidPath);
      assertEquals(payer.sendCalls.length, 1, mode);
      assertEquals(server.calls.rejectedCredentials, 1, mode);
      assertEquals(await Deno.readFile(store.paidPath), tampered, mode);
    });
  }
});

Deno.test("a token from another server (different root key) is rejected, not replaced", async () => {
  await withEnv(async ({ ln, payer, dir, open }) => {
    await open().ensurePaidToken();
    const other = await startSwapServer({ invoices: ln });
    const store = await L402TokenStore.open(dir);
    const client = openSwapServer({
      address: other.address,
      tls: false,
      network: "regtest",
      l402: { store, payer },
    });
    try {
      const err = await assertRejects(() => client.ensurePaidToken(), LoopkitError);
      assertEquals(err.code, "l402_rejected");
      assertEquals(payer.sendCalls.length, 1);
    } finally {
      client.close();
      await other.stop();
    }
  });
});

Deno.test("concurrent calls on one client and on a second client sharing the store pay once", async () => {
  await withEnv(async ({ server, payer, open }) => {
    const a = open();
    const b = open();
    const results = await Promise.all([
      a.serverNewAddress(clientKey(0)),
      a.serverNewAddress(clientKey(1)),
      b.serverNewAddress(clientKey(2)),
    ]);
    assertEquals(results.length, 3);
    assertEquals(payer.sendCalls.length, 1);
    assertEquals(payer.paidCount, 1);
    assertEquals(server.calls.newAddresses.length, 3);
  });
});

Deno.test("serverNewAddress() hands back malformed server answers for the caller's validation", async () => {
  await withEnv(async ({ server, open }) => {
    const client = open();
    server.setMisbehaviour({ badServerKey: true });
    const bad = await client.serverNewAddress(clientKey(0));
    assertEquals(bad?.serverKey?.length, 33);
    assertThrows(() => validateServerAddressParams(bad), LoopkitError, "not a point on secp256k1");

    for (const expiry of [0, 28_801, 0x8000_0000]) {
      server.setMisbehaviour({ expiry });
      const p = await client.serverNewAddress(clientKey(0));
      assertEquals(p?.expiry, expiry);
      assertEquals(
        assertThrows(() => validateServerAddressParams(p), LoopkitError).code,
        "invalid_static_address",
      );
    }
    server.setMisbehaviour({ missingParams: true });
    assertEquals(await client.serverNewAddress(clientKey(0)), null);
    assertThrows(() => validateServerAddressParams(null), LoopkitError, "no address parameters");

    server.setMisbehaviour({ emptyServerKey: true });
    assertThrows(
      () => validateServerAddressParams({ serverKey: new Uint8Array(0), expiry: 1 }),
      LoopkitError,
      "no server key",
    );
    const empty = await client.serverNewAddress(clientKey(0));
    assertThrows(() => validateServerAddressParams(empty), LoopkitError, "no server key");

    server.setMisbehaviour({ expiry: 28_800 });
    assertEquals(validateServerAddressParams(await client.serverNewAddress(clientKey(0))).csvExpiry, 28_800);
  });
});

Deno.test("serverNewAddress() refuses a malformed client key without calling the server", async () => {
  await withEnv(async ({ server, open }) => {
    const err = await assertRejects(() => open().serverNewAddress(new Uint8Array(33)), LoopkitError);
    assertEquals(err.code, "invalid_static_address");
    assertEquals(server.calls.methods, {});
  });
});

Deno.test("an unreachable swap server is a temporary failure naming --swapserver", async () => {
  await withEnv(async ({ server, open }) => {
    await server.stop();
    const err = await assertRejects(() => open().ensurePaidToken(), LoopkitError);
    assertEquals(err.code, "swap_server_unreachable");
    assertEquals(err.exitCode, ExitCode.TempFail);
    assertStringIncludes(err.message, "--swapserver");
    assertStringIncludes(err.message, server.address);
  });
});

Deno.test("the client pays and calls over TLS with a pinned certificate", async () => {
  await withEnv(async ({ server, payer, open }) => {
    assert(server.tls);
    const p = validateServerAddressParams(await open().serverNewAddress(clientKey(0)));
    assertEquals(p.serverPubkey, server.serverKeyAt(0));
    assertEquals(payer.paidCount, 1);
  }, { tls: true });
});

Deno.test("openSwapServer() refuses plaintext to a non-loopback host and malformed addresses", () => {
  const l402 = { store: {} as L402TokenStore, payer: {} as InProcessPayer };
  for (const address of ["swap.lightning.today:11010", "10.0.0.1:11010"]) {
    const err = assertThrows(
      () => openSwapServer({ address, tls: false, network: "mainnet", l402 }),
      LoopkitError,
    );
    assertEquals(err.code, "swap_server_insecure");
    assertEquals(err.exitCode, ExitCode.Usage);
  }
  for (const address of ["nohost", "host:0", "host:70000", ":11010", "a b:1"]) {
    const err = assertThrows(
      () => openSwapServer({ address, tls: true, network: "mainnet", l402 }),
      LoopkitError,
    );
    assertEquals(err.code, "swap_server_address", address);
  }
});

Deno.test("swapServerAddress() uses Loop's defaults and requires --swapserver elsewhere", () => {
  assertEquals(swapServerAddress("mainnet"), "swap.lightning.today:11010");
  assertEquals(swapServerAddress("testnet"), "test.swap.lightning.today:11010");
  assertEquals(swapServerAddress("signet"), "signet.swap.lightning.today:11010");
  assertEquals(swapServerAddress("mainnet", "127.0.0.1:1"), "127.0.0.1:1");
  for (const net of ["regtest", "simnet", "testnet4"] as const) {
    const err = assertThrows(() => swapServerAddress(net), LoopkitError, "--swapserver");
    assertEquals(err.exitCode, ExitCode.Usage);
  }
});

// ---- loop-in calls (spec/static-loop-in.md §1.3, §1.4, §1.6, §1.7, §4.6, §5.3) against a minimal
// in-test gRPC server speaking proto/swapserver.proto behind an Aperture-like L402 gate.

// deno-lint-ignore no-explicit-any
type Msg = Record<string, any>;

interface MiniCall {
  method: string;
  request: Msg;
  /** The credential's token id (hex), or null for a call without one. */
  tokenId: string | null;
}

interface MiniServer {
  address: string;
  calls: MiniCall[];
  /** Unary answers by method (default: an empty message). Throw `{code, details}` for an error. */
  answers: Record<string, (req: Msg) => Msg | Promise<Msg>>;
  /** The stream handler: write notifications, end or fail the stream. */
  onSubscribe: (call: grpc.ServerWritableStream<Msg, Msg>) => void;
  /** Resolves when the current subscription is cancelled by the client. */
  cancelled: () => Promise<void>;
  /** When set, the stream answers "payment required" even to a valid token. */
  refuseStreamToken: boolean;
  /** Client TCP connections open right now. */
  connections(): number;
  stop(): Promise<void>;
}

/** A grpc-js server for looprpc.SwapServer + StaticAddressServer; challenges calls without a valid paid token. */
async function startMiniServer(ln: InProcessLightning): Promise<MiniServer> {
  const def = loadSwapServerProto();
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    looprpc: Record<string, { service: grpc.ServiceDefinition }>;
  };
  const rootKey = crypto.getRandomValues(new Uint8Array(32));
  const server = new grpc.Server();
  let cancelledResolve: () => void = () => {};
  let cancelledP = new Promise<void>((r) => cancelledResolve = r);
  const mini: MiniServer = {
    address: "",
    calls: [],
    answers: {},
    onSubscribe: () => {},
    cancelled: () => cancelledP,
    refuseStreamToken: false,
    connections: () => 0, // replaced once the relay runs
    stop: () => Promise.resolve(server.forceShutdown()), // replaced once the relay runs
  };
  const challenge = async () => {
    const { paymentRequest, paymentHash } = await ln.addInvoice(5n, "L402");
    const id = new Uint8Array(66);
    id.set(paymentHash, 2);
    id.set(crypto.getRandomValues(new Uint8Array(32)), 34);
    const mac = macaroonLib.newMacaroon({ identifier: id, location: "mini", rootKey, version: 2 });
    const b64 = base64.encode(mac.exportBinary());
    const md = new grpc.Metadata();
    md.add("www-authenticate", `LSAT macaroon="${b64}", invoice="${paymentRequest}"`);
    md.add("www-authenticate", `L402 macaroon="${b64}", invoice="${paymentRequest}"`);
    return { code: grpc.status.INTERNAL, details: "payment required", metadata: md };
  };
  /** The token id of a valid paid credential, else null. */
  const tokenOf = (md: grpc.Metadata): string | null => {
    const v = md.get("macaroon");
    if (v.length !== 1) return null;
    const mac = macaroonLib.importMacaroon(hex.decode(String(v[0])));
    const id: Uint8Array = mac.identifier;
    let ok = false;
    mac.verify(rootKey, (c: string) => {
      if (!c.startsWith("preimage=")) return "unknown caveat";
      ok = hex.encode(sha256(hex.decode(c.slice(9)))) === hex.encode(id.subarray(2, 34));
      return ok ? null : "wrong preimage";
    });
    return ok ? hex.encode(id.subarray(34)) : null;
  };
  const unary =
    (method: string) => async (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const tokenId = tokenOf(call.metadata);
      mini.calls.push({ method, request: call.request, tokenId });
      if (tokenId === null) return cb(await challenge(), null);
      try {
        cb(null, await (mini.answers[method] ?? (() => ({})))(call.request));
      } catch (e) {
        cb(e as grpc.ServiceError, null);
      }
    };
  const methods = (names: string[]) =>
    Object.fromEntries(names.map((n) => [n, unary(n)])) as grpc.UntypedServiceImplementation;
  server.addService(pkg.looprpc.SwapServer.service, {
    ...methods(["LoopInTerms", "LoopInQuote", "Probe", "FetchL402"]),
    SubscribeNotifications: async (call: grpc.ServerWritableStream<Msg, Msg>) => {
      const tokenId = tokenOf(call.metadata);
      mini.calls.push({ method: "SubscribeNotifications", request: call.request, tokenId });
      call.on("cancelled", () => cancelledResolve());
      if (tokenId === null || mini.refuseStreamToken) return call.emit("error", await challenge());
      mini.onSubscribe(call);
    },
  });
  server.addService(
    pkg.looprpc.StaticAddressServer.service,
    methods([
      "ServerNewAddress",
      "ServerStaticAddressLoopIn",
      "PushStaticAddressHtlcSigs",
      "PushStaticAddressSweeplessSigs",
    ]),
  );
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => e ? rej(e) : res(p))
  );
  // Through a TCP relay: stop() drops the connections instead of sending a GOAWAY (tests/tcp_relay.ts).
  const relay = startTcpRelay(port);
  mini.address = `127.0.0.1:${relay.port}`;
  mini.connections = () => relay.connections;
  mini.stop = async () => {
    await relay.close();
    server.forceShutdown();
  };
  mini.cancelled = () => {
    const p = cancelledP;
    return p.then(() => {
      cancelledP = new Promise<void>((r) => cancelledResolve = r);
    });
  };
  return mini;
}

interface LoopInEnv {
  mini: MiniServer;
  payer: InProcessPayer;
  store: L402TokenStore;
  open(opts?: { callTimeoutMs?: number; initiator?: string; address?: string }): SwapServerClient;
}

async function withLoopInEnv(fn: (env: LoopInEnv) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "loopkit-swapserver-loopin-" });
  const ln = new InProcessLightning("regtest");
  const mini = await startMiniServer(ln);
  const clients: SwapServerClient[] = [];
  try {
    const store = await L402TokenStore.open(join(root, "regtest"));
    const payer = ln.payer();
    const open = (o: { callTimeoutMs?: number; initiator?: string; address?: string } = {}) => {
      const c = openSwapServer({
        address: o.address ?? mini.address,
        tls: false,
        network: "regtest",
        commit: "abc123",
        initiator: o.initiator,
        l402: { store, payer, paymentTimeoutSec: 5, callTimeoutMs: o.callTimeoutMs },
      });
      clients.push(c);
      return c;
    };
    await fn({ mini, payer, store, open });
  } finally {
    for (const c of clients) c.close();
    await mini.stop();
    await Deno.remove(root, { recursive: true });
  }
}

const key33 = (i: number) => secp256k1.getPublicKey(new Uint8Array(32).fill(i + 1), true);
const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);
const hop = {
  nodeId: hex.encode(key33(7)),
  chanId: (1n << 63n) + 5n, // above 2^53: must survive as uint64
  feeBaseMsat: 1000,
  feeProportionalMillionths: 2,
  cltvExpiryDelta: 40,
};
const wireHop = {
  nodeId: hop.nodeId,
  chanId: hop.chanId.toString(),
  feeBaseMsat: 1000,
  feeProportionalMillionths: 2,
  cltvExpiryDelta: 40,
};

Deno.test("userAgent(): Loop's <agent>/v<semver>/commit=<commit>[,initiator=…] with its character and length rules", () => {
  assertEquals(userAgent({ version: "0.1.0", commit: "" }), "loopkit/v0.1.0/commit=");
  assertEquals(userAgent({ version: "0.1.0", commit: "deadbeef" }), "loopkit/v0.1.0/commit=deadbeef");
  assertEquals(
    userAgent({ version: "0.1.0", commit: "c", initiator: "  loop-cli v1.2 (x)\n" }),
    "loopkit/v0.1.0/commit=c,initiator=loop-cli v1.2 x",
  );
  const long = userAgent({ version: "1.0.0", commit: "", initiator: "a".repeat(300) });
  assertEquals(long, "loopkit/v1.0.0/commit=" + (",initiator=" + "a".repeat(300)).slice(0, 150));
  assertEquals(long.length, "loopkit/v1.0.0/commit=".length + 150);
  assertEquals(userAgent({ version: "1.0.0", initiator: "   " }), "loopkit/v1.0.0/commit=");
  assertEquals(userAgent(), `loopkit/v${LOOPKIT_VERSION}/commit=`);
});

Deno.test("loopInTerms(): pays the L402 challenge once, sends MUSIG2 = 11 and the user agent, returns uint64 amounts", async () => {
  await withLoopInEnv(async ({ mini, payer, open }) => {
    mini.answers.LoopInTerms = () => ({ minSwapAmount: "250000", maxSwapAmount: "18446744073709551615" });
    const c = open({ initiator: "loopkit-cli" });
    const terms = await c.loopInTerms();
    assertEquals(terms, { minSwapAmountSat: 250_000n, maxSwapAmountSat: (1n << 64n) - 1n });
    assertEquals(mini.calls.map((x) => [x.method, x.tokenId !== null]), [["LoopInTerms", false], [
      "LoopInTerms",
      true,
    ]]);
    assertEquals(payer.paidCount, 1);
    const req = mini.calls[1].request;
    assertEquals(req.protocolVersion, 11); // MUSIG2
    assertEquals(req.userAgent, `loopkit/v${LOOPKIT_VERSION}/commit=abc123,initiator=loopkit-cli`);
    await c.loopInTerms({ initiator: "other" });
    assertEquals(
      mini.calls[2].request.userAgent,
      `loopkit/v${LOOPKIT_VERSION}/commit=abc123,initiator=other`,
    );
    assertEquals(payer.paidCount, 1, "the paid token is reused");

    mini.answers.LoopInTerms = () => ({ minSwapAmount: "0", maxSwapAmount: "0" });
    assertEquals(await c.loopInTerms(), { minSwapAmountSat: 0n, maxSwapAmountSat: 0n });
  });
});

Deno.test("probe() and loopInQuote() send every field; the quote's swap fee is a bigint, a negative one is refused", async () => {
  await withLoopInEnv(async ({ mini, open }) => {
    const c = open();
    await c.probe({
      amtSat: 500_000n,
      target: key33(1),
      lastHop: key33(2),
      routeHints: [{ hopHints: [hop] }],
    });
    const probe = mini.calls.findLast((x) => x.method === "Probe")!.request;
    assertEquals(probe.protocolVersion, 11);
    assertEquals(probe.amt, "500000");
    assertEquals(new Uint8Array(probe.target), key33(1));
    assertEquals(new Uint8Array(probe.lastHop), key33(2));
    assertEquals(probe.routeHints, [{ hopHints: [wireHop] }]);

    mini.answers.LoopInQuote = () => ({ swapFee: "1234", swapFeeRate: "0", cltvDelta: 1000 });
    const q = await c.loopInQuote({ amtSat: 500_000n, pubkey: key33(1), numDeposits: 3, fast: true });
    assertEquals(q, { swapFeeSat: 1234n, cltvDelta: 1000 });
    const quote = mini.calls.findLast((x) => x.method === "LoopInQuote")!.request;
    assertEquals(quote.amt, "500000");
    assertEquals(quote.protocolVersion, 11);
    assertEquals(new Uint8Array(quote.pubkey), key33(1));
    assertEquals(quote.lastHop.length, 0, "no last hop: empty bytes");
    assertEquals(quote.routeHints, []);
    assertEquals(quote.numStaticAddressDeposits, 3);
    assertEquals(quote.fast, true);
    assertEquals(quote.userAgent, `loopkit/v${LOOPKIT_VERSION}/commit=abc123`);

    mini.answers.LoopInQuote = () => ({ swapFee: "-1" });
    await assertRejects(
      () => c.loopInQuote({ amtSat: 500_000n, pubkey: key33(1), numDeposits: 1, fast: false }),
      LoopkitError,
      "negative",
    );
    const before = mini.calls.length;
    await assertRejects(() => c.probe({ amtSat: 0n, target: key33(1) }), RangeError);
    await assertRejects(
      () => c.loopInQuote({ amtSat: 1n, pubkey: bytes(32, 2), numDeposits: 1, fast: false }),
      RangeError,
    );
    await assertRejects(
      () => c.probe({ amtSat: 1n, target: key33(1), routeHints: [{ hopHints: [{ ...hop, nodeId: "02" }] }] }),
      RangeError,
    );
    assertEquals(mini.calls.length, before, "bad arguments never reach the server");
  });
});

Deno.test("serverStaticAddressLoopIn() sends the §1.4 fields in order and converts the three signing variants", async () => {
  await withLoopInEnv(async ({ mini, open }) => {
    const n = (i: number) => Buffer.from(bytes(66, i));
    mini.answers.ServerStaticAddressLoopIn = () => ({
      htlcServerPubKey: Buffer.from(key33(9)),
      htlcExpiry: 1234,
      standardHtlcInfo: { nonces: [n(1), n(2)], feeRate: "253" },
      highFeeHtlcInfo: { nonces: [n(3), n(4)], feeRate: "10000" },
      // extreme left out by the server
    });
    const c = open({ initiator: "loopkit-cli" });
    const ops = [`${"ab".repeat(32)}:1`, `${"cd".repeat(32)}:0`];
    const res = await c.serverStaticAddressLoopIn({
      htlcClientPubKey: key33(3),
      swapHash: bytes(32, 5),
      depositOutpoints: ops,
      swapInvoice: "lnbcrt1fake",
      lastHop: key33(4),
      paymentTimeoutSeconds: 60,
      amountSat: 0n,
      fast: false,
    });
    assertEquals(res.htlcServerPubKey, key33(9));
    assertEquals(res.htlcExpiry, 1234);
    assertEquals(res.standard, { nonces: [bytes(66, 1), bytes(66, 2)], feeRateSatPerKw: 253n });
    assertEquals(res.high, { nonces: [bytes(66, 3), bytes(66, 4)], feeRateSatPerKw: 10_000n });
    assertEquals(res.extreme, { nonces: [], feeRateSatPerKw: 0n });
    const req = mini.calls.findLast((x) => x.method === "ServerStaticAddressLoopIn")!.request;
    assertEquals(new Uint8Array(req.htlcClientPubKey), key33(3));
    assertEquals(new Uint8Array(req.swapHash), bytes(32, 5));
    assertEquals(req.depositOutpoints, ops);
    assertEquals(req.swapInvoice, "lnbcrt1fake");
    assertEquals(new Uint8Array(req.lastHop), key33(4));
    assertEquals(req.protocolVersion, 0); // V0
    assertEquals(req.userAgent, `loopkit/v${LOOPKIT_VERSION}/commit=abc123,initiator=loopkit-cli`);
    assertEquals(req.paymentTimeoutSeconds, 60);
    assertEquals(req.amount, "0");
    assertEquals(req.fast, false);

    await assertRejects(
      () =>
        c.serverStaticAddressLoopIn({
          htlcClientPubKey: key33(3),
          swapHash: bytes(32, 5),
          depositOutpoints: ["nothex:1"],
          swapInvoice: "x",
          paymentTimeoutSeconds: 60,
          amountSat: 0n,
          fast: false,
        }),
      RangeError,
    );
  });
});

Deno.test("pushStaticAddressHtlcSigs(): three variants of nonces and sigs; only the swap hash is the abandon message", async () => {
  await withLoopInEnv(async ({ mini, open }) => {
    const c = open();
    const info = (f: number) => ({
      nonces: [bytes(66, f), bytes(66, f + 1)],
      sigs: [bytes(32, f), bytes(32, f + 1)],
    });
    await c.pushStaticAddressHtlcSigs({
      swapHash: bytes(32, 1),
      standard: info(1),
      high: info(3),
      extreme: info(5),
    });
    const req = mini.calls.findLast((x) => x.method === "PushStaticAddressHtlcSigs")!.request;
    assertEquals(new Uint8Array(req.swapHash), bytes(32, 1));
    const plain = (v: Msg) => ({
      nonces: v.nonces.map((b: Buffer) => new Uint8Array(b)),
      sigs: v.sigs.map((b: Buffer) => new Uint8Array(b)),
    });
    assertEquals(plain(req.standardHtlcInfo), info(1));
    assertEquals(plain(req.highFeeHtlcInfo), info(3));
    assertEquals(plain(req.extremeFeeHtlcInfo), info(5));

    await c.pushStaticAddressHtlcSigs({ swapHash: bytes(32, 2) });
    const abandon = mini.calls.findLast((x) => x.method === "PushStaticAddressHtlcSigs")!.request;
    assertEquals(new Uint8Array(abandon.swapHash), bytes(32, 2));
    assertEquals([abandon.standardHtlcInfo, abandon.highFeeHtlcInfo, abandon.extremeFeeHtlcInfo], [
      null,
      null,
      null,
    ]);

    const before = mini.calls.length;
    await assertRejects(
      () =>
        c.pushStaticAddressHtlcSigs({
          swapHash: bytes(32, 1),
          standard: { nonces: [bytes(66, 1)], sigs: [] },
        }),
      RangeError,
    );
    await assertRejects(
      () =>
        c.pushStaticAddressHtlcSigs({
          swapHash: bytes(32, 1),
          high: { nonces: [bytes(65, 1)], sigs: [bytes(32, 1)] },
        }),
      RangeError,
    );
    assertEquals(mini.calls.length, before);

    mini.answers.PushStaticAddressHtlcSigs = () => {
      throw { code: grpc.status.INVALID_ARGUMENT, details: "invalid partial signature" };
    };
    const err = await assertRejects(
      () => c.pushStaticAddressHtlcSigs({ swapHash: bytes(32, 1), standard: info(1) }),
      LoopkitError,
    );
    assertEquals(err.code, "swap_server_rpc");
    assertEquals(err.exitCode, ExitCode.Failure);
    assertStringIncludes(err.message, "invalid partial signature");
  });
});

Deno.test("pushStaticAddressSweeplessSigs(): txid bytes as given, signing info keyed by outpoint, or only an error message", async () => {
  await withLoopInEnv(async ({ mini, open }) => {
    const c = open();
    const op1 = `${"11".repeat(32)}:0`;
    const op2 = `${"22".repeat(32)}:3`;
    await c.pushStaticAddressSweeplessSigs({
      swapHash: bytes(32, 1),
      txid: bytes(32, 9),
      signingInfo: new Map([[op1, { nonce: bytes(66, 1), sig: bytes(32, 1) }], [op2, {
        nonce: bytes(66, 2),
        sig: bytes(32, 2),
      }]]),
    });
    const req = mini.calls.findLast((x) => x.method === "PushStaticAddressSweeplessSigs")!.request;
    assertEquals(new Uint8Array(req.txid), bytes(32, 9));
    assertEquals(Object.keys(req.signingInfo).sort(), [op1, op2]);
    assertEquals(new Uint8Array(req.signingInfo[op2].nonce), bytes(66, 2));
    assertEquals(new Uint8Array(req.signingInfo[op2].sig), bytes(32, 2));
    assertEquals(req.errorMessage, "");

    await c.pushStaticAddressSweeplessSigs({
      swapHash: bytes(32, 1),
      txid: bytes(32, 9),
      signingInfo: new Map(),
      errorMessage: "swap not finished yet",
    });
    const refusal = mini.calls.findLast((x) => x.method === "PushStaticAddressSweeplessSigs")!.request;
    assertEquals(refusal.signingInfo, {});
    assertEquals(refusal.errorMessage, "swap not finished yet");
    await assertRejects(
      () =>
        c.pushStaticAddressSweeplessSigs({
          swapHash: bytes(32, 1),
          txid: bytes(31, 9),
          signingInfo: new Map(),
        }),
      RangeError,
    );
  });
});

Deno.test("subscribeNotifications(): refused without a paid token (nothing sent, nothing paid)", async () => {
  await withLoopInEnv(async ({ mini, payer, open }) => {
    const c = open();
    const err = await assertRejects(
      () => c.subscribeNotifications({ signal: new AbortController().signal, onNotification: () => {} }),
      LoopkitError,
    );
    assertEquals(err.code, "l402_no_paid_token");
    assertEquals(mini.calls.length, 0);
    assertEquals(payer.sendCalls.length, 0);
  });
});

Deno.test("subscribeNotifications(): V1 with the paid token; risk, sweep and other notifications in order, one at a time; abort resolves and cancels", async () => {
  await withLoopInEnv(async ({ mini, open }) => {
    const c = open();
    await c.ensurePaidToken();
    const sweepTxidInternal = bytes(32, 0xaa);
    sweepTxidInternal[0] = 0x01; // internal order: first byte shows last in display hex
    mini.onSubscribe = (call) => {
      call.write({ staticLoopInRiskAccepted: { swapHash: Buffer.from(bytes(32, 1)) } });
      call.write({
        staticLoopInSweep: {
          sweepTxPsbt: Buffer.from("psbt\xff"),
          swapHash: Buffer.from(bytes(32, 2)),
          depositToNonces: { [`${"33".repeat(32)}:1`]: Buffer.from(bytes(66, 3)) },
          prevoutInfo: [{
            value: "9007199254740993",
            pkScript: Buffer.from([0x51, 0x20]),
            txidBytes: Buffer.from(sweepTxidInternal),
            outputIndex: 4,
          }],
        },
      });
      call.write({ reservationNotification: { reservationId: Buffer.from(bytes(32, 4)), value: "1" } });
      call.write({ staticLoopInRiskRejected: { swapHash: Buffer.from(bytes(32, 5)) } });
    };
    const seen: ServerNotification[] = [];
    let inHandler = 0;
    let maxInHandler = 0;
    const ac = new AbortController();
    const done = c.subscribeNotifications({
      signal: ac.signal,
      onNotification: async (n) => {
        maxInHandler = Math.max(maxInHandler, ++inHandler);
        await new Promise((r) => setTimeout(r, 20));
        seen.push(n);
        inHandler--;
        if (seen.length === 4) ac.abort();
      },
    });
    await done;
    await mini.cancelled();
    assertEquals(maxInHandler, 1, "one notification at a time");
    assertEquals(seen[0], { kind: "risk_accepted", swapHash: bytes(32, 1) });
    assertEquals(seen[1].kind, "sweep");
    if (seen[1].kind === "sweep") {
      assertEquals(seen[1].swapHash, bytes(32, 2));
      assertEquals(seen[1].sweepTxPsbt, new Uint8Array(Buffer.from("psbt\xff")));
      assertEquals([...seen[1].depositToNonces], [[`${"33".repeat(32)}:1`, bytes(66, 3)]]);
      assertEquals(seen[1].prevoutInfo, [{
        valueSat: 9_007_199_254_740_993n,
        pkScript: new Uint8Array([0x51, 0x20]),
        txid: "aa".repeat(31) + "01",
        vout: 4,
      }]);
    }
    assertEquals(seen[2], { kind: "other", field: "reservation_notification" });
    assertEquals(seen[3], { kind: "risk_rejected", swapHash: bytes(32, 5) });
    const sub = mini.calls.find((x) => x.method === "SubscribeNotifications")!;
    assertEquals(sub.request.version, 1); // V1
    assert(sub.tokenId !== null, "the stream carries the paid credential");
  });
});

Deno.test("the channel is open only while a call is in flight: closed after each call, held by an open stream (denoland/deno#36788)", async () => {
  await withLoopInEnv(async ({ mini, open }) => {
    const noConnection = () =>
      waitFor(() => mini.connections() === 0, "the client to close its connection once idle");
    const c = open();
    assertEquals(mini.connections(), 0, "nothing connects before the first call");
    await c.ensurePaidToken(); // challenge, payment, paid retry: each attempt connects and closes again
    await noConnection();
    await c.ensurePaidToken();
    await noConnection();
    mini.onSubscribe = () => {}; // the stream stays open until the client cancels it
    const ac = new AbortController();
    const done = c.subscribeNotifications({ signal: ac.signal, onNotification: () => {} });
    await waitFor(() => mini.connections() === 1, "the stream to connect");
    await c.ensurePaidToken(); // a unary call while the stream is open shares its connection
    assertEquals(mini.connections(), 1);
    ac.abort();
    await done;
    await noConnection();
    c.close();
    assertEquals(mini.connections(), 0);
  });
});

Deno.test("subscribeNotifications(): resolves when the server ends the stream; a handler error cancels it and rejects", async () => {
  await withLoopInEnv(async ({ mini, open }) => {
    const c = open();
    await c.ensurePaidToken();
    mini.onSubscribe = (call) => {
      call.write({ staticLoopInRiskAccepted: { swapHash: Buffer.from(bytes(32, 1)) } });
      call.end();
    };
    const seen: string[] = [];
    await c.subscribeNotifications({
      signal: new AbortController().signal,
      onNotification: (n) => void seen.push(n.kind),
    });
    assertEquals(seen, ["risk_accepted"]);

    mini.onSubscribe = (call) => {
      call.write({ staticLoopInRiskAccepted: { swapHash: Buffer.from(bytes(32, 1)) } });
      call.write({ staticLoopInRiskAccepted: { swapHash: Buffer.from(bytes(32, 2)) } });
    };
    const boom = new Error("db busy");
    let calls = 0;
    const p = c.subscribeNotifications({
      signal: new AbortController().signal,
      onNotification: () => {
        calls++;
        throw boom;
      },
    });
    await assertRejects(() => p, Error, "db busy");
    await mini.cancelled();
    assertEquals(calls, 1, "no notification after the failing one");
  });
});

Deno.test("subscribeNotifications(): payment required on the stream is l402_rejected (never paid); server errors map like unary calls", async () => {
  await withLoopInEnv(async ({ mini, payer, open }) => {
    const c = open();
    await c.ensurePaidToken();
    const paid = payer.sendCalls.length;
    mini.refuseStreamToken = true;
    const rejected = await assertRejects(
      () => c.subscribeNotifications({ signal: new AbortController().signal, onNotification: () => {} }),
      LoopkitError,
    );
    assertEquals(rejected.code, "l402_rejected");
    assertEquals(payer.sendCalls.length, paid, "a stream never pays");

    mini.refuseStreamToken = false;
    mini.onSubscribe = (call) =>
      call.emit("error", { code: grpc.status.UNAVAILABLE, details: "server shutting down" });
    const e = await assertRejects(
      () => c.subscribeNotifications({ signal: new AbortController().signal, onNotification: () => {} }),
      LoopkitError,
    );
    assertEquals(e.code, "swap_server_unreachable");
    assertEquals(e.exitCode, ExitCode.TempFail);

    // close() ends an open stream: the call resolves.
    mini.onSubscribe = () => {};
    const subs = () => mini.calls.filter((x) => x.method === "SubscribeNotifications").length;
    const opened = subs();
    const open2 = c.subscribeNotifications({
      signal: new AbortController().signal,
      onNotification: () => {},
    });
    while (subs() === opened) await new Promise((r) => setTimeout(r, 10));
    const c2 = open();
    c.close();
    await open2;
    await mini.cancelled();

    // An already aborted signal opens nothing.
    const ac = new AbortController();
    ac.abort();
    const before = mini.calls.length;
    await c2.subscribeNotifications({ signal: ac.signal, onNotification: () => {} });
    assertEquals(mini.calls.length, before);
  });
});

Deno.test("loop-in unary calls: a server that does not answer times out per attempt (exit 75); an unreachable one is exit 75", async () => {
  await withLoopInEnv(async ({ mini, open }) => {
    const c = open({ callTimeoutMs: 300 });
    await c.ensurePaidToken();
    let release = () => {};
    mini.answers.LoopInTerms = () => new Promise<Msg>((r) => release = () => r({}));
    const started = Date.now();
    const t = await assertRejects(() => c.loopInTerms(), LoopkitError);
    const elapsed = Date.now() - started;
    release();
    assertEquals(t.code, "swap_server_timeout");
    assertEquals(t.exitCode, ExitCode.TempFail);
    assert(elapsed >= 250 && elapsed < 3000, `gave up after ${elapsed} ms, deadline 300 ms`);

    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const gone = open({ address: `127.0.0.1:${port}`, callTimeoutMs: 2000 });
    const u = await assertRejects(() => gone.probe({ amtSat: 1n, target: key33(1) }), LoopkitError);
    assertEquals(u.code, "swap_server_unreachable");
    assertEquals(u.exitCode, ExitCode.TempFail);
  });
});
