import assert from "node:assert/strict";
import { bytesToHex } from "@noble/hashes/utils.js";
import { ExitCode, LoopkitError } from "../core/errors.ts";
import { type FakeLnd, startFakeLnd } from "../tests/fakelnd/server.ts";
import { generateTestCert } from "../tests/fakelnd/tls.ts";
import { connectLnd, lndNetworkName } from "./connect.ts";

/** Runs `fn` against a fresh fake lnd and always stops it. */
async function withFake(opts: Parameters<typeof startFakeLnd>[0], fn: (fake: FakeLnd) => Promise<void>) {
  const fake = await startFakeLnd(opts);
  try {
    await fn(fake);
  } finally {
    await fake.stop();
  }
}

/** Asserts `p` rejects with a LoopkitError of this code and exit code; returns it. */
async function rejectsWith(p: Promise<unknown>, code: string, exitCode: number): Promise<LoopkitError> {
  try {
    const r = await p;
    (r as { lnd?: { close(): void } })?.lnd?.close();
  } catch (e) {
    assert.ok(e instanceof LoopkitError, `expected LoopkitError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.exitCode, exitCode);
    return e;
  }
  assert.fail(`expected a ${code} error`);
}

/** A 127.0.0.1 port nothing listens on (bound, then released). */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("connectLnd() returns a working client and lnd's GetInfo when the network matches", async () => {
  await withFake({ network: "regtest", blockHeight: 432 }, async (fake) => {
    const { lnd, info } = await connectLnd({ ...fake, network: "regtest" });
    try {
      assert.equal(info.blockHeight, 432);
      assert.deepEqual(info.chains, [{ chain: "bitcoin", network: "regtest" }]);
      assert.equal(info.identityPubkey, bytesToHex(fake.identityPubkey));
      assert.equal(info.syncedToChain, true);
      assert.equal(fake.calls["Lightning.GetInfo"], 1);
    } finally {
      lnd.close();
    }
  });
});

Deno.test("connectLnd() refuses an lnd on another network with network_mismatch naming both", async () => {
  await withFake({ network: "testnet" }, async (fake) => {
    const e = await rejectsWith(
      connectLnd({ ...fake, network: "mainnet" }),
      "network_mismatch",
      ExitCode.Usage,
    );
    assert.match(e.message, /"testnet"/);
    assert.match(e.message, /--network is "mainnet"/);
  });
});

Deno.test("connectLnd() tells testnet (lnd's name for testnet3) and testnet4 apart", async () => {
  assert.equal(lndNetworkName("testnet"), "testnet");
  assert.equal(lndNetworkName("testnet4"), "testnet4");
  await withFake({ network: "testnet4" }, async (fake) => {
    await rejectsWith(connectLnd({ ...fake, network: "testnet" }), "network_mismatch", ExitCode.Usage);
    const { lnd } = await connectLnd({ ...fake, network: "testnet4" });
    lnd.close();
  });
});

Deno.test("connectLnd() with a wrong macaroon fails with lnd_auth (exit 2) naming --macaroonpath", async () => {
  await withFake({}, async (fake) => {
    const other = `${fake.dir}/other.macaroon`;
    await Deno.writeFile(other, new Uint8Array([2, 1, 3, 0x6c, 0x6e, 0x64, 0, 0]));
    const e = await rejectsWith(
      connectLnd({ ...fake, macaroonPath: other, network: "regtest" }),
      "lnd_auth",
      ExitCode.Usage,
    );
    assert.match(e.message, /--macaroonpath/);
    assert.match(e.message, /verification failed/);
  });
});

Deno.test("connectLnd() with a missing or empty cert or macaroon file fails with exit 2 naming the flag and path", async () => {
  await withFake({}, async (fake) => {
    const missing = `${fake.dir}/nope`;
    let e = await rejectsWith(
      connectLnd({ ...fake, tlsCertPath: missing, network: "regtest" }),
      "config_invalid",
      ExitCode.Usage,
    );
    assert.match(e.message, /--tlscertpath/);
    assert.ok(e.message.includes(missing));
    assert.match(e.message, /not found/);
    e = await rejectsWith(
      connectLnd({ ...fake, macaroonPath: missing, network: "regtest" }),
      "config_invalid",
      ExitCode.Usage,
    );
    assert.match(e.message, /--macaroonpath/);
    assert.ok(e.message.includes(missing));
    const empty = `${fake.dir}/empty.macaroon`;
    await Deno.writeFile(empty, new Uint8Array());
    e = await rejectsWith(
      connectLnd({ ...fake, macaroonPath: empty, network: "regtest" }),
      "config_invalid",
      2,
    );
    assert.match(e.message, /empty/);
    assert.equal(fake.calls["Lightning.GetInfo"], undefined); // never connected
  });
});

Deno.test("connectLnd() with another node's certificate fails with lnd_tls (exit 2) naming --tlscertpath", async () => {
  await withFake({}, async (fake) => {
    const otherDir = await Deno.makeTempDir();
    try {
      await generateTestCert(otherDir);
      const e = await rejectsWith(
        connectLnd({ ...fake, tlsCertPath: `${otherDir}/tls.cert`, network: "regtest" }),
        "lnd_tls",
        ExitCode.Usage,
      );
      assert.match(e.message, /--tlscertpath/);
    } finally {
      await Deno.remove(otherDir, { recursive: true });
    }
  });
});

Deno.test("connectLnd() to a stopped lnd fails fast with lnd_unreachable (exit 75) naming --rpcserver", async () => {
  const fake = await startFakeLnd();
  const files = await Deno.makeTempDir();
  try {
    await Deno.copyFile(fake.tlsCertPath, `${files}/tls.cert`);
    await Deno.copyFile(fake.macaroonPath, `${files}/admin.macaroon`);
    const rpcServer = fake.rpcServer;
    await fake.stop();
    const started = Date.now();
    const e = await rejectsWith(
      connectLnd({
        rpcServer,
        tlsCertPath: `${files}/tls.cert`,
        macaroonPath: `${files}/admin.macaroon`,
        network: "regtest",
      }),
      "lnd_unreachable",
      ExitCode.TempFail,
    );
    assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
    assert.ok(e.message.includes(`${rpcServer} (--rpcserver)`), e.message);
  } finally {
    await fake.stop();
    await Deno.remove(files, { recursive: true });
  }
});

Deno.test("connectLnd() to a closed port via localhost fails with lnd_unreachable within the connect timeout", async () => {
  await withFake({}, async (fake) => {
    const rpcServer = `localhost:${closedPort()}`;
    const started = Date.now();
    const e = await rejectsWith(
      connectLnd({ ...fake, rpcServer, network: "regtest", connectTimeoutMs: 2000 }),
      "lnd_unreachable",
      ExitCode.TempFail,
    );
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    assert.ok(e.message.includes(rpcServer));
  });
});

Deno.test("connectLnd() to a host that never answers gives up at the connect deadline with lnd_unreachable", async () => {
  // A TCP listener that accepts but never speaks TLS: the handshake hangs until the deadline.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const c of silent) conns.push(c);
    } catch { /* listener closed */ }
  })();
  try {
    await withFake({}, async (fake) => {
      const rpcServer = `127.0.0.1:${(silent.addr as Deno.NetAddr).port}`;
      const started = Date.now();
      await rejectsWith(
        connectLnd({ ...fake, rpcServer, network: "regtest", connectTimeoutMs: 500 }),
        "lnd_unreachable",
        ExitCode.TempFail,
      );
      const took = Date.now() - started;
      assert.ok(took >= 400 && took < 3000, `took ${took} ms`);
    });
  } finally {
    silent.close();
    await accepting;
    for (const c of conns) c.close();
  }
});

Deno.test("connectLnd() with a --tlscertpath file that is no certificate names the file (exit 2), never 'self-signed certificate'", async () => {
  await withFake({}, async (fake) => {
    for (
      const [name, text, why] of [
        ["garbage.cert", "this is not a certificate\n", /not a PEM certificate/],
        ["broken.cert", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", /does not parse/],
      ] as const
    ) {
      const path = `${fake.dir}/${name}`;
      await Deno.writeTextFile(path, text);
      const e = await rejectsWith(
        connectLnd({ ...fake, tlsCertPath: path, network: "regtest" }),
        "config_invalid",
        ExitCode.Usage,
      );
      assert.match(e.message, /--tlscertpath/);
      assert.ok(e.message.includes(path));
      assert.match(e.message, why);
      assert.doesNotMatch(e.message, /self[- ]signed/);
    }
    assert.equal(fake.calls["Lightning.GetInfo"], undefined);
  });
});

Deno.test("connectLnd() to a plaintext port is a configuration error (lnd_tls, exit 2) asking for lnd's gRPC port, with no empty 'Resolution note'", async () => {
  await withFake({}, async (fake) => {
    const http = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("not grpc"),
    );
    try {
      const e = await rejectsWith(
        connectLnd({ ...fake, rpcServer: `127.0.0.1:${http.addr.port}`, network: "regtest" }),
        "lnd_tls",
        ExitCode.Usage,
      );
      assert.match(e.message, /did not answer with TLS/);
      assert.match(e.message, /--rpcserver/);
      assert.doesNotMatch(e.message, /Resolution note/);
    } finally {
      await http.shutdown();
    }
  });
});

Deno.test("connectLnd() to a closed port: the message does not end in an empty 'Resolution note:'", async () => {
  await withFake({}, async (fake) => {
    const e = await rejectsWith(
      connectLnd({ ...fake, rpcServer: `127.0.0.1:${closedPort()}`, network: "regtest" }),
      "lnd_unreachable",
      ExitCode.TempFail,
    );
    assert.doesNotMatch(e.message, /Resolution note:\s*$/);
  });
});
