/**
 * lnd's `WalletKit.ListUnspent{account: "imported"}` on a real regtest network (btcd + lnd alice and bob, the
 * local swap server): it returns exactly the outputs paying the static address (imported into lnd with
 * `ImportTapscript`) and none of alice's own wallet outputs; the full listing holds them too. `deposits sync`
 * reads the filtered view first (core/deposits/sync.ts), so this is the fact it rests on. Also pins what lnd
 * answers for an account name it does not know.
 *
 * Ignored without the regtest binaries unless CI=true (then missing binaries fail).
 */
import { hex } from "@scure/base";
import { assert, assertEquals } from "../assert.ts";
import { GrpcLndClient } from "../../lnd/grpc_client.ts";
import { regtestBinaries, startRegtest } from "./harness.ts";
import { cliFlagsFor, startSwapPeer } from "./swap_peer.ts";
import { runCli } from "../cli/_harness.ts";

const bins = await regtestBinaries();
const inCi = Deno.env.get("CI") === "true";
const skip = bins.missing.length > 0 && !inCi;

Deno.test({
  name: 'regtest: ListUnspent account "imported" returns exactly the static-address outputs',
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (bins.missing.length > 0) throw new Error(`Regtest binaries missing under CI=true: ${bins.missing}`);
    const net = await startRegtest({ lndNodes: ["alice", "bob"] });
    const { server } = await startSwapPeer(net.bob, { expiry: 144 });
    const loopdir = await Deno.makeTempDir({ prefix: "loopkit-regtest-imported-" });
    const alice = net.alice;
    const lnd = new GrpcLndClient(alice.rpc);
    const cli = (...args: string[]) => runCli([...cliFlagsFor(alice, loopdir), ...args]);
    try {
      const created = await cli(
        "--json",
        "address",
        "new",
        "--swapserver",
        server.address,
        "--no-swapserver-tls",
      );
      assertEquals(created.code, 0, created.stderr);
      const address = created.json?.address as string;
      const pkScript = created.json?.pk_script as string;

      // Two deposits (one confirmed, one in the mempool) and a payment to alice's own wallet.
      const confirmedTxid = await net.sendToAddress(address, 200_000n);
      const own = await alice.newAddress("p2tr");
      const ownTxid = await net.sendToAddress(own, 150_000n);
      await net.mine(1);
      const mempoolTxid = await net.sendToAddress(address, 300_000n);
      const depositTxids = [confirmedTxid, mempoolTxid].sort();

      await t.step("imported: exactly the outputs paying the static address, 0-conf included", async () => {
        let imported: Awaited<ReturnType<typeof lnd.listUnspent>> = [];
        for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
          imported = await lnd.listUnspent(0, 0, { account: "imported" });
          if (imported.length >= 2) break;
          await new Promise((res) => setTimeout(res, 300));
        }
        assertEquals(imported.map((u) => u.txid).sort(), depositTxids);
        for (const u of imported) assertEquals(hex.encode(u.pkScript), pkScript);
        assertEquals(
          imported.map((u) => [u.amountSat, u.confirmations > 0]).sort((a, b) => Number(a[0]) - Number(b[0])),
          [[200_000n, true], [300_000n, false]],
        );
      });

      await t.step("the full listing holds the deposits and alice's own outputs", async () => {
        const all = await lnd.listUnspent(0, 0);
        const ours = all.filter((u) => hex.encode(u.pkScript) === pkScript);
        assertEquals(ours.map((u) => u.txid).sort(), depositTxids);
        assert(all.some((u) => u.txid === ownTxid), "alice's own output is missing from the full listing");
        assert(all.length > ours.length + 1, `full listing has only ${all.length} outputs`);
        const dflt = await lnd.listUnspent(0, 0, { account: "default" });
        assert(dflt.some((u) => u.txid === ownTxid), "alice's own output is not in the default account");
        assertEquals(dflt.filter((u) => hex.encode(u.pkScript) === pkScript), []);
      });

      await t.step("an account name lnd does not know answers an empty list, not an error", async () => {
        // Why sync never concludes "gone" from the filtered view alone: a wrong name looks like "no outputs".
        assertEquals(await lnd.listUnspent(0, 0, { account: "loopkit-no-such-account" }), []);
      });

      await t.step("deposits sync sees both deposits", async () => {
        const r = await cli("--json", "deposits", "sync");
        assertEquals(r.code, 0, r.stdout + r.stderr);
        assertEquals(r.json?.wallet_deposits, 2, r.stdout);
      });
    } finally {
      await server.stop();
      await net.stop();
      await Deno.remove(loopdir, { recursive: true });
    }
  },
});
