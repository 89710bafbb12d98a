/**
 * Static loop-in acceptance on a real regtest network (btcd + lnd alice and bob, alice→bob channel with 1 M
 * sat pushed to bob) and the local swap server paying from bob: a loop-in of two deposits (one confirmed,
 * one still in the mempool) for less than their total, followed with `loopin sync` to `Succeeded`; the
 * invoice settled and alice's channel balance up by exactly swap amount − swap fee (msat, from lnd); both
 * deposits `LoopedIn`; the server's cooperative sweep of both deposits (aggregated MuSig2 key-path spend)
 * accepted by btcd and confirmed; the change a new `Deposited` deposit; a second sync changes nothing. Then
 * a loop-in whose partial signature is tampered with (test hook) is refused by the server.
 *
 * Ignored without the regtest binaries unless CI=true (then missing binaries fail).
 */
import { hex } from "@scure/base";
import { RawTx } from "@scure/btc-signer";
import { assert, assertEquals } from "../assert.ts";
import { unary } from "../../lnd/rpc.ts";
import { runCli } from "../cli/_harness.ts";
import { cliFlagsFor } from "./swap_peer.ts";
import { regtestTest } from "./suite.ts";

/** CSV expiry of the static address: long enough for the 1 050-block runway of a loop-in. */
const CSV = 4032;

type Json = Record<string, unknown>;

regtestTest(
  "regtest: loop-in of a confirmed and a mempool deposit to Succeeded, paid over Lightning, swept cooperatively, change back as a deposit",
  { expiry: CSV },
  async ({ net, server, cli, loopdir, newAddress }, t) => {
    const alice = net.alice;
    const btcd = net.btcd.rpc;
    const serverFlags = ["--swapserver", server.address, "--no-swapserver-tls"];
    const json = async (...args: string[]) => {
      const r = await cli("--json", ...args);
      assertEquals(r.code, 0, `loopkit ${args.join(" ")}: ${r.stdout}${r.stderr}`);
      return r.json as Json;
    };
    const deposits = async () => ((await json("deposits", "list", "--all")).deposits ?? []) as Json[];
    const until = async <T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> => {
      for (const deadline = Date.now() + ms; Date.now() < deadline;) {
        const v = await fn();
        if (v !== undefined) return v;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`timed out waiting for ${what}`);
    };
    const channelLocalMsat = async () => {
      const b = await unary<{ local_balance: { msat: string } }>(alice.rpc.lightning, "ChannelBalance", {});
      return BigInt(b.local_balance.msat);
    };

    const created = await newAddress();
    assertEquals(created.code, 0, created.stderr);
    const address = created.json?.address as string;
    const pkScript = created.json?.pk_script as string;

    // Two deposits: 300 000 sat mined, 200 000 sat left in the mempool.
    const minedTxid = await net.sendToAddress(address, 300_000n);
    await net.mine(1);
    const pendingTxid = await net.sendToAddress(address, 200_000n);
    const [mined, pending] = await until("both deposits in loopkit", async () => {
      await json("deposits", "sync");
      const all = await deposits();
      const m = all.find((d) => (d.outpoint as string).startsWith(minedTxid));
      const p = all.find((d) => (d.outpoint as string).startsWith(pendingTxid));
      return m && p ? [m, p] : undefined;
    });
    assert(Number(mined.confirmation_height) > 0 && pending.confirmation_height === "0");

    const amount = 400_000n;
    const change = 500_000n - amount;
    let swapHash = "";
    let fee = 0n;
    const before = await channelLocalMsat();

    await t.step("quote, then loopin --force: armed and monitoring", async () => {
      const q = await json(
        "loopin",
        "quote",
        String(amount),
        "--utxo",
        mined.outpoint as string,
        "--utxo",
        pending.outpoint as string,
        ...serverFlags,
      );
      assertEquals([q.quoted_amt, q.change_sat, q.num_deposits], [String(amount), String(change), 2]);
      fee = BigInt(q.swap_fee_sat as string);
      const r = await json(
        "loopin",
        String(amount),
        "--utxo",
        mined.outpoint as string,
        "--utxo",
        pending.outpoint as string,
        "--force",
        ...serverFlags,
      );
      assertEquals([r.state, r.armed, r.push_error], ["MonitorInvoiceAndHtlcTx", true, null]);
      assertEquals([r.swap_amount, r.change, r.quoted_swap_fee_satoshis], [
        String(amount),
        String(change),
        String(fee),
      ]);
      swapHash = r.swap_hash as string;
      const locked = await deposits();
      for (const op of [mined.outpoint, pending.outpoint]) {
        assertEquals(locked.find((d) => d.outpoint === op)?.state, "LoopingIn");
      }
    });

    await t.step(
      "loopin sync until Succeeded: invoice settled, channel balance up by swap amount − fee",
      async () => {
        await until("the swap to succeed", async () => {
          await cli("--json", "loopin", "sync", "--listen", "3s", ...serverFlags);
          const s = await json("loopin", "show", swapHash);
          return s.state === "Succeeded" ? s : undefined;
        }, 120_000);
        const inv = await unary<{ state: string; amt_paid_msat: string }>(
          alice.rpc.lightning,
          "LookupInvoice",
          {
            r_hash: hex.decode(swapHash),
          },
        );
        assertEquals(inv.state, "SETTLED");
        assertEquals(BigInt(inv.amt_paid_msat), (amount - fee) * 1000n);
        assertEquals((await channelLocalMsat()) - before, (amount - fee) * 1000n);
        const after = await deposits();
        for (const op of [mined.outpoint, pending.outpoint]) {
          assertEquals(after.find((d) => d.outpoint === op)?.state, "LoopedIn");
        }
      },
    );

    let sweepTxid = "";
    await t.step(
      "the server's cooperative sweep of both deposits is accepted by btcd and confirms",
      async () => {
        const ops = new Set([mined.outpoint, pending.outpoint]);
        sweepTxid = await until("the sweepless sweep in btcd's mempool", async () => {
          await cli("--json", "loopin", "sync", "--listen", "3s", ...serverFlags);
          for (const txid of await btcd.getRawMempool()) {
            const tx = RawTx.decode(hex.decode(await btcd.getRawTransactionHex(txid)));
            const spent = tx.inputs.map((i) => `${hex.encode(Uint8Array.from(i.txid))}:${i.index}`);
            if (spent.some((o) => ops.has(o))) return txid;
          }
          return undefined;
        }, 120_000);
        const tx = RawTx.decode(hex.decode(await btcd.getRawTransactionHex(sweepTxid)));
        const spent = tx.inputs.map((i) => `${hex.encode(Uint8Array.from(i.txid))}:${i.index}`).sort();
        assertEquals(spent, [mined.outpoint as string, pending.outpoint as string].sort());
        // Key-path spends: one 64-byte BIP-340 signature per input (SIGHASH_DEFAULT).
        for (const w of tx.witnesses!) assertEquals(w.map((x) => x.length), [64]);
        const changeOut = tx.outputs.findIndex((o) => hex.encode(o.script) === pkScript);
        assert(changeOut >= 0, "no change output to the static address");
        assertEquals(tx.outputs[changeOut].amount, change);
        await net.mine(1);
        assert((await net.blockHeightOfTx(sweepTxid)) !== undefined, "the sweep did not confirm");

        const changeOp = `${sweepTxid}:${changeOut}`;
        const fresh = await until("the change as a new deposit", async () => {
          await json("deposits", "sync");
          return (await deposits()).find((d) => d.outpoint === changeOp);
        });
        assertEquals([fresh.state, fresh.value_sat], ["Deposited", String(change)]);
      },
    );

    await t.step("a second loopin sync changes nothing", async () => {
      const show = await json("loopin", "show", swapHash);
      const list = await json("loopin", "list", "--all");
      const deps = await deposits();
      const r = await cli("--json", "loopin", "sync", ...serverFlags);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(await json("loopin", "show", swapHash), show);
      assertEquals(await json("loopin", "list", "--all"), list);
      assertEquals(await deposits(), deps);
    });

    await t.step("the server refuses a tampered partial signature", async () => {
      const fund = await net.sendToAddress(address, 250_000n);
      await net.mine(1);
      const dep = await until("the third deposit", async () => {
        await json("deposits", "sync");
        return (await deposits()).find((d) => (d.outpoint as string).startsWith(fund));
      });
      const r = await runCli(
        [
          ...cliFlagsFor(alice, loopdir),
          "--json",
          "loopin",
          "--utxo",
          dep.outpoint as string,
          "--force",
          ...serverFlags,
        ],
        { LOOPKIT_TEST_FLIP_SIG: "high" },
      );
      assertEquals(r.code, 1, r.stdout + r.stderr);
      const out = r.json!;
      assertEquals(out.armed, true, "the marker is written before any push");
      const err = out.push_error as Json;
      assert(/signature/i.test(err.message as string), `push error: ${JSON.stringify(err)}`);
    });
  },
);
