/**
 * Issue 5 acceptance on a real regtest network (btcd + lnd alice and bob) with the local swap server giving a
 * short CSV expiry: a BIP-125 replacement of a deposit the test signs itself, the confirmation height of a
 * deposit that confirmed while loopkit was not running, and the expiry sweep through the timeout path accepted
 * by btcd, confirmed, and back in alice's wallet.
 *
 * Ignored without the regtest binaries unless CI=true (then missing binaries fail).
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { hex } from "@scure/base";
import { p2wpkh, RawTx, Transaction } from "@scure/btc-signer";
import { assert, assertEquals } from "../assert.ts";
import { unary } from "../../lnd/rpc.ts";
import { REGTEST_NETWORK } from "./miner_wallet.ts";
import { regtestTest } from "./suite.ts";

/** CSV expiry the local swap server hands out: short, so the test can mine past it. */
const CSV = 12;

type Json = Record<string, unknown>;

/** A key the test holds itself, funded by the miner, that signs BIP-125 transactions. */
function testKey() {
  const secret = secp256k1.utils.randomSecretKey();
  const pay = p2wpkh(secp256k1.getPublicKey(secret, true), REGTEST_NETWORK);
  return {
    address: pay.address!,
    script: pay.script,
    /** Spends `prev` (paying this key) to `outputs`, signalling replaceability (nSequence 0xfffffffd). */
    spend(
      prev: { txid: string; vout: number; amountSat: bigint },
      outputs: { address: string; amountSat: bigint }[],
    ) {
      const tx = new Transaction({ version: 2 });
      tx.addInput({
        txid: prev.txid,
        index: prev.vout,
        sequence: 0xfffffffd,
        witnessUtxo: { script: pay.script, amount: prev.amountSat },
      });
      for (const o of outputs) tx.addOutputAddress(o.address, o.amountSat, REGTEST_NETWORK);
      tx.sign(secret);
      tx.finalize();
      return { hex: tx.hex, txid: tx.id };
    },
  };
}

regtestTest(
  "regtest: deposit replacement, heights of deposits confirmed while loopkit was off, expiry sweep",
  { expiry: CSV },
  async ({ net, cli, newAddress }, t) => {
    const alice = net.alice;
    const btcd = net.btcd.rpc;
    const sync = async () => {
      const r = await cli("--json", "deposits", "sync");
      assertEquals(r.code, 0, r.stdout + r.stderr);
      return r.json as { changes: Json[]; sweeps: Json[]; tip_height: number };
    };
    /** Syncs until `pred` holds (lnd learns of mempool transactions asynchronously), bounded. */
    const syncUntil = async (what: string, pred: (r: { changes: Json[]; sweeps: Json[] }) => boolean) => {
      const seen: Json[] = [];
      for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
        const r = await sync();
        seen.push(...r.changes);
        if (pred({ changes: seen, sweeps: r.sweeps })) return seen;
        await new Promise((res) => setTimeout(res, 500));
      }
      throw new Error(`Timed out waiting for ${what}; changes seen: ${JSON.stringify(seen)}`);
    };
    const voutPaying = async (txid: string, script: Uint8Array) => {
      const tx = RawTx.decode(hex.decode(await btcd.getRawTransactionHex(txid)));
      const i = tx.outputs.findIndex((o) => hex.encode(o.script) === hex.encode(script));
      assert(i >= 0, `no output of ${txid} pays ${hex.encode(script)}`);
      return i;
    };
    const list = async (...args: string[]) =>
      ((await cli("--json", "deposits", "list", ...args)).json?.deposits ?? []) as Json[];
    const created = await newAddress();
    assertEquals(created.code, 0, created.stderr);
    const address = created.json?.address as string;
    assertEquals(created.json?.expiry, CSV);
    /**
     * Funds a fresh test key with `fundSat` (1 confirmation), then spends it to the static address as a
     * replaceable deposit of `depositSat` (output 0) and syncs until loopkit has seen it at 0 conf.
     */
    const replaceableDeposit = async (fundSat: bigint, depositSat: bigint) => {
      const key = testKey();
      const fundTxid = await net.sendToAddress(key.address, fundSat);
      await net.mine(1);
      const prev = { txid: fundTxid, vout: await voutPaying(fundTxid, key.script), amountSat: fundSat };
      const original = key.spend(prev, [{ address, amountSat: depositSat }]);
      await btcd.sendRawTransaction(original.hex);
      await syncUntil(
        "the 0-conf deposit",
        (r) => r.changes.some((c) => c.outpoint === `${original.txid}:0`),
      );
      return { key, prev, original };
    };

    await t.step(
      "a BIP-125 replacement paying elsewhere makes the original Replaced: hidden, shown with --all",
      async () => {
        const { key, prev, original } = await replaceableDeposit(300_000n, 299_000n);
        // The replacement pays alice's own wallet (elsewhere than the static address), at a higher fee.
        const elsewhere = await alice.newAddress();
        const replacement = key.spend(prev, [{ address: elsewhere, amountSat: 290_000n }]);
        await btcd.sendRawTransaction(replacement.hex);
        assert(!(await btcd.getRawMempool()).includes(original.txid), "btcd kept the original");
        await net.mine(1);
        await syncUntil(
          "Replaced",
          (r) => r.changes.some((c) => c.outpoint === `${original.txid}:0` && c.change === "replaced"),
        );
        assertEquals((await list()).some((d) => d.outpoint === `${original.txid}:0`), false);
        const all = await list("--all");
        assertEquals(all.find((d) => d.outpoint === `${original.txid}:0`)?.state, "Replaced");
      },
    );

    await t.step("a replacement that also pays the static address becomes a new deposit", async () => {
      const { key, prev, original } = await replaceableDeposit(400_000n, 399_000n);
      const replacement = key.spend(prev, [{ address, amountSat: 390_000n }]);
      await btcd.sendRawTransaction(replacement.hex);
      await net.mine(1);
      const seen = await syncUntil(
        "the replacement deposit",
        (r) =>
          r.changes.some((c) => c.outpoint === `${replacement.txid}:0` && c.change === "created") &&
          r.changes.some((c) => c.outpoint === `${original.txid}:0` && c.change === "replaced"),
      );
      const fresh = seen.find((c) => c.outpoint === `${replacement.txid}:0`)!;
      assertEquals(fresh.value_sat, "390000");
      const shown = await list();
      assertEquals(shown.find((d) => d.outpoint === `${replacement.txid}:0`)?.state, "Deposited");
      assertEquals(shown.some((d) => d.outpoint === `${original.txid}:0`), false);
    });

    let expiring = "";
    let confHeight = 0;
    await t.step("a deposit that confirmed while loopkit was off gets btcd's block height", async () => {
      const txid = await net.sendToAddress(address, 250_000n);
      await net.mine(5); // loopkit is not running while it confirms and gets buried
      const r = await sync();
      const c = r.changes.find((x) => (x.outpoint as string).startsWith(txid));
      assert(c, `deposit ${txid} not created: ${JSON.stringify(r.changes)}`);
      confHeight = (await net.blockHeightOfTx(txid))!;
      assertEquals(c.change, "created");
      assertEquals(c.confirmation_height, String(confHeight));
      expiring = c.outpoint as string;
      const [d] = await list("--outpoint", expiring);
      assertEquals(d.blocks_until_expiry, String(confHeight + CSV - (await net.bestHeight())));
    });

    await t.step(
      "expiry: nothing at C + E − 1; the sweep at C + E is accepted by btcd; Expired after 3 confirmations",
      async () => {
        const sweepsFor = (r: { sweeps: Json[] }) => r.sweeps.filter((s) => s.outpoint === expiring);
        const tip = await net.bestHeight();
        if (tip < confHeight + CSV - 1) await net.mine(confHeight + CSV - 1 - tip);
        assertEquals(await net.bestHeight(), confHeight + CSV - 1);
        assertEquals(sweepsFor(await sync()), []);
        const [before] = await list("--outpoint", expiring);
        assertEquals(before.state, "Deposited");

        await net.mine(1); // tip = C + E
        const r = await sync();
        const [sweep] = sweepsFor(r);
        assert(sweep, `no sweep at C + E: ${JSON.stringify(r)}`);
        assertEquals(
          [sweep.action, sweep.state],
          ["published", "WaitForExpirySweep"],
          JSON.stringify(sweep),
        );
        const sweepTxid = sweep.txid as string;
        assert((await btcd.getRawMempool()).includes(sweepTxid), "btcd's mempool does not hold the sweep");
        const raw = RawTx.decode(hex.decode(await btcd.getRawTransactionHex(sweepTxid)));
        assertEquals(raw.inputs[0].sequence, CSV);
        assertEquals(`${hex.encode(Uint8Array.from(raw.inputs[0].txid))}:${raw.inputs[0].index}`, expiring);

        // Running again publishes the same transaction, nothing new.
        const again = sweepsFor(await sync());
        assertEquals(again.map((s) => [s.action, s.txid]), [["republished", sweepTxid]]);

        await net.mine(3);
        const done = sweepsFor(await sync());
        assertEquals(done.map((s) => [s.action, s.state]), [["confirmed", "Expired"]]);
        assertEquals(await net.blockHeightOfTx(sweepTxid), confHeight + CSV + 1);
        const [after] = await list("--outpoint", expiring);
        assertEquals([after.state, after.expiry_sweep_txid], ["Expired", sweepTxid]);
        // The funds are back in alice's wallet: the sweep output is one of her UTXOs.
        const utxos = await unary<{ utxos: { outpoint: { txid_str: string }; amount_sat: string }[] }>(
          alice.rpc.walletKit,
          "ListUnspent",
          { min_confs: 1, max_confs: 0 },
        );
        const back = utxos.utxos.find((u) => u.outpoint.txid_str === sweepTxid);
        assert(back, "the sweep output is not in alice's wallet");
        assert(BigInt(back.amount_sat) > 250_000n - 50_000n && BigInt(back.amount_sat) < 250_000n);
        // And nothing more happens for it.
        const quiet = await sync();
        assertEquals(sweepsFor(quiet), []);
        const summary = await cli("--json", "deposits", "summary");
        assertEquals(BigInt(summary.json?.value_expired_satoshis as string) >= 250_000n, true);
      },
    );
  },
);
