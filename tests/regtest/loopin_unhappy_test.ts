/**
 * Loop-in unhappy paths on a real regtest network (btcd + lnd alice and bob, the local swap server), part 1:
 * the server holds valid HTLC signatures and never pays (review §1.1–§1.3, spec §3.9–§3.11, §4.5).
 *
 * 1. Never paid: the deadline cancels the invoice (CANCELED in lnd) and releases the deposits while the swap
 *    stays watched; a later high-fee HTLC is recognised by txid, nothing is published before the CLTV, the
 *    timeout sweep at the CLTV is accepted by btcd, confirms and lands in alice's wallet; `HtlcTimeoutSwept`
 *    after 3 confirmations.
 * 2. The HTLC published (and confirmed) before the deadline: the deposits are never released; swept at the CLTV.
 * 3. Risk rejected after signing: invoice cancelled, deposits released, the watch stays; a later extreme-fee
 *    HTLC is still swept.
 * 1b. Never paid with a 0-conf deposit: released at the deadline, then the HTLC spends it while a `deposits
 *    sync` runs (the deposit's stored height is still 0); `loopin sync` still moves it to `SweepHtlcTimeout`.
 *
 * The server's `htlcExpiryDelta` is 100 (the lowest the client accepts) so the CLTV is ~100 blocks away.
 * Ignored without the regtest binaries unless CI=true (then missing binaries fail).
 */
import { assert, assertEquals } from "../assert.ts";
import { regtestTest } from "./suite.ts";
import { type Json, sleep, sweepAtCltv, unhappy, until } from "./_loopin_unhappy.ts";

/** CSV expiry of the static address: long enough for the 1 050-block runway of a loop-in. */
const CSV = 4032;
/** HTLC CLTV delta the server answers (spec §3.7 window 100..1 500). */
const DELTA = 100;

regtestTest(
  "regtest unhappy 1: never paid — deadline cancels and releases, a later high HTLC is swept at the CLTV",
  { expiry: CSV },
  async (ctx, t) => {
    const { net, server } = ctx;
    const h = unhappy(ctx);
    server.loopIn.setKnobs({ pay: "never", htlcExpiryDelta: DELTA });
    const { address } = await h.address();
    const op = (await h.deposit(address, 300_000n)).outpoint as string;

    const r = await h.loopin(["--utxo", op, "--payment-timeout", "5s"]);
    assertEquals(r.code, 0, r.stdout + r.stderr);
    const hash = r.json!.swap_hash as string;
    const cltv = r.json!.htlc_cltv as number;
    const txids = r.json!.htlc_txids as Record<string, string>;
    assertEquals(cltv, (r.json!.initiation_height as number) + DELTA);

    await t.step(
      "after the deadline a sync cancels the invoice and releases the deposits; still watched",
      async () => {
        // The risk acceptance arrives on the notification stream and starts the deadline.
        const started = await until("the payment deadline to start", async () => {
          await h.sync("3s");
          const s = await h.show(hash);
          return s.payment_deadline ? s : undefined;
        }, 60_000);
        assertEquals(started.payment_deadline_source, "risk_accepted");
        assertEquals(await h.depositState(op), "LoopingIn", "released before the deadline");
        assertEquals(await h.invoiceState(hash), "OPEN");
        const wait = Date.parse(started.payment_deadline as string) - Date.now();
        if (wait > 0) await sleep(wait + 500);
        await h.sync();
        assertEquals(await h.invoiceState(hash), "CANCELED");
        assertEquals(await h.depositState(op), "Deposited");
        const s = await h.show(hash);
        assertEquals([s.state, s.watched], ["MonitorInvoiceAndHtlcTx", true]);
        assert(s.invoice_canceled_at && s.deposits_released_at, JSON.stringify(s));
        assert(Date.parse(s.invoice_canceled_at as string) <= Date.parse(s.deposits_released_at as string));
      },
    );

    await t.step(
      "the server publishes the high variant: recognised by txid, deposits SweepHtlcTimeout",
      async () => {
        const txid = await server.loopIn.publishHtlc(hash, "high");
        assertEquals(txid, txids.high);
        await net.mine(3);
        await h.sync();
        const s = await h.show(hash);
        assertEquals(s.state, "SweepHtlcTimeout");
        assertEquals((s.confirmed_htlc as Json).variant, "high");
        assertEquals((s.confirmed_htlc as Json).txid, txids.high);
        assertEquals(await h.depositState(op), "SweepHtlcTimeout");
      },
    );

    await t.step(
      "nothing before the CLTV; at the CLTV the sweep is accepted, confirms, HtlcTimeoutSwept",
      async () => {
        await sweepAtCltv(h, net, hash, cltv, txids.high, [op]);
      },
    );
  },
);

regtestTest(
  "regtest unhappy 2: HTLC published before the deadline, never paid — deposits stay locked, swept at the CLTV",
  { expiry: CSV },
  async (ctx, t) => {
    const { net, server } = ctx;
    const h = unhappy(ctx);
    server.loopIn.setKnobs({ publishHtlc: "standard", htlcExpiryDelta: DELTA });
    const { address } = await h.address();
    const op = (await h.deposit(address, 300_000n)).outpoint as string;

    const r = await h.loopin(["--utxo", op, "--payment-timeout", "60s"]);
    assertEquals(r.code, 0, r.stdout + r.stderr);
    const hash = r.json!.swap_hash as string;
    const cltv = r.json!.htlc_cltv as number;
    const txids = r.json!.htlc_txids as Record<string, string>;

    await t.step("the standard HTLC is published and confirmed before the deadline", async () => {
      const pub = await until(
        "the server to publish the HTLC",
        () => Promise.resolve(server.loopIn.records.htlcsPublished.find((p) => p.swapHash === hash)),
        30_000,
      );
      assertEquals(pub.txid, txids.standard);
      // The deadline starts on the risk acceptance (sent right after the push while no `loopin sync`
      // listened, re-sent to the next subscription) or on the legacy rule (spec §3.9: 6 confirmations of the
      // deposit), whichever comes first. The HTLC confirms meanwhile (5 blocks).
      await h.sync("3s");
      await net.mine(5);
      const started = await until("the payment deadline to start", async () => {
        await h.sync();
        const s = await h.show(hash);
        return s.payment_deadline ? s : undefined;
      }, 30_000);
      const s = await h.show(hash);
      assertEquals([s.state, s.confirmed_htlc, s.invoice_canceled_at], [
        "MonitorInvoiceAndHtlcTx",
        null,
        null,
      ]);
      assert(Date.now() < Date.parse(started.payment_deadline as string), "the deadline passed too early");
      assertEquals(await h.depositState(op), "LoopingIn");
      const wait = Date.parse(started.payment_deadline as string) - Date.now();
      if (wait > 0) await sleep(wait + 500);
    });

    await t.step(
      "after the deadline: invoice CANCELED, deposits never released but SweepHtlcTimeout",
      async () => {
        await h.sync();
        assertEquals(await h.invoiceState(hash), "CANCELED");
        const s = await h.show(hash);
        assertEquals(s.state, "SweepHtlcTimeout");
        assertEquals(s.deposits_released_at, null);
        assertEquals((s.confirmed_htlc as Json).txid, txids.standard);
        assertEquals(await h.depositState(op), "SweepHtlcTimeout");
        for (const x of s.history as Json[]) {
          assert(!/released/i.test(String(x.reason ?? "")), `history releases the deposits: ${x.reason}`);
        }
      },
    );

    await t.step("the timeout sweep at the CLTV is accepted and confirms", async () => {
      await sweepAtCltv(h, net, hash, cltv, txids.standard, [op]);
    });
  },
);

regtestTest(
  "regtest unhappy 3: risk rejected after signing — invoice cancelled, deposits released, a later HTLC still swept",
  { expiry: CSV },
  async (ctx, t) => {
    const { net, server } = ctx;
    const h = unhappy(ctx);
    server.loopIn.setKnobs({ risk: "reject", htlcExpiryDelta: DELTA });
    const { address } = await h.address();
    const op = (await h.deposit(address, 300_000n)).outpoint as string;

    const r = await h.loopin(["--utxo", op]);
    assertEquals(r.code, 0, r.stdout + r.stderr);
    assertEquals(r.json!.armed, true);
    const hash = r.json!.swap_hash as string;
    const cltv = r.json!.htlc_cltv as number;
    const txids = r.json!.htlc_txids as Record<string, string>;

    await t.step("the rejection: invoice CANCELED, deposits Deposited, Failed but watched", async () => {
      const s = await until("the rejection to be acted on", async () => {
        await h.sync("3s");
        const s = await h.show(hash);
        return s.state === "Failed" ? s : undefined;
      });
      assertEquals([s.risk_decision, s.watched], ["rejected", true]);
      assertEquals(await h.invoiceState(hash), "CANCELED");
      assertEquals(await h.depositState(op), "Deposited");
      assert(Date.parse(s.invoice_canceled_at as string) <= Date.parse(s.deposits_released_at as string));
    });

    await t.step("a later extreme HTLC is recognised: SweepHtlcTimeout", async () => {
      assertEquals(await server.loopIn.publishHtlc(hash, "extreme"), txids.extreme);
      await net.mine(3);
      await h.sync();
      const s = await h.show(hash);
      assertEquals(s.state, "SweepHtlcTimeout");
      assertEquals((s.confirmed_htlc as Json).txid, txids.extreme);
      assertEquals(await h.depositState(op), "SweepHtlcTimeout");
    });

    await t.step("swept at the CLTV", async () => {
      await sweepAtCltv(h, net, hash, cltv, txids.extreme, [op]);
    });
  },
);

regtestTest(
  "regtest unhappy 1b: never paid with a 0-conf deposit — released, then the HTLC spends it while a deposits sync runs: still swept",
  { expiry: CSV },
  async (ctx, t) => {
    const { net, server } = ctx;
    const h = unhappy(ctx);
    server.loopIn.setKnobs({ pay: "never", htlcExpiryDelta: DELTA });
    const { address } = await h.address();
    // Loop-ins take 0-conf deposits (review §3 #949): this one is still in the mempool at the loop-in.
    const op = (await h.deposit(address, 300_000n, 0)).outpoint as string;
    assertEquals((await h.deposits()).find((d) => d.outpoint === op)?.confirmation_height, "0");

    const r = await h.loopin(["--utxo", op, "--payment-timeout", "5s"]);
    assertEquals(r.code, 0, r.stdout + r.stderr);
    const hash = r.json!.swap_hash as string;
    const txids = r.json!.htlc_txids as Record<string, string>;

    await t.step("the deadline releases the deposit (still unconfirmed)", async () => {
      const started = await until("the payment deadline to start", async () => {
        await h.sync("3s");
        const s = await h.show(hash);
        return s.payment_deadline ? s : undefined;
      });
      const wait = Date.parse(started.payment_deadline as string) - Date.now();
      if (wait > 0) await sleep(wait + 500);
      await h.sync();
      assertEquals(await h.invoiceState(hash), "CANCELED");
      assertEquals(await h.depositState(op), "Deposited");
    });

    await t.step(
      "the server publishes the standard HTLC; a deposits sync runs; the HTLC confirms",
      async () => {
        assertEquals(await server.loopIn.publishHtlc(hash, "standard"), txids.standard);
        // A timer-driven `deposits sync` runs while the HTLC spends the released deposit in the mempool.
        await h.json("deposits", "sync");
        await net.mine(3);
        await h.json("deposits", "sync");
      },
    );

    await t.step("loopin sync recognises the HTLC: SweepHtlcTimeout (deposit SweepHtlcTimeout)", async () => {
      const res = await h.run("--json", "loopin", "sync", "--listen", "0", ...h.serverFlags);
      const s = await h.show(hash);
      assertEquals(
        [res.code, s.state, await h.depositState(op)],
        [0, "SweepHtlcTimeout", "SweepHtlcTimeout"],
        `${res.stdout}${res.stderr}\n${JSON.stringify(await h.deposits())}`,
      );
    });
  },
);
