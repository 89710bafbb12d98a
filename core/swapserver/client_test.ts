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
import { openSwapServer, swapServerAddress, type SwapServerClient } from "./client.ts";

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
