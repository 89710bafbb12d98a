/**
 * `deno task compile` builds one binary that runs without the checkout: with `DENORT_BIN` pointing at a Deno
 * runtime (`denort`) the test compiles with the task's own flags into a temporary file and runs it against a
 * fake lnd over gRPC (lnd's embedded `.proto` files, the libSQL native addon, TLS, the macaroon). Without
 * `DENORT_BIN` the test is skipped with a message: `deno compile` would download the runtime, and these machines
 * have no internet.
 */
import { assert, assertEquals } from "./assert.ts";
import { lndFlags } from "./cli/_harness.ts";
import { startFakeLnd } from "./fakelnd/server.ts";
import { openDb } from "../core/db/db.ts";
import { insertStaticAddress } from "../core/db/static_addresses.ts";
import { staticAddress } from "../core/staticaddr/script.ts";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { VERSION } from "../cli/main.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const denort = Deno.env.get("DENORT_BIN");
const present = denort ? await Deno.stat(denort).then((s) => s.isFile, () => false) : false;
if (!present) {
  console.error(
    `tests/compile_test.ts: DENORT_BIN ${
      denort ? `"${denort}" is not a file` : "is not set"
    }: skipping the ` +
      "compiled-binary test (set DENORT_BIN=/path/to/denort, or run `deno task compile` with internet)",
  );
}

/** The `deno compile` arguments of `deno task compile` (deno.json), with `--output` replaced. */
async function compileArgs(output: string): Promise<string[]> {
  const task: string = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.compile;
  const words = task.split(/\s+/);
  assertEquals(words.slice(0, 2), ["deno", "compile"]);
  const i = words.indexOf("--output");
  assert(i > 0, "the compile task names its --output");
  words[i + 1] = output;
  return words.slice(1);
}

Deno.test({
  name:
    "deno task compile: the single binary runs deposits sync against lnd over gRPC, from outside the checkout",
  ignore: !present,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "loopkit-compile-" });
    const lnd = await startFakeLnd({ network: "regtest", blockHeight: 100 });
    try {
      const bin = `${dir}/loopkit`;
      const built = await new Deno.Command(Deno.execPath(), {
        args: await compileArgs(bin),
        cwd: ROOT,
        env: { DENORT_BIN: denort! },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(built.code, 0, new TextDecoder().decode(built.stderr));
      const run = async (...args: string[]) => {
        const o = await new Deno.Command(bin, { args, cwd: dir, stdout: "piped", stderr: "piped" }).output();
        return {
          code: o.code,
          stdout: new TextDecoder().decode(o.stdout),
          stderr: new TextDecoder().decode(o.stderr),
        };
      };
      const version = await run("--version");
      assertEquals([version.code, version.stdout.trim()], [0, VERSION]);
      // A database with the static address of the fake's key, then one sync over gRPC.
      const loopdir = `${dir}/loop`;
      await Deno.mkdir(`${loopdir}/regtest`, { recursive: true });
      const clientPubkey = lnd.keyRing.publicKey(42060, 0);
      const serverPubkey = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
      const a = staticAddress({ clientPubkey, serverPubkey, csvExpiry: 144, network: "regtest" });
      const db = await openDb({ url: `file:${loopdir}/regtest/loopkit.db`, network: "regtest" });
      await db.write((tx) =>
        insertStaticAddress(tx, {
          clientPubkey,
          serverPubkey,
          expiry: 144,
          clientKeyFamily: 42060,
          clientKeyIndex: 0,
          pkScript: a.pkScript,
          protocolVersion: 0,
          initiationHeight: 90,
        })
      );
      db.close();
      lnd.setUtxos([{
        txid: "ab".repeat(32),
        vout: 1,
        amountSat: 70_000n,
        pkScript: a.pkScript,
        confirmations: 2,
        account: "imported",
      }]);
      const sync = await run(...lndFlags(lnd, loopdir), "--json", "deposits", "sync");
      assertEquals(sync.code, 0, sync.stderr);
      const j = JSON.parse(sync.stdout);
      assertEquals([j.tip_height, j.changes.map((c: { change: string }) => c.change)], [100, ["created"]]);
    } finally {
      await lnd.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
