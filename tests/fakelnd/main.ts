/**
 * Runs the fake lnd as its own process, for tests that need lnd to disappear abruptly (kill the
 * process) or for CLI smoke tests that only need keys, ECDH and GetInfo.
 *
 * Usage: `deno run --allow-net --allow-read --allow-write --allow-env --allow-run=openssl
 *   tests/fakelnd/main.ts [--network regtest] [--seed <hex>] [--block-height 100]`
 *
 * Prints one JSON line `{"rpcServer","tlsCertPath","macaroonPath","dir","network"}` on stdout once
 * it listens, then serves until stdin closes or SIGINT/SIGTERM arrives, stops (removing its temp
 * dir) and exits 0. Killed with SIGKILL it leaves its temp dir behind (under the system temp dir,
 * prefix `loopkit-fakelnd-`).
 *
 * @module
 */
import { hexToBytes } from "@noble/hashes/utils.js";
import { startFakeLnd } from "./server.ts";

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

if (import.meta.main) {
  const network = flag("network") ?? "regtest";
  const seedHex = flag("seed");
  const height = flag("block-height");
  const fake = await startFakeLnd({
    network,
    seed: seedHex ? hexToBytes(seedHex) : undefined,
    blockHeight: height ? Number(height) : undefined,
  });
  console.log(JSON.stringify({
    rpcServer: fake.rpcServer,
    tlsCertPath: fake.tlsCertPath,
    macaroonPath: fake.macaroonPath,
    dir: fake.dir,
    network,
  }));
  const { promise: done, resolve } = Promise.withResolvers<void>();
  const onSignal = () => resolve();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  (async () => {
    for await (const _ of Deno.stdin.readable) { /* ignore input */ }
    resolve();
  })();
  await done;
  await fake.stop();
  Deno.exit(0);
}
