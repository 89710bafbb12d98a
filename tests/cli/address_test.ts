/**
 * `loopkit address new|show` and `deposits sync|list` as subprocesses: a fake lnd gRPC server (alice) that
 * pays the invoices of the local swap server (an L402-gated gRPC server on 127.0.0.1), and a real libSQL file.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import { assertEquals, assertStringIncludes } from "../assert.ts";
import { startFakeLnd } from "../fakelnd/server.ts";
import { startSwapServer, type SwapServerMisbehaviour } from "../swapserver/server.ts";
import { InProcessLightning } from "../swapserver/lightning.ts";
import { staticAddress } from "../../core/staticaddr/script.ts";
import { lndFlags, runCli, spawnCli, waitFor } from "./_harness.ts";
import { treeHash } from "../fs.ts";

async function setup(misbehave?: SwapServerMisbehaviour) {
  const lnd = await startFakeLnd({ network: "regtest", blockHeight: 777 });
  const bob = new InProcessLightning("regtest");
  // Bob's invoices become payable by alice's (fake) lnd: the payment reveals bob's preimage.
  const invoices = {
    async addInvoice(amountSat: bigint, memo: string) {
      const inv = await bob.addInvoice(amountSat, memo);
      const hashHex = bytesToHex(inv.paymentHash);
      const held = bob.invoices.get(hashHex)!;
      lnd.setPayment(hashHex, {
        paymentRequest: inv.paymentRequest,
        updates: [{ status: "IN_FLIGHT" }, {
          status: "SUCCEEDED",
          preimage: held.preimage,
          valueMsat: amountSat * 1000n,
          feeMsat: 1000n,
        }],
      });
      return inv;
    },
  };
  const server = await startSwapServer({ invoices, expiry: 144, misbehave });
  const loopdir = await Deno.makeTempDir({ prefix: "loopkit-cli-addr-" });
  const flags = lndFlags(lnd, loopdir);
  const serverFlags = ["--swapserver", server.address, "--no-swapserver-tls"];
  return {
    lnd,
    server,
    loopdir,
    dataDir: `${loopdir}/regtest`,
    flags,
    cli: (...args: string[]) => runCli([...flags, ...args]),
    serverFlags,
    async [Symbol.asyncDispose]() {
      await server.stop();
      await lnd.stop();
      await Deno.remove(loopdir, { recursive: true });
    },
  };
}

Deno.test("address new pays one L402, creates the address lnd imports, writes a verifiable backup; a rerun pays nothing", async () => {
  await using t = await setup();
  const r = await t.cli("--json", "address", "new", ...t.serverFlags);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.json?.created, true);
  assertEquals(t.server.calls.challenges, 1);
  assertEquals(t.lnd.calls["Router.SendPaymentV2"], 1);
  // The address is the one our construction gives for lnd's key 42060/0 and the server's key.
  const expected = staticAddress({
    clientPubkey: t.lnd.keyRing.publicKey(42060, 0),
    serverPubkey: t.server.serverKeyAt(0),
    csvExpiry: 144,
    network: "regtest",
  });
  assertEquals(r.json?.address, expected.address);
  assertEquals(r.json?.initiation_height, 777);
  assertEquals(t.lnd.imports.length, 1);
  assertEquals((r.json?.backup as Record<string, unknown>).written, true);
  assertEquals((await Deno.stat(`${t.dataDir}/l402.token`)).mode! & 0o777, 0o600);

  const again = await t.cli("--json", "address", "new", ...t.serverFlags);
  assertEquals(again.code, 0, again.stderr);
  assertEquals(again.json?.created, false);
  assertEquals(again.json?.address, expected.address);
  assertEquals(t.server.calls.challenges, 1);
  assertEquals(t.lnd.calls["Router.SendPaymentV2"], 1);
  assertEquals((again.json?.backup as Record<string, unknown>).reason, "already_backed_up");

  const show = await t.cli("--json", "address", "show");
  assertEquals(show.json?.address, expected.address);
  assertEquals((await t.cli("backup", "verify")).code, 0);
});

for (
  const [name, misbehave] of [
    ["expiry 0", { expiry: 0 }],
    ["an expiry above the maximum", { expiry: 28801 }],
    ["a server key off the curve", { badServerKey: true }],
  ] as [string, SwapServerMisbehaviour][]
) {
  Deno.test(`address new refuses ${name}: clear error, no row, no tapscript import`, async () => {
    await using t = await setup(misbehave);
    const r = await t.cli("address", "new", ...t.serverFlags);
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stderr, "staticAddress:");
    assertEquals(t.lnd.imports.length, 0);
    const show = await t.cli("address", "show");
    assertEquals(show.code, 1);
    assertStringIncludes(show.stderr, "No static address");
  });
}

Deno.test("address new after losing the database asks for recover instead of creating a second address", async () => {
  await using t = await setup();
  const first = await t.cli("--json", "address", "new", ...t.serverFlags);
  assertEquals(first.code, 0, first.stderr);
  await Deno.remove(`${t.dataDir}/loopkit.db`);
  const again = await t.cli("--json", "address", "new", ...t.serverFlags);
  assertEquals(again.code, 1, again.stderr);
  assertStringIncludes(again.stderr, "recover_first");
  assertEquals(t.server.calls.newAddresses.length, 1);
  assertEquals(t.lnd.calls["Router.SendPaymentV2"], 1);
  assertEquals(t.lnd.calls["WalletKit.DeriveNextKey"], 1);
});

Deno.test("address new without a reachable swap server exits 75 and pays nothing", async () => {
  await using t = await setup();
  await t.server.stop();
  const r = await t.cli("address", "new", ...t.serverFlags);
  assertEquals(r.code, 75, r.stderr);
  assertStringIncludes(r.stderr, "--swapserver");
  assertEquals(t.lnd.calls["Router.SendPaymentV2"] ?? 0, 0);
});

Deno.test("deposits sync records a 0-conf deposit, backfills its height, and a rerun changes nothing", async () => {
  await using t = await setup();
  const created = await t.cli("--json", "address", "new", ...t.serverFlags);
  assertEquals(created.code, 0, created.stderr);
  const pkScript = Uint8Array.from((created.json?.pk_script as string).match(/../g)!, (h) => parseInt(h, 16));
  const txid = "ab".repeat(32);
  t.lnd.setUtxos([{ txid, vout: 1, amountSat: 250_000n, pkScript, confirmations: 0 }]);
  const first = await t.cli("--json", "deposits", "sync");
  assertEquals(first.code, 0, first.stderr);
  assertEquals(first.json?.changes, [{
    outpoint: `${txid}:1`,
    change: "created",
    state: "Deposited",
    confirmation_height: "0",
    value_sat: "250000",
  }]);
  t.lnd.setBlockHeight(780);
  t.lnd.setUtxos([{ txid, vout: 1, amountSat: 250_000n, pkScript, confirmations: 3 }]);
  const second = await t.cli("--json", "deposits", "sync");
  assertEquals((second.json?.changes as Record<string, unknown>[])[0].confirmation_height, "778");
  const before = await treeHash(t.dataDir);
  const third = await t.cli("--json", "deposits", "sync");
  assertEquals(third.json?.changes, []);
  assertEquals(await treeHash(t.dataDir), before);
  const list = await t.cli("--json", "deposits", "list");
  assertEquals((list.json?.deposits as Record<string, unknown>[]).map((d) => d.outpoint), [`${txid}:1`]);
});

Deno.test("address new interrupted by SIGTERM while lnd stalls the import: exit 130, claim released, the rerun creates the one address", async () => {
  await using t = await setup();
  t.lnd.setStall("WalletKit.ImportTapscript", true);
  const run = spawnCli([...t.flags, "--json", "address", "new", ...t.serverFlags]);
  await waitFor("the stalled ImportTapscript", () => (t.lnd.calls["WalletKit.ImportTapscript"] ?? 0) >= 1);
  run.child.kill("SIGTERM");
  const r = await run.done();
  assertEquals(r.code, 130, r.stderr);
  const err = JSON.parse(r.stderr.trim().split("\n").at(-1)!).error;
  assertEquals(err.code, "interrupted");
  assertStringIncludes(err.message, "creation claim is released");
  assertEquals((await t.cli("address", "show")).code, 1, "no address stored");

  t.lnd.setStall("WalletKit.ImportTapscript", false);
  const again = await t.cli("--json", "address", "new", ...t.serverFlags);
  assertEquals(again.code, 0, again.stderr);
  assertEquals(again.json?.created, true);
  assertEquals(t.server.calls.challenges, 1, "the token paid by the interrupted run is reused");
  assertEquals(t.lnd.calls["WalletKit.DeriveNextKey"], 1, "and its client key");
});

Deno.test("address new killed with -9 mid-creation leaves a claim that does not block the next run", async () => {
  await using t = await setup();
  t.lnd.setStall("WalletKit.ImportTapscript", true);
  const run = spawnCli([...t.flags, "--json", "address", "new", ...t.serverFlags]);
  await waitFor("the stalled ImportTapscript", () => (t.lnd.calls["WalletKit.ImportTapscript"] ?? 0) >= 1);
  run.child.kill("SIGKILL");
  assertEquals((await run.done()).code, 137);
  t.lnd.setStall("WalletKit.ImportTapscript", false);
  const again = await t.cli("--json", "address", "new", ...t.serverFlags);
  assertEquals(again.code, 0, again.stderr);
  assertEquals(again.json?.created, true);
  assertEquals(t.server.calls.challenges, 1, "the killed run's token is reused, never paid twice");
});
