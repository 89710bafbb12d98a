import assert from "node:assert/strict";
import { LoopkitError } from "../core/errors.ts";
import { startFakeLnd } from "../tests/fakelnd/server.ts";
import { lndProtoDir, openLndRpc, parseRpcServer, PROTO_DIR_ENV, serverStream, unary } from "./rpc.ts";

Deno.test("parseRpcServer() accepts host:port and [v6]:port and rejects the rest naming --rpcserver", () => {
  assert.deepEqual(parseRpcServer("localhost:10009"), { host: "localhost", port: 10009 });
  assert.deepEqual(parseRpcServer("127.0.0.1:1"), { host: "127.0.0.1", port: 1 });
  assert.deepEqual(parseRpcServer("[::1]:10009"), { host: "::1", port: 10009 });
  for (const bad of ["localhost", "localhost:", ":10009", "host:0", "host:65536", "::1:10009", "a b:1"]) {
    assert.throws(() => parseRpcServer(bad), (e: unknown) => {
      assert.ok(e instanceof LoopkitError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, new RegExp(`--rpcserver "${bad.replace(/[[\]]/g, "\\$&")}"`));
      return true;
    }, bad);
  }
});

Deno.test("lndProtoDir() finds lightning.proto in the lightning package and honours LOOPKIT_LND_PROTO_DIR", async () => {
  const dir = lndProtoDir();
  assert.ok((await Deno.stat(`${dir}/lightning.proto`)).isFile);
  const empty = await Deno.makeTempDir();
  const before = Deno.env.get(PROTO_DIR_ENV);
  try {
    Deno.env.set(PROTO_DIR_ENV, dir);
    assert.equal(lndProtoDir(), dir);
    Deno.env.set(PROTO_DIR_ENV, empty);
    assert.throws(() => lndProtoDir(), (e: unknown) => {
      assert.ok(e instanceof LoopkitError);
      assert.equal(e.code, "lnd_protos_missing");
      assert.match(e.message, new RegExp(`${PROTO_DIR_ENV}="${empty}" has no lightning.proto`));
      return true;
    });
  } finally {
    if (before === undefined) Deno.env.delete(PROTO_DIR_ENV);
    else Deno.env.set(PROTO_DIR_ENV, before);
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("openLndRpc() sends the macaroon as hex metadata on unary calls over TLS to an IP address", async () => {
  const fake = await startFakeLnd({ network: "signet", blockHeight: 321 });
  const rpc = openLndRpc({
    rpcServer: fake.rpcServer,
    tlsCert: await Deno.readFile(fake.tlsCertPath),
    macaroon: await Deno.readFile(fake.macaroonPath),
  });
  try {
    const info = await unary<{ block_height: number; chains: { network: string }[] }>(
      rpc.lightning,
      "GetInfo",
      {},
    );
    assert.equal(info.block_height, 321);
    assert.equal(info.chains[0].network, "signet");
    assert.equal(fake.calls["Lightning.GetInfo"], 1);
  } finally {
    rpc.close();
    rpc.close(); // idempotent
    await fake.stop();
  }
});

Deno.test("serverStream() cancels the call when the consumer leaves the loop early", async () => {
  const fake = await startFakeLnd();
  const rpc = openLndRpc({
    rpcServer: fake.rpcServer,
    tlsCert: await Deno.readFile(fake.tlsCertPath),
    macaroon: await Deno.readFile(fake.macaroonPath),
  });
  try {
    const stream = serverStream(rpc.chainNotifier, "RegisterConfirmationsNtfn", {
      txid: new Uint8Array(32).fill(0x11),
      script: new Uint8Array([0x51]),
      num_confs: 1,
      height_hint: 80,
    });
    const first = stream.next(); // starts the call; the fake then waits for a confirmation
    await waitFor(() => fake.openStreams() === 1);
    fake.setConfirmation("11".repeat(32), { blockHeight: 90 });
    assert.equal((await first).done, false);
    await stream.return(); // what `break` in a for-await loop does
    await waitFor(() => fake.openStreams() === 0); // the server saw the cancellation
  } finally {
    rpc.close();
    await fake.stop();
  }
});

async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
