/**
 * Integration test of the regtest harness against real btcd and lnd binaries.
 *
 * Needs the binaries built by `.ci/install-regtest.sh`. Without them the test is ignored, except under
 * `CI=true`, where a missing binary fails the run.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { unary } from "../../lnd/rpc.ts";
import { type LndNode, startRegtest } from "./harness.ts";
import { waitFor } from "./_process.ts";
import { assertBinaries, missingBinaries, skipRegtest } from "./suite.ts";

if (skipRegtest) {
  console.warn(
    `regtest: ignored, binaries missing (${missingBinaries.join(", ")}): run .ci/install-regtest.sh`,
  );
}

Deno.test({
  name:
    "startRegtest() runs btcd with two synced lnd nodes, a channel, mining, payments, restore and restart",
  ignore: skipRegtest,
  async fn() {
    assertBinaries();
    const t0 = performance.now();
    const net = await startRegtest({ lndNodes: ["alice", "bob"] });
    try {
      console.log(`regtest: network ready in ${net.startupMs} ms`);
      for (const node of [net.alice, net.bob]) {
        const info = await node.getInfo();
        assertEquals(info.chains, [{ chain: "bitcoin", network: "regtest" }], `${node.name} chains`);
        assert(info.syncedToChain, `${node.name} reports synced_to_chain`);
        assertEquals(info.blockHeight, await net.bestHeight(), `${node.name} height equals btcd's tip`);
        assertEquals(info.identityPubkey, node.pubkey);
        assertEquals(node.seed.length, 24, `${node.name} keeps its 24-word aezeed mnemonic`);
      }
      assert(net.channel, "a channel was opened");
      assertEquals(net.channel.capacitySat, 5_000_000n);

      const before = await net.bestHeight();
      const hashes = await net.mine(2);
      assertEquals(hashes.length, 2);
      assertEquals(await net.bestHeight(), before + 2);
      assertEquals((await net.alice.getInfo()).blockHeight, before + 2, "mine() waits for lnd to sync");

      const address = await net.bob.newAddress("p2tr");
      const amountSat = 123_456n;
      const txid = await net.sendToAddress(address, amountSat);
      assertEquals(await net.blockHeightOfTx(txid), undefined, "unconfirmed tx has no height");
      const [blockHash] = await net.mine(1);
      const height = await net.blockHeightOfTx(txid);
      assertEquals(height, before + 3);
      assertEquals((await net.btcd.rpc.getBlockHeader(blockHash)).height, height);
      // bob's wallet sees the payment confirmed at that height.
      const utxos = await listUnspent(net.bob, txid);
      assertEquals(utxos, [{ amountSat, address }]);

      // The kept aezeed mnemonic is alice's real seed: a node restored from it has her identity key
      // and, after its recovery scan, her on-chain funds.
      const aliceBalance = (await net.alice.walletBalance()).confirmedSat;
      const restored = await net.startNode("alice-restored", { seed: net.alice.seed, recoveryWindow: 50 });
      assertEquals(restored.pubkey, net.alice.pubkey, "restored node has alice's identity key");
      await waitFor("alice-restored to recover alice's confirmed balance", async () => {
        return (await restored.walletBalance()).confirmedSat === aliceBalance;
      }, { timeoutMs: 60_000, process: restored.process });

      // A stopped node restarts from its directory: the wallet is unlocked with the password.
      await net.bob.stop();
      const bobAgain = await net.startNode("bob-again", { dir: net.bob.dir });
      assertEquals(bobAgain.pubkey, net.bob.pubkey, "restarted bob keeps his identity key");
      assertEquals(bobAgain.seed, net.bob.seed);
    } finally {
      await net.stop();
    }
    console.log(`regtest: test body ${Math.round(performance.now() - t0)} ms (start ${net.startupMs} ms)`);
  },
});

/** bob's confirmed wallet outputs created by `txid` (`lnrpc.Lightning/ListUnspent`). */
async function listUnspent(node: LndNode, txid: string): Promise<{ amountSat: bigint; address: string }[]> {
  const res = await unary<
    { utxos: { outpoint: { txid_str: string }; amount_sat: string; address: string }[] }
  >(
    node.rpc.lightning,
    "ListUnspent",
    { min_confs: 1, max_confs: 1000 },
  );
  return res.utxos.filter((u) => u.outpoint.txid_str === txid).map((u) => ({
    amountSat: BigInt(u.amount_sat),
    address: u.address,
  }));
}
