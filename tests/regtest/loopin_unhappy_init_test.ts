/**
 * Loop-in unhappy paths on a real regtest network (btcd + lnd alice and bob, the local swap server), part 2:
 * initiation refused on bad server answers, a deposit replaced during the initiation, a push answered after
 * the client's deadline, and lnd restarted during `loopin sync` (review §1.1, §1.4, §1.5, §1.7, §1.8;
 * spec §3.7, §3.8).
 *
 * 4. Bad server answers ⇒ `loopin --force` exit 1 naming the check, abandon push received, invoice CANCELED,
 *    deposit `Deposited`; no OPEN invoice left for any of those swap hashes (lnd ListInvoices).
 * 5. A deposit replaced (BIP-125) after the server's answer and before signing (initiation paused at its
 *    `params` step boundary by `LOOPKIT_TEST_STOP_AT`) ⇒ no signatures pushed, invoice cancelled.
 * 6. A push the server accepts but answers after the client's 30 s deadline ⇒ the swap is armed; the deposits
 *    stay locked while lnd cannot acknowledge the cancel, and are released only after it has.
 * 7. lnd restarted while `loopin sync --listen` runs ⇒ exit 75, nothing released; the next run completes.
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
import { type Json, sleep, unhappy, until } from "./_loopin_unhappy.ts";

/** The CLI's error object on stderr (`--json`). */
function errorOf(stderr: string): { code: string; message: string; exit_code: number } {
  const line = stderr.trim().split("\n").reverse().find((l) => l.startsWith('{"error"'));
  assert(line, `no JSON error on stderr: ${stderr}`);
  return JSON.parse(line).error;
}

regtestTest(
  "regtest unhappy 4: bad server answers — exit 1 naming the check, abandon push, invoice CANCELED, deposits Deposited",
  // 1 100 blocks of CSV: 1 050 of runway for the manual selection, but an HTLC expiry of tip + 1 200 is past
  // the deposit's expiry − 50.
  { expiry: 1100 },
  async (ctx, t) => {
    const { net, server } = ctx;
    const h = unhappy(ctx);
    const { address } = await h.address();
    const op = (await h.deposit(address, 300_000n)).outpoint as string;
    const hashes: string[] = [];
    const cases: [string, Parameters<typeof server.loopIn.setKnobs>[0], string, RegExp][] = [
      ["expiry 99 blocks ahead", { htlcExpiryDelta: 99 }, "server_htlc_expiry_too_soon", /too soon/],
      ["expiry 1 501 blocks ahead", { htlcExpiryDelta: 1501 }, "server_htlc_expiry_too_far", /too far/],
      [
        "expiry past the deposit's expiry − 50",
        { htlcExpiryDelta: 1200 },
        "server_htlc_expiry_after_deposit_expiry",
        /htlc_expiry \d+ \+ 50 blocks is past/,
      ],
      ["one nonce too few (high)", { shortNonces: "high" }, "server_nonce_count", /want exactly 1/],
      ["a 65-byte nonce", { nonce65: true }, "server_nonce_length", /65.*66 bytes/],
      ["a fee rate over the guard", { feeOverGuard: "standard" }, "server_htlc_fee", /fee/],
    ];
    const defaults = {
      htlcExpiryDelta: 1000,
      shortNonces: undefined,
      nonce65: false,
      feeOverGuard: undefined,
    };
    for (const [what, knobs, code, message] of cases) {
      await t.step(what, async () => {
        server.loopIn.setKnobs({ ...defaults, ...knobs });
        const r = await h.loopin(["--utxo", op]);
        assertEquals(r.code, 1, r.stdout + r.stderr);
        const err = errorOf(r.stderr);
        assert(err.code.startsWith(code), `error code ${err.code}, want ${code}: ${err.message}`);
        assert(message.test(err.message), `error message: ${err.message}`);
        const hash = /Loop-in ([0-9a-f]{64})/.exec(err.message)?.[1];
        assert(hash, `the error names no swap hash: ${err.message}`);
        hashes.push(hash);
        assert(server.loopIn.records.abandons.includes(hash), "no abandon push reached the server");
        assertEquals(server.loopIn.records.htlcSigned.includes(hash), false, "signatures were pushed");
        assertEquals(await h.invoiceState(hash), "CANCELED");
        assertEquals(await h.depositState(op), "Deposited");
        assertEquals((await h.show(hash)).state, "Failed");
      });
    }

    await t.step("no OPEN invoice is left for any of those swap hashes (lnd ListInvoices)", async () => {
      const list = await unary<{ invoices: { r_hash: Uint8Array; state: string }[] }>(
        net.alice.rpc.lightning,
        "ListInvoices",
        { num_max_invoices: "10000" },
      );
      const byHash = new Map(list.invoices.map((i) => [hex.encode(new Uint8Array(i.r_hash)), i.state]));
      assertEquals(hashes.length, cases.length);
      for (const hash of hashes) assertEquals(byHash.get(hash), "CANCELED", `invoice ${hash}`);
      assertEquals(list.invoices.filter((i) => i.state === "OPEN").length, 0, "an OPEN invoice is left");
    });
  },
);

regtestTest(
  "regtest unhappy 5: a deposit replaced (BIP-125) after the server's answer, before signing — no signatures pushed, invoice cancelled",
  { expiry: 4032 },
  async (ctx, t) => {
    const { net, server } = ctx;
    const h = unhappy(ctx);
    const { address } = await h.address();
    // A replaceable 0-conf deposit from a key the test holds.
    const secret = secp256k1.utils.randomSecretKey();
    const pay = p2wpkh(secp256k1.getPublicKey(secret, true), REGTEST_NETWORK);
    const fundSat = 400_000n;
    const fundTxid = await net.sendToAddress(pay.address!, fundSat);
    await net.mine(1);
    const fundTx = RawTx.decode(hex.decode(await h.btcd.getRawTransactionHex(fundTxid)));
    const fundVout = fundTx.outputs.findIndex((o) => hex.encode(o.script) === hex.encode(pay.script));
    const spend = (to: string, sat: bigint) => {
      const tx = new Transaction({ version: 2 });
      tx.addInput({
        txid: fundTxid,
        index: fundVout,
        sequence: 0xfffffffd,
        witnessUtxo: { script: pay.script, amount: fundSat },
      });
      tx.addOutputAddress(to, sat, REGTEST_NETWORK);
      tx.sign(secret);
      tx.finalize();
      return { hex: tx.hex, txid: tx.id };
    };
    const original = spend(address, 399_000n);
    await h.btcd.sendRawTransaction(original.hex);
    const op = `${original.txid}:0`;
    await until("the 0-conf deposit in loopkit", async () => {
      await h.json("deposits", "sync");
      return (await h.deposits()).find((d) => d.outpoint === op);
    });

    let hash = "";
    await t.step("replaced while the initiation is paused at params: exit 1, nothing signed", async () => {
      const started = Date.now();
      const run = h.loopin(["--utxo", op], { LOOPKIT_TEST_STOP_AT: "params:30000" });
      hash = await until(
        "the server's answer",
        () => Promise.resolve([...server.loopIn.swaps.keys()][0]),
        60_000,
      );
      const replacement = spend(await net.alice.newAddress(), 390_000n);
      await h.btcd.sendRawTransaction(replacement.hex);
      assert(!(await h.btcd.getRawMempool()).includes(original.txid), "btcd kept the original");
      await net.mine(1);
      const r = await run;
      assert(Date.now() - started >= 30_000, "the initiation did not pause");
      assert(r.stderr.includes("loopkit-test: at params"), r.stderr);
      assertEquals(r.code, 1, r.stdout + r.stderr);
      const err = errorOf(r.stderr);
      assertEquals(err.code, "deposit_unavailable", err.message);
      assert(err.message.includes(hash), err.message);
      assertEquals(server.loopIn.records.htlcSigned.includes(hash), false, "signatures were pushed");
      assert(server.loopIn.records.abandons.includes(hash), "no abandon push");
      assertEquals(await h.invoiceState(hash), "CANCELED");
      const s = await h.show(hash);
      assertEquals([s.state, s.armed_at], ["Failed", null]);
    });
  },
);

regtestTest(
  "regtest unhappy 6: a push answered after the client's deadline — armed; deposits released only after the acknowledged cancel",
  { expiry: 4032 },
  async (ctx, t) => {
    const { net, server } = ctx;
    const h = unhappy(ctx);
    server.loopIn.setKnobs({ pay: "never", pushAnswerDelayMs: 40_000 });
    const { address } = await h.address();
    const op = (await h.deposit(address, 300_000n)).outpoint as string;
    let hash = "";

    await t.step("loopin: the push times out, the swap is armed, deposits LoopingIn", async () => {
      const r = await h.loopin(["--utxo", op, "--payment-timeout", "10s"]);
      assert(r.code !== 0, r.stdout + r.stderr);
      const out = r.json!;
      hash = out.swap_hash as string;
      assertEquals(out.armed, true);
      assert(out.push_error, `no push error: ${r.stdout}`);
      assert(server.loopIn.records.htlcSigned.includes(hash), "the server did not keep the signatures");
      assert((await h.show(hash)).armed_at);
      assertEquals(await h.depositState(op), "LoopingIn");
    });

    let deadline = 0;
    await t.step(
      "sync resumes it in the monitor state; the deadline starts on the risk acceptance",
      async () => {
        const s = await until("the payment deadline to start", async () => {
          await h.sync("3s");
          const s = await h.show(hash);
          return s.payment_deadline ? s : undefined;
        }, 90_000);
        assertEquals(s.state, "MonitorInvoiceAndHtlcTx");
        deadline = Date.parse(s.payment_deadline as string);
        assertEquals(await h.depositState(op), "LoopingIn");
      },
    );

    await t.step("deadline passed with lnd down: exit 75, deposits stay locked", async () => {
      const wait = deadline - Date.now();
      if (wait > 0) await sleep(wait + 500);
      await net.alice.stop();
      const r = await h.sync(undefined, [75]);
      assertEquals(r.code, 75, r.stdout + r.stderr);
      assertEquals(await h.depositState(op, true), "LoopingIn");
      const s = await h.show(hash);
      assertEquals([s.invoice_canceled_at, s.deposits_released_at], [null, null]);
    });

    await t.step("lnd back: the cancel is acknowledged, then the deposits are released", async () => {
      h.node = await net.startNode("alice-restarted", { dir: net.alice.dir });
      await h.sync();
      assertEquals(await h.invoiceState(hash), "CANCELED");
      assertEquals(await h.depositState(op), "Deposited");
      const s = await h.show(hash);
      assertEquals([s.state, s.watched], ["MonitorInvoiceAndHtlcTx", true]);
      assert(Date.parse(s.invoice_canceled_at as string) <= Date.parse(s.deposits_released_at as string));
    });
  },
);

regtestTest(
  "regtest unhappy 7: lnd restarted during loopin sync — exit 75, nothing released; the next run completes the step",
  { expiry: 4032 },
  async (ctx, t) => {
    const { net, server } = ctx;
    const h = unhappy(ctx);
    server.loopIn.setKnobs({ pay: "never" });
    const { address } = await h.address();
    const op = (await h.deposit(address, 300_000n)).outpoint as string;
    const r = await h.loopin(["--utxo", op, "--payment-timeout", "25s"]);
    assertEquals(r.code, 0, r.stdout + r.stderr);
    const hash = r.json!.swap_hash as string;
    const s0 = await until("the payment deadline to start", async () => {
      await h.sync("3s");
      const s = await h.show(hash);
      return s.payment_deadline ? s : undefined;
    });
    const deadline = Date.parse(s0.payment_deadline as string);

    await t.step("lnd stopped and started again while `loopin sync --listen 30s` runs: exit 75", async () => {
      assert(Date.now() < deadline - 5_000, "too late to restart lnd before the deadline");
      const t0 = Date.now();
      const running = h.sync("30s", [75]);
      await sleep(4_000);
      await net.alice.stop();
      h.node = await net.startNode("alice-restarted", { dir: net.alice.dir });
      const res = await running;
      assertEquals(res.code, 75, res.stdout + res.stderr);
      assert(Date.now() > deadline, "the run ended before the deadline");
      const errs = ((res.json as Json).swaps as Json[]).map((s) => s.error as Json | null);
      assert(errs.some((e) => e?.exit_code === 75), JSON.stringify(res.json));
      assert(Date.now() - t0 < 60_000);
      assertEquals(await h.depositState(op, true), "LoopingIn", "released without an acknowledged cancel");
      assertEquals((await h.show(hash)).invoice_canceled_at, null);
    });

    await t.step("the next run cancels the invoice and releases the deposits", async () => {
      await h.sync();
      assertEquals(await h.invoiceState(hash), "CANCELED");
      assertEquals(await h.depositState(op), "Deposited");
    });
  },
);
