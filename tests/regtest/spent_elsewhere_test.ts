/**
 * Hardening items 13 and 14 on a real regtest network (btcd + lnd alice and bob, the local swap server with a
 * short CSV expiry), against lnd's real `ChainNotifier.RegisterSpendNtfn`:
 *
 * - a confirmed deposit spent outside loopkit (a timeout-path spend the test builds and signs through alice's
 *   lnd, paying a key of the test) becomes `SpentElsewhere` with btcd's spending txid and height;
 * - a stored expiry sweep whose input another transaction spent (a BIP-125 replacement at a higher fee the
 *   test publishes) stops failing every sync (exit 4 before) and is recorded `SpentElsewhere`;
 * - a deposit `recover deposit` restored that lnd's wallet does not list (a child address lnd never watched
 *   when it was paid) is swept at expiry from its stored row, accepted by btcd, and ends `Expired`.
 *
 * Ignored without the regtest binaries unless CI=true (then missing binaries fail).
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { hex } from "@scure/base";
import { p2wpkh, RawTx } from "@scure/btc-signer";
import { assert, assertEquals } from "../assert.ts";
import { GrpcLndClient } from "../../lnd/grpc_client.ts";
import { signExpirySweep, timeoutSpendInfo } from "../../core/deposits/sweep.ts";
import type { StaticAddressRow } from "../../core/db/static_addresses.ts";
import { staticAddress } from "../../core/staticaddr/script.ts";
import { REGTEST_NETWORK } from "./miner_wallet.ts";
import { regtestTest } from "./suite.ts";

/** CSV expiry the local swap server hands out: short, so the test can mine past it. */
const CSV = 12;

type Json = Record<string, unknown>;

regtestTest(
  "regtest: deposits spent outside loopkit are recorded SpentElsewhere; an unlisted recovered deposit is swept at expiry",
  { expiry: CSV },
  async ({ net, cli, newAddress }, t) => {
    const alice = net.alice;
    const btcd = net.btcd.rpc;
    const lnd = new GrpcLndClient(alice.rpc);
    const syncRaw = () => cli("--json", "deposits", "sync");
    const sync = async () => {
      const r = await syncRaw();
      assertEquals(r.code, 0, r.stdout + r.stderr);
      return r.json as { changes: Json[]; sweeps: Json[]; spends: Json[] };
    };
    const list = async (op: string) =>
      ((await cli("--json", "deposits", "list", "--outpoint", op)).json?.deposits as Json[])[0];
    const voutPaying = async (txid: string, script: Uint8Array) => {
      const tx = RawTx.decode(hex.decode(await btcd.getRawTransactionHex(txid)));
      const i = tx.outputs.findIndex((o) => hex.encode(o.script) === hex.encode(script));
      assert(i >= 0, `no output of ${txid} pays ${hex.encode(script)}`);
      return i;
    };
    const mineTo = async (height: number) => {
      const tip = await net.bestHeight();
      if (tip < height) await net.mine(height - tip);
      assertEquals(await net.bestHeight(), height);
    };

    const created = await newAddress();
    assertEquals(created.code, 0, created.stderr);
    const address = created.json?.address as string;
    const shown = (await cli("--json", "address", "show")).json!;
    const row: StaticAddressRow = {
      id: 1,
      clientPubkey: hex.decode(shown.client_pubkey as string),
      serverPubkey: hex.decode(shown.server_pubkey as string),
      expiry: CSV,
      clientKeyFamily: shown.client_key_family as number,
      clientKeyIndex: shown.client_key_index as number,
      pkScript: hex.decode(shown.pk_script as string),
      protocolVersion: 0,
      initiationHeight: Number(shown.initiation_height),
    };
    // A key of the test's own: the spends it builds pay here, outside alice's wallet.
    const elsewhere = p2wpkh(
      secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true),
      REGTEST_NETWORK,
    );
    /**
     * A timeout-path spend of a deposit that loopkit did not make: the same leaf, signed by alice's lnd with the
     * client key, paying the test's key at `feeRate` sat/kw.
     */
    const spendOutside = async (op: string, valueSat: bigint, feeRate: bigint) => {
      const [txid, vout] = op.split(":");
      return await signExpirySweep({
        estimateFeeSatPerKw: () => Promise.resolve(feeRate),
        minRelayFeeSatPerKw: () => lnd.minRelayFeeSatPerKw(),
        signOutputRaw: (tx, descs, prev) => lnd.signOutputRaw(tx, descs, prev),
      }, {
        txid,
        vout: Number(vout),
        valueSat,
        spend: timeoutSpendInfo(row),
        sweepPkScript: elsewhere.script,
      }, 6);
    };
    /** Pays the static address from the miner, mines 1, syncs: the deposit's outpoint and confirmation height. */
    const deposit = async (amountSat: bigint) => {
      const txid = await net.sendToAddress(address, amountSat);
      await net.mine(1);
      const op = `${txid}:${await voutPaying(txid, row.pkScript)}`;
      const r = await sync();
      assert(r.changes.some((c) => c.outpoint === op && c.change === "created"), JSON.stringify(r.changes));
      return { op, height: (await net.blockHeightOfTx(txid))! };
    };

    try {
      await t.step(
        "a confirmed deposit spent by a transaction loopkit did not make becomes SpentElsewhere with btcd's txid and height",
        async () => {
          const { op, height } = await deposit(200_000n);
          await mineTo(height + CSV); // expired; loopkit does not run before the other spend
          const other = await spendOutside(op, 200_000n, 2_000n);
          await btcd.sendRawTransaction(hex.encode(other.tx));
          await net.mine(3);
          const spentHeight = (await net.blockHeightOfTx(other.txid))!;
          assertEquals(spentHeight, height + CSV + 1);
          const r = await sync();
          const spends = r.spends.filter((s) => s.outpoint === op);
          assertEquals(spends.map((s) => [s.action, s.state, s.spending_txid, s.spending_height]), [
            ["recorded", "SpentElsewhere", other.txid, String(spentHeight)],
          ]);
          assertEquals(r.sweeps.filter((s) => s.outpoint === op), []); // nothing signed for a spent output
          const d = await list(op);
          assertEquals([d.state, d.spending_txid, d.spending_height], [
            "SpentElsewhere",
            other.txid,
            String(spentHeight),
          ]);
          // Final: the next sync does nothing for it.
          const again = await sync();
          assertEquals([...again.sweeps, ...again.spends].filter((s) => s.outpoint === op), []);
        },
      );

      await t.step(
        "a stored sweep whose input a higher-fee replacement spent: sync exits 0 and records SpentElsewhere",
        async () => {
          const { op, height } = await deposit(300_000n);
          await mineTo(height + CSV);
          const first = await sync();
          const [ours] = first.sweeps.filter((s) => s.outpoint === op);
          assertEquals(
            [ours?.action, ours?.state],
            ["published", "WaitForExpirySweep"],
            JSON.stringify(first),
          );
          assert((await btcd.getRawMempool()).includes(ours.txid as string), "btcd does not hold our sweep");
          // Another spend of the same deposit at a much higher fee replaces ours in btcd's mempool (BIP-125:
          // our sweep's nSequence = CSV signals replaceability).
          const feeRate = (BigInt(ours.fee_sat as string) * 1000n / 517n + 1n) * 4n;
          const other = await spendOutside(op, 300_000n, feeRate);
          await btcd.sendRawTransaction(hex.encode(other.tx));
          const mempool = await btcd.getRawMempool();
          assert(mempool.includes(other.txid) && !mempool.includes(ours.txid as string), "no replacement");
          await net.mine(3);
          const spentHeight = (await net.blockHeightOfTx(other.txid))!;
          const r = await syncRaw();
          assertEquals(r.code, 0, r.stdout + r.stderr); // before: exit 4 on every run (publish refused)
          const j = r.json as { sweeps: Json[]; spends: Json[] };
          assertEquals(
            j.sweeps.filter((s) => s.outpoint === op).map((s) => [s.action, s.state, s.txid, s.error]),
            [["spent_elsewhere", "SpentElsewhere", ours.txid, undefined]],
          );
          assertEquals(
            j.spends.filter((s) => s.outpoint === op).map((
              s,
            ) => [s.action, s.spending_txid, s.spending_height]),
            [["recorded", other.txid, String(spentHeight)]],
          );
          const d = await list(op);
          assertEquals([d.state, d.expiry_sweep_txid, d.spending_txid], [
            "SpentElsewhere",
            ours.txid,
            other.txid,
          ]);
          const quiet = await sync();
          assertEquals([...quiet.sweeps, ...quiet.spends].filter((s) => s.outpoint === op), []);
        },
      );

      await t.step(
        "a recovered deposit lnd's wallet does not list is swept at expiry from its stored row; btcd accepts it",
        async () => {
          // A receive child (42061/7) that lnd never watched when it was paid: recover deposit imports it, and
          // lnd does not rescan, so its wallet never lists this output.
          const key = await lnd.deriveKey({ family: 42061, index: 7 });
          const child = staticAddress({
            clientPubkey: key.rawKeyBytes,
            serverPubkey: row.serverPubkey,
            csvExpiry: CSV,
            network: "regtest",
          });
          const txid = await net.sendToAddress(child.address, 150_000n);
          await net.mine(1);
          const height = (await net.blockHeightOfTx(txid))!;
          const op = `${txid}:${await voutPaying(txid, child.pkScript)}`;
          const rec = await cli(
            "--json",
            "recover",
            "deposit",
            "--outpoint",
            op,
            "--height-hint",
            String(height),
            "--pkscript",
            hex.encode(child.pkScript),
            "--spend-timeout",
            "1",
          );
          assertEquals(rec.code, 0, rec.stderr);
          assertEquals([rec.json?.wallet_visible, rec.json?.state], [false, "Deposited"]);
          await mineTo(height + CSV - 1);
          const early = await sync();
          assertEquals(early.sweeps.filter((s) => s.outpoint === op), []);

          await net.mine(1); // tip = C + E
          const r = await sync();
          const [sweep] = r.sweeps.filter((s) => s.outpoint === op);
          assertEquals([sweep?.action, sweep?.state], ["published", "WaitForExpirySweep"], JSON.stringify(r));
          const sweepTxid = sweep.txid as string;
          assert((await btcd.getRawMempool()).includes(sweepTxid), "btcd's mempool does not hold the sweep");
          const raw = RawTx.decode(hex.decode(await btcd.getRawTransactionHex(sweepTxid)));
          assertEquals(`${hex.encode(Uint8Array.from(raw.inputs[0].txid))}:${raw.inputs[0].index}`, op);
          assertEquals(raw.inputs[0].sequence, CSV);
          await net.mine(3);
          const done = await sync();
          assertEquals(
            done.sweeps.filter((s) => s.outpoint === op).map((s) => [s.action, s.state]),
            [["confirmed", "Expired"]],
          );
          assertEquals(await net.blockHeightOfTx(sweepTxid), height + CSV + 1);
        },
      );
    } finally {
      lnd.close();
    }
  },
);
