/**
 * `deno task demo` — loopkit's main job end to end on a private regtest network.
 *
 * Builds btcd and lnd from their Go modules the first time (`.ci/install-regtest.sh`), starts btcd, two lnd
 * nodes (alice, the loopkit user; bob, the swap server's node) with a channel, and the local swap server on
 * 127.0.0.1, then runs the real `loopkit` CLI as an operator would against alice:
 * `address new` → two deposits (one mined, one left in the mempool) → `deposits sync` → `deposits list` →
 * `backup write` → `backup verify` → `loopin quote` → `loopin --force` (both deposits, for less than their
 * total) → `loopin sync` until `Succeeded` → the server's cooperative sweep confirmed → the change back as a
 * new deposit → `loopin show`. Everything is stopped at the end; exit 0 on success.
 *
 * @module
 */
import { regtestBinaries, startRegtest } from "./regtest/harness.ts";
import { startSwapPeer } from "./regtest/swap_peer.ts";
import { GrpcLndClient } from "../lnd/grpc_client.ts";
import { CLI_RUN_ARGS } from "./cli/_harness.ts";
import { hex } from "@scure/base";
import { RawTx } from "@scure/btc-signer";

const t0 = performance.now();
const root = new URL("..", import.meta.url).pathname;

function say(line: string) {
  console.log(`\x1b[1m${line}\x1b[0m`);
}

async function ensureBinaries(): Promise<void> {
  let bins = await regtestBinaries();
  if (bins.missing.length === 0) return;
  const go = await new Deno.Command("sh", { args: ["-c", "command -v go || test -x /usr/local/go/bin/go"] })
    .output();
  if (!go.success) {
    console.error(
      "demo: the regtest binaries (btcd, lnd) are built from their Go modules, and Go is not installed.\n" +
        "Install Go 1.23 or newer (https://go.dev/doc/install, or `apt-get install golang`), then run `deno task demo` again.",
    );
    Deno.exit(2);
  }
  say("# building btcd and lnd from the Go module proxy (first run only, several minutes)");
  const build = await new Deno.Command("bash", {
    args: [`${root}.ci/install-regtest.sh`, "--no-loop"],
    stdout: "inherit",
  })
    .output();
  if (!build.success) {
    console.error("demo: building the regtest binaries failed (see above)");
    Deno.exit(1);
  }
  bins = await regtestBinaries();
  if (bins.missing.length) throw new Error(`still missing: ${bins.missing.join(", ")}`);
}

await ensureBinaries();
say("# starting btcd, lnd alice (loopkit's user) and bob (the swap server's node), alice→bob channel");
const net = await startRegtest({ lndNodes: ["alice", "bob"] });
const { server } = await startSwapPeer(net.bob, { expiry: 4032, btcd: net.btcd.rpc });
const loopdir = await Deno.makeTempDir({ prefix: "loopkit-demo-" });
console.log(`network ready in ${(net.startupMs / 1000).toFixed(1)} s; swap server on ${server.address}`);

// The global flags come from LOOPKIT_* environment variables, as a systemd unit would set them.
const env = {
  LOOPKIT_NETWORK: "regtest",
  LOOPKIT_LOOPDIR: loopdir,
  LOOPKIT_RPCSERVER: net.alice.rpcServer,
  LOOPKIT_TLSCERTPATH: net.alice.tlsCertPath,
  LOOPKIT_MACAROONPATH: net.alice.adminMacaroonPath,
  NO_COLOR: "1",
};
console.log(
  Object.entries(env).filter(([k]) => k.startsWith("LOOPKIT")).map(([k, v]) => `  ${k}=${v}`).join("\n"),
);

async function loopkit(...args: string[]): Promise<string> {
  return await run({ quiet: false }, ...args);
}

/** Runs `loopkit <args>`; `quiet` skips echoing the command and its output (for polling loops). */
async function run(opts: { quiet: boolean }, ...args: string[]): Promise<string> {
  if (!opts.quiet) say(`\n$ loopkit ${args.join(" ")}`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...CLI_RUN_ARGS, ...args],
    env,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!opts.quiet) console.log(text.trimEnd());
  if (!out.success) throw new Error(`loopkit ${args.join(" ")} exited ${out.code}`);
  return text;
}

let failed = false;
try {
  await loopkit("address", "new", "--swapserver", server.address, "--no-swapserver-tls");
  const shown = JSON.parse(await loopkit("--json", "address", "show"));
  const address: string = shown.address;

  say(`\n# two deposits to ${address}: one mined, one left in the mempool`);
  const mined = await net.sendToAddress(address, 250_000n);
  await net.mine(1);
  const pending = await net.sendToAddress(address, 100_000n);
  console.log(`mined deposit   ${mined} (block ${await net.blockHeightOfTx(mined)})`);
  console.log(`mempool deposit ${pending}`);
  // lnd sees a mempool transaction a moment after btcd accepted it: wait (bounded) until both are visible.
  const wallet = new GrpcLndClient(net.alice.rpc);
  const deadline = Date.now() + 30_000;
  while (true) {
    const seen = new Set((await wallet.listUnspent(0, 0)).map((u) => u.txid));
    if (seen.has(mined) && seen.has(pending)) break;
    if (Date.now() > deadline) throw new Error("alice's wallet did not see both deposits within 30 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  await loopkit("deposits", "sync");
  await loopkit("deposits", "list");
  await loopkit("backup", "write");
  await loopkit("backup", "verify");

  say("\n# loop-in: swap both deposits for a Lightning payment to alice, 300 000 of their 350 000 sat");
  const serverFlags = ["--swapserver", server.address, "--no-swapserver-tls"];
  const listed = JSON.parse(await run({ quiet: true }, "--json", "deposits", "list")).deposits as {
    outpoint: string;
  }[];
  const utxos = [mined, pending].flatMap((txid) => {
    const d = listed.find((x) => x.outpoint.startsWith(`${txid}:`));
    if (!d) throw new Error(`deposit ${txid} is not listed`);
    return ["--utxo", d.outpoint];
  });
  await loopkit("loopin", "quote", "300000", ...utxos, ...serverFlags);
  const started = JSON.parse(
    await loopkit("--json", "loopin", "300000", ...utxos, "--force", ...serverFlags),
  );
  const swapHash: string = started.swap_hash;
  say("\n# loopin sync (a timer would run it): until the server has paid and the swap is Succeeded");
  for (const deadline = Date.now() + 120_000;;) {
    await run({ quiet: true }, "loopin", "sync", "--listen", "5s", ...serverFlags);
    const shown = JSON.parse(await run({ quiet: true }, "--json", "loopin", "show", swapHash));
    console.log(`state ${shown.state}`);
    if (shown.state === "Succeeded") break;
    if (Date.now() > deadline) throw new Error(`swap ${swapHash} not Succeeded within 120 s`);
  }
  say("\n# the server sweeps both deposits cooperatively (MuSig2 key path), the change back to the address");
  const spent = new Set(utxos.filter((_, i) => i % 2 === 1));
  let sweepTxid = "";
  for (const deadline = Date.now() + 120_000; !sweepTxid;) {
    await run({ quiet: true }, "loopin", "sync", "--listen", "5s", ...serverFlags);
    for (const txid of await net.btcd.rpc.getRawMempool()) {
      const tx = RawTx.decode(hex.decode(await net.btcd.rpc.getRawTransactionHex(txid)));
      if (tx.inputs.some((i) => spent.has(`${hex.encode(Uint8Array.from(i.txid))}:${i.index}`))) {
        sweepTxid = txid;
      }
    }
    if (!sweepTxid && Date.now() > deadline) throw new Error("no cooperative sweep within 120 s");
  }
  await net.mine(1);
  console.log(`sweep ${sweepTxid} confirmed in block ${await net.blockHeightOfTx(sweepTxid)}`);
  await loopkit("deposits", "sync");
  await loopkit("deposits", "list");
  await loopkit("loopin", "show", swapHash);
} catch (err) {
  failed = true;
  console.error(`demo failed: ${(err as Error).message}`);
} finally {
  await server.stop();
  await net.stop();
  await Deno.remove(loopdir, { recursive: true });
}
say(`\n# demo ${failed ? "FAILED" : "done"} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
Deno.exit(failed ? 1 : 0);
