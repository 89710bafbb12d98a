/**
 * `loopkit loopin quote|loopin|sync|list|show` as subprocesses against the fake lnd (real gRPC, real MuSig2
 * partial signatures) and the local swap server (its loop-in role: real MuSig2, it verifies every partial
 * signature), with a real libSQL file: quote output, a whole loop-in to `Succeeded`, the refusals, `loopin
 * sync` as a no-op, and kill -9 / SIGTERM of `loopin` at every step boundary followed by `loopin sync`.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { RawTx } from "@scure/btc-signer";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../assert.ts";
import { LoopkitError } from "../../core/errors.ts";
import { parseAmountArg, parseDurationSec } from "../../cli/loopin.ts";
import { startFakeLnd } from "../fakelnd/server.ts";
import { startSwapServer } from "../swapserver/server.ts";
import { InProcessLightning } from "../swapserver/lightning.ts";
import { MemoryChain } from "../swapserver/chain.ts";
import { CLI_RUN_ARGS, cliRunArgs, lndFlags, runCli } from "./_harness.ts";
import { SHARED_KEY_NUMS_PUBKEY } from "../../core/backup/envelope.ts";
import { openSwapRecord } from "../../core/loopin/swap_record.ts";

const TIP = 1000;
/** `loopin sync` (core/loopin/sync.ts) has landed: the tests that need it run. */
const SYNC_READY = true;
const CSV = 4032;

type Json = Record<string, unknown>;

/** A funding transaction paying `valueSat` to `pkScript` at output 0 (a unique input per `n`). */
function fundingTx(n: number, pkScript: Uint8Array, valueSat: bigint) {
  const prev = new Uint8Array(32);
  new DataView(prev.buffer).setUint32(0, n);
  const raw = RawTx.encode({
    version: 2,
    segwitFlag: false,
    inputs: [{ txid: prev, index: 0, finalScriptSig: new Uint8Array(), sequence: 0xffffffff }],
    outputs: [{ amount: valueSat, script: pkScript }],
    lockTime: 0,
  });
  return { raw, txid: bytesToHex(sha256(sha256(raw)).reverse()) };
}

/**
 * Fake lnd alice (pays the L402 invoices of bob, the server's in-process node), the local swap server on a
 * memory chain, and a static address created through `loopkit address new`.
 */
async function setup() {
  const lnd = await startFakeLnd({ network: "regtest", blockHeight: TIP });
  const chain = new MemoryChain(TIP);
  const bob = new InProcessLightning("regtest");
  const invoices = {
    async addInvoice(amountSat: bigint, memo: string) {
      const inv = await bob.addInvoice(amountSat, memo);
      const hashHex = bytesToHex(inv.paymentHash);
      lnd.setPayment(hashHex, {
        paymentRequest: inv.paymentRequest,
        updates: [{
          status: "SUCCEEDED",
          preimage: bob.invoices.get(hashHex)!.preimage,
          valueMsat: amountSat * 1000n,
          feeMsat: 0n,
        }],
      });
      return inv;
    },
  };
  // The server pays a swap invoice "over Lightning": lnd settles it (the fake reveals the preimage).
  const payer = {
    pay(invoice: string): Promise<Uint8Array> {
      for (const [hash, inv] of lnd.invoices) {
        if (inv.paymentRequest !== invoice) continue;
        lnd.settleInvoice(hash);
        return Promise.resolve(inv.preimage);
      }
      return Promise.reject(new Error("no such invoice"));
    },
  };
  const server = await startSwapServer({ invoices, expiry: CSV, chain, payer });
  const loopdir = await Deno.makeTempDir({ prefix: "loopkit-cli-loopin-" });
  const flags = lndFlags(lnd, loopdir);
  const serverFlags = ["--swapserver", server.address, "--no-swapserver-tls"];
  const cli = (...args: string[]) => runCli([...flags, ...args]);
  const created = await cli("--json", "address", "new", ...serverFlags);
  assertEquals(created.code, 0, created.stderr);
  const pkScript = Uint8Array.from(
    (created.json!.pk_script as string).match(/../g)!.map((h) => parseInt(h, 16)),
  );
  let n = 0;
  return {
    lnd,
    chain,
    server,
    loopdir,
    flags,
    serverFlags,
    cli,
    pkScript,
    /** A deposit of `valueSat` with `confirmations` (0 = mempool) in lnd's wallet and on the server's chain. */
    deposit(valueSat: bigint, confirmations: number): string {
      const f = fundingTx(++n, pkScript, valueSat);
      lnd.addTransaction({ rawTx: f.raw, blockHeight: confirmations ? TIP - confirmations + 1 : 0 });
      chain.addOutput(f.txid, 0, valueSat, pkScript, confirmations);
      return `${f.txid}:0`;
    },
    /** Makes lnd's ListUnspent report these deposits. */
    wallet(outpoints: { op: string; valueSat: bigint; confirmations: number }[]) {
      lnd.setUtxos(outpoints.map((o) => ({
        txid: o.op.split(":")[0],
        vout: 0,
        amountSat: o.valueSat,
        pkScript,
        confirmations: o.confirmations,
      })));
    },
    async [Symbol.asyncDispose]() {
      await server.stop();
      await lnd.stop();
      await Deno.remove(loopdir, { recursive: true });
    },
  };
}

type Setup = Awaited<ReturnType<typeof setup>>;

/** Two deposits (300 000 sat confirmed 6 times, 200 000 sat in the mempool), synced. */
async function twoDeposits(t: Setup) {
  const a = t.deposit(300_000n, 6);
  const b = t.deposit(200_000n, 0);
  t.wallet([{ op: a, valueSat: 300_000n, confirmations: 6 }, {
    op: b,
    valueSat: 200_000n,
    confirmations: 0,
  }]);
  const s = await t.cli("deposits", "sync");
  assertEquals(s.code, 0, s.stderr);
  return [a, b];
}

async function depositStates(t: Setup): Promise<Record<string, string>> {
  const r = await t.cli("--json", "deposits", "list", "--all", "--offline");
  assertEquals(r.code, 0, r.stderr);
  return Object.fromEntries((r.json!.deposits as Json[]).map((d) => [d.outpoint, d.state]));
}

Deno.test("loopin quote prints Loop's quote lines and snake_case JSON; nothing is locked or invoiced", async () => {
  await using t = await setup();
  const [a, b] = await twoDeposits(t);
  const text = await t.cli("loopin", "quote", "400000", "--utxo", a, "--utxo", b, ...t.serverFlags);
  assertEquals(text.code, 0, text.stderr);
  assert(/^Previously deposited on-chain: +400000 sat$/m.test(text.stdout), text.stdout);
  assertStringIncludes(text.stderr, `  - ${b} (unconfirmed)`);
  const r = await t.cli("--json", "loopin", "quote", "400000", "--utxo", a, "--utxo", b, ...t.serverFlags);
  assertEquals(r.code, 0, r.stderr);
  const q = r.json!;
  const fee = BigInt(q.swap_fee_sat as string);
  assertEquals(q.quoted_amt, "400000");
  assertEquals(q.total_deposit_sat, "500000");
  assertEquals(q.change_sat, "100000");
  assertEquals(q.receive_off_chain_sat, String(400_000n - fee));
  assertEquals(q.deposit_outpoints, [a, b]);
  assertEquals(q.htlc_publish_fee_sat, "0");
  assertEquals(q.low_confirmation_deposits, [{ outpoint: b, confirmations: null }]);
  assertEquals(await depositStates(t), { [a]: "Deposited", [b]: "Deposited" });
  assertEquals(t.lnd.invoices.size, 0);
});

Deno.test("loopin refusals: no terminal without --force (exit 2, nothing contacted), duplicates, dust, fee cap", async () => {
  await using t = await setup();
  const [a, b] = await twoDeposits(t);
  const before = { ...t.lnd.calls };
  const noTty = await t.cli("--json", "loopin", "--all", ...t.serverFlags);
  assertEquals(noTty.code, 2, noTty.stderr);
  assertStringIncludes(noTty.stderr, "--force");
  assertEquals(t.lnd.calls, before, "lnd was contacted before the refusal");

  const dup = await t.cli("loopin", "--utxo", a, "--utxo", a, "--force", ...t.serverFlags);
  assertEquals(dup.code, 2, dup.stderr);
  assertStringIncludes(dup.stderr.toLowerCase(), "duplicate");

  const dust = await t.cli("loopin", "100", "--all", "--force", ...t.serverFlags);
  assertEquals(dust.code, 2, dust.stderr);
  assertStringIncludes(dust.stderr, "dust");
  const dustChange = await t.cli("loopin", String(500_000 - 329), "--all", "--force", ...t.serverFlags);
  assertEquals(dustChange.code, 2, dustChange.stderr);
  assertStringIncludes(dustChange.stderr, "dust change");

  const cap = await t.cli(
    "--json",
    "loopin",
    "--utxo",
    b,
    "--max-swap-fee-sat",
    "1",
    "--force",
    ...t.serverFlags,
  );
  assertEquals(cap.code, 1, cap.stderr);
  assertEquals((JSON.parse(cap.stderr) as { error: Json }).error.code, "swap_fee_too_high");
  assertEquals(t.lnd.invoices.size, 0, "an invoice was created although the fee was too high");
  const zero = await t.cli("loopin", "--utxo", b, "--max-swap-fee-sat", "0", "--force", ...t.serverFlags);
  assertEquals(zero.code, 2, zero.stderr);
  assertStringIncludes(zero.stderr, "--max-swap-fee-sat must be positive");
  assertEquals(await depositStates(t), { [a]: "Deposited", [b]: "Deposited" });
});

/** Every loop-in as `loopin list --all --json` shows it. */
async function swaps(t: Setup): Promise<Json[]> {
  const r = await t.cli("--json", "loopin", "list", "--all");
  assertEquals(r.code, 0, r.stderr);
  return r.json!.swaps as Json[];
}

/** The outpoints of a listed swap, in snapshot order. */
const outpointsOf = (s: Json) => (s.deposits as Json[]).map((d) => d.outpoint as string);
/** True when the listed swap carries the "signatures pushed" marker. */
const armedOf = (s: Json) => s.armed_at !== null;

Deno.test({
  name:
    "loopin --force to Succeeded: armed, paid, loopin sync finalises the deposits, the server's sweep is signed",
  ignore: !SYNC_READY,
  fn: async () => {
    await using t = await setup();
    const [a, b] = await twoDeposits(t);
    const r = await t.cli(
      "--json",
      "loopin",
      "400000",
      "--utxo",
      a,
      "--utxo",
      b,
      "--force",
      ...t.serverFlags,
    );
    assertEquals(r.code, 0, r.stderr);
    const out = r.json!;
    assertEquals([out.state, out.armed, out.push_error], ["MonitorInvoiceAndHtlcTx", true, null]);
    assertEquals([out.amount, out.swap_amount, out.change], ["500000", "400000", "100000"]);
    const fee = BigInt(out.quoted_swap_fee_satoshis as string);
    assertEquals(out.invoice_amount_msat, String((400_000n - fee) * 1000n));
    const hash = out.swap_hash as string;
    const inv = t.lnd.invoices.get(hash)!;
    assertEquals([inv.valueMsat, inv.private, inv.memo], [
      (400_000n - fee) * 1000n,
      true,
      "static address loop-in",
    ]);
    assertEquals(
      t.server.loopIn.records.htlcSigned,
      [hash],
      "the server verified and accepted the signatures",
    );
    assertEquals(t.lnd.muSig2Sessions(), 0, "MuSig2 sessions left in lnd");
    assertEquals(await depositStates(t), { [a]: "LoopingIn", [b]: "LoopingIn" });
    // The swap's recovery record is in the data directory, sealed with this lnd's backup key (issue 9 F8).
    const recordPath = `${t.loopdir}/regtest/loopin_swap_${hash}.enc`;
    assertEquals((await Deno.stat(recordPath)).mode! & 0o777, 0o600);
    const record = openSwapRecord(
      t.lnd.keyRing.sharedKey(SHARED_KEY_NUMS_PUBKEY, 42060, 0),
      await Deno.readFile(recordPath),
      recordPath,
      "regtest",
    );
    assertEquals(record.htlcTxids, out.htlc_txids);
    assertEquals(record.deposits.map((d) => d.outpoint), [a, b]);

    let shown: Json | undefined;
    for (let i = 0; i < 20 && shown?.state !== "Succeeded"; i++) {
      const s = await t.cli("--json", "loopin", "sync", "--listen", "2s", ...t.serverFlags);
      assertEquals(s.code, 0, s.stderr);
      shown = (await t.cli("--json", "loopin", "show", hash)).json;
    }
    assertEquals(shown?.state, "Succeeded");
    assertEquals(t.lnd.invoices.get(hash)!.state, "SETTLED");
    assertEquals(await depositStates(t), { [a]: "LoopedIn", [b]: "LoopedIn" });
    for (let i = 0; i < 10 && !t.server.loopIn.records.sweepsPublished.length; i++) {
      await t.cli("--json", "loopin", "sync", "--listen", "2s", ...t.serverFlags);
    }
    assertEquals(t.server.loopIn.records.sweepsPublished.map((x) => x.swapHash), [hash]);
    const swept = (await t.cli("--json", "loopin", "show", hash)).json!;
    assertEquals(swept.sweepless_sweep_txid, t.server.loopIn.records.sweepsPublished[0].txid);
    // Nothing pending: another sync changes nothing.
    const before = await swaps(t);
    assertEquals((await t.cli("loopin", "sync", ...t.serverFlags)).code, 0);
    assertEquals(await swaps(t), before);
  },
});

Deno.test({
  name: "loopin sync with nothing pending exits 0 without contacting an unreachable --swapserver",
  ignore: !SYNC_READY,
  fn: async () => {
    await using t = await setup();
    const r = await t.cli("--json", "loopin", "sync", "--swapserver", "127.0.0.1:1", "--no-swapserver-tls");
    assertEquals(r.code, 0, r.stderr);
    const list = await t.cli("--json", "loopin", "list");
    assertEquals([list.code, list.json?.swaps], [0, []]);
  },
});

/** Runs `loopin` until it reports `step` on stderr (LOOPKIT_TEST_STOP_AT), then sends `signal`. */
async function stopAt(t: Setup, step: string, signal: Deno.Signal, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...cliRunArgs({ LOOPKIT_TEST_STOP_AT: step }),
      ...t.flags,
      "--json",
      "loopin",
      ...args,
      "--force",
      ...t.serverFlags,
    ],
    env: { NO_COLOR: "1", LOOPKIT_TEST_STOP_AT: step },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let err = "";
  while (!err.includes(`loopkit-test: at ${step}`)) {
    const { value, done } = await reader.read();
    if (done) break;
    err += value;
  }
  assertStringIncludes(err, `loopkit-test: at ${step}`);
  child.kill(signal);
  const drain = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      err += value;
    }
  })();
  const [status] = await Promise.all([child.status, drain, child.stdout.cancel()]);
  return { code: status.code, signal: status.signal, stderr: err, pid: child.pid };
}

const STEPS = [
  "created",
  "invoice",
  "server",
  "params",
  "checked",
  "signed",
  "armed",
  "pushed",
  "monitoring",
];
const ARMED = new Set(["armed", "pushed", "monitoring"]);

/**
 * The invariants after any crash and one `loopin sync`: never two live swaps for one deposit, no deposit
 * LoopingIn without a live swap, every armed swap still marked, at most one open invoice per swap and none
 * for a failed one.
 */
async function checkInvariants(t: Setup) {
  const all = await swaps(t);
  const states = await depositStates(t);
  const live = all.filter((s) => !["Failed", "Succeeded", "HtlcTimeoutSwept"].includes(s.state as string));
  const owner = new Map<string, string>();
  for (const s of live) {
    for (const op of outpointsOf(s)) {
      assert(!owner.has(op), `deposit ${op} in two live swaps: ${owner.get(op)} and ${s.swap_hash}`);
      owner.set(op, s.swap_hash as string);
    }
  }
  for (const [op, state] of Object.entries(states)) {
    if (state === "LoopingIn") assert(owner.has(op), `deposit ${op} LoopingIn without a live swap`);
  }
  // No live invoice nobody knows: every swap invoice lnd holds belongs to a stored swap.
  const known = new Set(all.map((s) => s.swap_hash as string));
  for (const [hash, inv] of t.lnd.invoices) {
    if (inv.memo === "static address loop-in") assert(known.has(hash), `invoice ${hash} without a swap row`);
  }
  for (const s of all) {
    const inv = t.lnd.invoices.get(s.swap_hash as string);
    if (s.state === "Failed" && !armedOf(s)) {
      assert(!inv || inv.state === "CANCELED", `failed swap ${s.swap_hash} has invoice ${inv?.state}`);
    }
  }
  return all;
}

Deno.test({
  name: "kill -9 of loopin at every step boundary, then loopin sync: nothing lost, nothing doubled",
  ignore: !SYNC_READY,
  fn: async () => {
    await using t = await setup();
    const wallet: { op: string; valueSat: bigint; confirmations: number }[] = [];
    for (const [i, step] of STEPS.entries()) {
      const op = t.deposit(100_000n + BigInt(i), 6);
      wallet.push({ op, valueSat: 100_000n + BigInt(i), confirmations: 6 });
      t.wallet(wallet);
      const killed = await stopAt(t, step, "SIGKILL", ["--utxo", op]);
      assertEquals(killed.signal, "SIGKILL", killed.stderr);
      const s = await t.cli("loopin", "sync", ...t.serverFlags);
      assertEquals(s.code, 0, `after kill at ${step}: ${s.stderr}`);
      const all = await checkInvariants(t);
      const mine = all.filter((x) => outpointsOf(x).includes(op));
      if (
        step === "created" || step === "invoice" || step === "server" || step === "params" ||
        step === "checked" || step === "signed"
      ) {
        assertEquals(
          mine.map((x) => [x.state, armedOf(x)]),
          [["Failed", false]],
          `kill at ${step}: ${s.stdout}`,
        );
        assertEquals((await depositStates(t))[op], "Deposited", `kill at ${step}`);
      } else {
        assert(ARMED.has(step));
        assertEquals(mine.length, 1, `kill at ${step}`);
        assertEquals(armedOf(mine[0]), true, `kill at ${step}: the armed marker was lost`);
        assert(mine[0].state !== "Failed", `kill at ${step}: an armed swap was failed`);
      }
    }
  },
});

Deno.test({
  name:
    "SIGTERM of loopin before the push unwinds (abandon, cancel, release) and exits 130; after the marker it stays armed",
  ignore: !SYNC_READY,
  fn: async () => {
    await using t = await setup();
    const a = t.deposit(150_000n, 6);
    const b = t.deposit(160_000n, 6);
    t.wallet([{ op: a, valueSat: 150_000n, confirmations: 6 }, {
      op: b,
      valueSat: 160_000n,
      confirmations: 6,
    }]);
    assertEquals((await t.cli("deposits", "sync")).code, 0);

    const r = await stopAt(t, "checked", "SIGTERM", ["--utxo", a]);
    assertEquals(r.code, 130, r.stderr);
    const [failed] = await swaps(t);
    assertEquals([failed.state, armedOf(failed)], ["Failed", false]);
    assertEquals(t.lnd.invoices.get(failed.swap_hash as string)?.state, "CANCELED");
    assertEquals(t.server.loopIn.records.abandons, [failed.swap_hash]);
    assertEquals((await depositStates(t))[a], "Deposited");

    const armed = await stopAt(t, "armed", "SIGTERM", ["--utxo", b]);
    assertEquals(armed.code, 130, armed.stderr);
    const mine = (await swaps(t)).find((x) => outpointsOf(x).includes(b))!;
    assertEquals(armedOf(mine), true);
    assertEquals((await depositStates(t))[b], "LoopingIn");
    assertEquals(t.lnd.invoices.get(mine.swap_hash as string)?.state, "OPEN");
  },
});

Deno.test({
  name: "the shipped CLI reads no test hook: LOOPKIT_TEST_STOP_AT / LOOPKIT_TEST_FLIP_SIG change nothing",
  ignore: !SYNC_READY,
  fn: async () => {
    await using t = await setup();
    const a = t.deposit(300_000n, 6);
    t.wallet([{ op: a, valueSat: 300_000n, confirmations: 6 }]);
    assertEquals((await t.cli("deposits", "sync")).code, 0);
    // cli/main.ts itself (not the tests' _hooked_main.ts): a hook would stop at "quoted" for a minute, or
    // corrupt the standard signature so that the server refuses the push.
    const o = await new Deno.Command(Deno.execPath(), {
      args: [...CLI_RUN_ARGS, ...t.flags, "--json", "loopin", "--utxo", a, "--force", ...t.serverFlags],
      env: { NO_COLOR: "1", LOOPKIT_TEST_STOP_AT: "quoted:60000", LOOPKIT_TEST_FLIP_SIG: "standard" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(o.stderr);
    assertEquals(o.code, 0, stderr);
    assert(!stderr.includes("loopkit-test"), stderr);
    const out = JSON.parse(new TextDecoder().decode(o.stdout)) as Json;
    assertEquals([out.state, out.armed, out.push_error], ["MonitorInvoiceAndHtlcTx", true, null]);
    assertEquals(t.server.loopIn.records.htlcSigned, [out.swap_hash], "the server accepted the signatures");
  },
});

Deno.test("two concurrent loopin runs for one deposit: one swap, one invoice, the other refused before any invoice", async () => {
  await using t = await setup();
  const a = t.deposit(300_000n, 6);
  t.wallet([{ op: a, valueSat: 300_000n, confirmations: 6 }]);
  assertEquals((await t.cli("deposits", "sync")).code, 0);
  // Both quote (the deposit is Deposited for both), wait 1.5 s, then race for the lock.
  const env = { LOOPKIT_TEST_STOP_AT: "quoted:1500" };
  const run = () => runCli([...t.flags, "--json", "loopin", "--utxo", a, "--force", ...t.serverFlags], env);
  const [r1, r2] = await Promise.all([run(), run()]);
  assertEquals([r1.code, r2.code].sort(), [0, 1], r1.stderr + r2.stderr);
  const loser = r1.code === 0 ? r2 : r1;
  assertEquals(
    (JSON.parse(loser.stderr.split("\n").find((l) => l.startsWith("{"))!) as { error: Json }).error.code,
    "deposit_not_available",
  );
  const all = await swaps(t);
  assertEquals(all.length, 1);
  assertEquals(t.lnd.invoices.size, 1, "the refused run created an invoice");
  assertEquals((await depositStates(t))[a], "LoopingIn");
});

Deno.test("--payment-timeout and --listen take Go durations or seconds, truncated to whole seconds", () => {
  const cases: [string, number][] = [["60s", 60], ["1m30s", 90], ["2h", 7200], ["1500ms", 1], ["45", 45], [
    "1h1m1s",
    3661,
  ]];
  for (const [v, want] of cases) assertEquals(parseDurationSec("--payment-timeout", v), want, v);
  for (const bad of ["", "s", "1d", "-5s", "1.5s", "10 s", "1s1m"]) {
    assertThrows(() => parseDurationSec("--payment-timeout", bad), LoopkitError, "--payment-timeout");
  }
});

Deno.test("the positional amount: one whole number of sat, negative and garbage refused (exit 2)", () => {
  assertEquals(parseAmountArg([]), undefined);
  assertEquals(parseAmountArg(["500000"]), 500_000n);
  for (const bad of [["-1"], ["1e5"], ["0x10"], ["1", "2"]]) {
    const err = assertThrows(() => parseAmountArg(bad), LoopkitError);
    assertEquals(err.exitCode, 2, bad.join(" "));
  }
});

/** Runs `loopkit <args>` on a pseudo-terminal (util-linux `script`), typing `input`. */
async function onTerminal(t: Setup, args: string[], input: string) {
  const quote = (a: string) => `'${a.replaceAll("'", `'\\''`)}'`;
  const cmd = [Deno.execPath(), ...CLI_RUN_ARGS, ...t.flags, ...args].map(quote).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", cmd, "/dev/null"],
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(input));
  await w.close();
  const o = await child.output();
  return { code: o.code, out: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr) };
}

const hasScript = await new Deno.Command("sh", { args: ["-c", "command -v script"] }).output().then(
  (o) => o.success,
  () => false,
);

Deno.test({
  name:
    "on a terminal loopin shows the quote and asks CONTINUE SWAP? (y/n): — n cancels with nothing locked, y swaps",
  ignore: !hasScript,
  fn: async () => {
    await using t = await setup();
    const a = t.deposit(300_000n, 6);
    t.wallet([{ op: a, valueSat: 300_000n, confirmations: 6 }]);
    assertEquals((await t.cli("deposits", "sync")).code, 0);
    const no = await onTerminal(t, ["loopin", "--utxo", a, ...t.serverFlags], "n\n");
    assertEquals(no.code, 1, no.out);
    assertStringIncludes(no.out, "CONTINUE SWAP? (y/n): ");
    assert(/Previously deposited on-chain: +300000 sat/.test(no.out), no.out);
    assertStringIncludes(no.out, "Swap canceled");
    assertEquals(t.lnd.invoices.size, 0);
    assertEquals((await depositStates(t))[a], "Deposited");
    assertEquals(await swaps(t), []);

    const yes = await onTerminal(t, ["loopin", "--utxo", a, ...t.serverFlags], "y\n");
    assertEquals(yes.code, 0, yes.out);
    assertStringIncludes(yes.out, "MonitorInvoiceAndHtlcTx");
    assertEquals((await depositStates(t))[a], "LoopingIn");
  },
});
