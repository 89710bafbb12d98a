/**
 * `loopkit deposits sync|list|summary` as subprocesses against the fake lnd (real gRPC, lnd's protos, a real
 * BIP-340 signer for SignOutputRaw) and a real libSQL file: the expiry sweep end to end, listing and summary,
 * and 4 concurrent syncs on one database file.
 */
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { RawTx, Transaction } from "@scure/btc-signer";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { type FakeUtxo, startFakeLnd } from "../fakelnd/server.ts";
import { openDb } from "../../core/db/db.ts";
import { insertStaticAddress } from "../../core/db/static_addresses.ts";
import { listDeposits } from "../../core/deposits/store.ts";
import { staticAddress } from "../../core/staticaddr/script.ts";
import { connectLnd } from "../../lnd/connect.ts";
import { syncDeposits } from "../../core/deposits/sync.ts";
import { syncLnd } from "../../cli/lnd_adapters.ts";
import { lndFlags, runCli } from "./_harness.ts";

const CSV = 10;
const txid = (n: number) => n.toString(16).padStart(64, "0");

/** A fake lnd at height 100 and a data dir whose database holds the static address of lnd's key 42060/0. */
async function setup(opts: { csvExpiry?: number } = {}) {
  const lnd = await startFakeLnd({ network: "regtest", blockHeight: 100 });
  const loopdir = await Deno.makeTempDir({ prefix: "loopkit-cli-deposits-" });
  const dataDir = `${loopdir}/regtest`;
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const clientPubkey = lnd.keyRing.publicKey(42060, 0);
  const serverPubkey = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
  const csvExpiry = opts.csvExpiry ?? CSV;
  const address = staticAddress({ clientPubkey, serverPubkey, csvExpiry, network: "regtest" });
  const db = await openDb({ url: `file:${dataDir}/loopkit.db`, network: "regtest" });
  await db.write((tx) =>
    insertStaticAddress(tx, {
      clientPubkey,
      serverPubkey,
      expiry: csvExpiry,
      clientKeyFamily: 42060,
      clientKeyIndex: 0,
      pkScript: address.pkScript,
      protocolVersion: 0,
      initiationHeight: 90,
    })
  );
  db.close();
  const flags = lndFlags(lnd, loopdir);
  return {
    lnd,
    loopdir,
    dataDir,
    address,
    flags,
    cli: (...args: string[]) => runCli([...flags, ...args]),
    deposit: (n: number, confirmations: number, amountSat = 100_000n): FakeUtxo => ({
      txid: txid(n),
      vout: 0,
      amountSat,
      pkScript: address.pkScript,
      confirmations,
      account: "imported", // the database was written directly: no ImportTapscript went through the fake
    }),
    async [Symbol.asyncDispose]() {
      await lnd.stop();
      await Deno.remove(loopdir, { recursive: true });
    },
  };
}

type Json = Record<string, unknown>;

Deno.test("deposits sync sweeps an expired deposit through the timeout path: nothing at C + E − 1, a valid signed sweep at C + E, Expired after 3 confirmations", async () => {
  await using t = await setup();
  // Confirmed at height 100 (1 confirmation at tip 100).
  t.lnd.setUtxos([t.deposit(1, 1)]);
  assertEquals((await t.cli("deposits", "sync")).code, 0);

  t.lnd.setBlockHeight(100 + CSV - 1);
  t.lnd.setUtxos([t.deposit(1, CSV)]);
  const early = await t.cli("--json", "deposits", "sync");
  assertEquals(early.code, 0, early.stderr);
  assertEquals(early.json?.sweeps, []);
  assertEquals(t.lnd.published.length, 0);

  t.lnd.setBlockHeight(100 + CSV);
  t.lnd.setUtxos([t.deposit(1, CSV + 1)]);
  t.lnd.setFeeRate(1_000n, 253n);
  const r = await t.cli("--json", "deposits", "sync", "--sweep-conf-target", "12");
  assertEquals(r.code, 0, r.stderr);
  const [sweep] = r.json?.sweeps as Json[];
  assertEquals([sweep.action, sweep.state], ["published", "WaitForExpirySweep"]);
  assertEquals(t.lnd.published.length, 1);
  const est = t.lnd.requests.filter((q) => q.rpc === "WalletKit.EstimateFee").map((q) =>
    q.request.conf_target
  );
  assert(est.includes(12), `conf targets asked: ${est}`);

  // The published transaction, checked without loopkit's code: BIP-341 script-path sighash by
  // @scure/btc-signer, BIP-340 verification against lnd's key 42060/0, CSV in nSequence.
  const tx = t.lnd.published[0].tx;
  const raw = RawTx.decode(tx);
  assertEquals(raw.version, 2);
  assertEquals(raw.lockTime, 0);
  assertEquals(raw.inputs[0].sequence, CSV);
  assertEquals(bytesToHex(Uint8Array.from(raw.inputs[0].txid)), txid(1));
  const [sig, leaf, control] = raw.witnesses![0];
  assertEquals(leaf, t.address.timeoutLeafScript);
  assertEquals(control, t.address.controlBlock);
  const unsigned = Transaction.fromRaw(tx, { allowUnknownOutputs: true });
  const sighash = unsigned.preimageWitnessV1(0, [t.address.pkScript], 0, [100_000n], -1, leaf, 0xc0);
  assert(
    schnorr.verify(sig, sighash, t.lnd.keyRing.publicKey(42060, 0).subarray(1)),
    "signature does not verify",
  );
  const fee = 100_000n - raw.outputs[0].amount;
  assertEquals(String(fee), sweep.fee_sat);
  const weight = 3 * RawTx.encode({ ...raw, segwitFlag: false, witnesses: undefined }).length + tx.length;
  assertEquals(fee, (1_000n * BigInt(weight) + 999n) / 1000n);
  const sweepTxid = unsigned.id;
  assertEquals(sweep.txid, sweepTxid);

  // The deposit output is spent now; the sweep sits in the mempool: republish the same bytes.
  const sweepOut = (confirmations: number): FakeUtxo => ({
    txid: sweepTxid,
    vout: 0,
    amountSat: raw.outputs[0].amount,
    pkScript: raw.outputs[0].script,
    confirmations,
  });
  t.lnd.setUtxos([sweepOut(0)]);
  t.lnd.setFeeRate(9_000n);
  const again = await t.cli("--json", "deposits", "sync");
  assertEquals((again.json?.sweeps as Json[]).map((s) => s.action), ["republished"]);
  assertEquals(t.lnd.published[1].tx, tx);

  t.lnd.setBlockHeight(100 + CSV + 3);
  t.lnd.setUtxos([sweepOut(3)]);
  const done = await t.cli("--json", "deposits", "sync");
  assertEquals((done.json?.sweeps as Json[]).map((s) => [s.action, s.state]), [["confirmed", "Expired"]]);
  const quiet = await t.cli("--json", "deposits", "sync");
  assertEquals([quiet.json?.changes, quiet.json?.sweeps], [[], []]);
  assertEquals(t.lnd.published.length, 2);
  assertEquals(t.lnd.calls["Signer.SignOutputRaw"], 1);

  const list = await t.cli("--json", "deposits", "list");
  const [d] = list.json?.deposits as Json[];
  assertEquals([d.state, d.expiry_sweep_txid, d.expiry_height], ["Expired", sweepTxid, String(100 + CSV)]);
  const summary = await t.cli("--json", "deposits", "summary");
  assertEquals(summary.json?.value_expired_satoshis, "100000");
  assertEquals(summary.json?.total_num_deposits, 1);
});

Deno.test("deposits sync exits 4 when the sweep cannot be published and keeps the stored sweep for the next run", async () => {
  await using t = await setup();
  t.lnd.setBlockHeight(200);
  t.lnd.setUtxos([t.deposit(1, 50)]);
  t.lnd.setPublishError("txn-mempool-conflict");
  const r = await t.cli("--json", "deposits", "sync");
  assertEquals(r.code, 4, r.stderr);
  const [sweep] = r.json?.sweeps as Json[];
  assertEquals([sweep.action, sweep.state], ["failed", "WaitForExpirySweep"]);
  assertStringIncludes(JSON.stringify(sweep.error), "txn-mempool-conflict");
  t.lnd.setPublishError("");
  t.lnd.setUtxos([]);
  const ok = await t.cli("deposits", "sync");
  assertEquals(ok.code, 0, ok.stderr);
  assertStringIncludes(ok.stdout, "sweep_republished");
  assertEquals(t.lnd.published[0].tx, t.lnd.published[1].tx);
});

Deno.test("deposits list: blocks until expiry from lnd's tip, filters, Replaced only with --all, usage errors", async () => {
  await using t = await setup({ csvExpiry: 144 });
  t.lnd.setBlockHeight(500);
  t.lnd.setUtxos([t.deposit(1, 51), t.deposit(2, 0, 2_000n), t.deposit(3, 0, 7_000n)]);
  assertEquals((await t.cli("deposits", "sync")).code, 0);
  t.lnd.setUtxos([t.deposit(1, 51), t.deposit(2, 0, 2_000n)]); // 3 was replaced
  assertEquals((await t.cli("deposits", "sync")).code, 0);

  const list = await t.cli("--json", "deposits", "list");
  assertEquals(list.code, 0, list.stderr);
  assertEquals(list.json?.tip_height, 500);
  const rows = list.json?.deposits as Json[];
  // spec §6 RPC views: (C = 450, E = 144, best = 500) → 94; unconfirmed → E.
  assertEquals(rows.map((d) => [d.outpoint, d.state, d.blocks_until_expiry]), [
    [`${txid(1)}:0`, "Deposited", "94"],
    [`${txid(2)}:0`, "Deposited", "144"],
  ]);
  const all = await t.cli("--json", "deposits", "list", "--all");
  assertEquals((all.json?.deposits as Json[]).map((d) => d.state), ["Deposited", "Deposited", "Replaced"]);
  const replaced = await t.cli("--json", "deposits", "list", "--state", "Replaced");
  assertEquals((replaced.json?.deposits as Json[]).map((d) => d.outpoint), [`${txid(3)}:0`]);
  const one = await t.cli(
    "--json",
    "deposits",
    "list",
    "--outpoint",
    `${txid(3)}:0`,
    "--outpoint",
    `${txid(1)}:0`,
  );
  assertEquals((one.json?.deposits as Json[]).map((d) => d.outpoint), [`${txid(3)}:0`, `${txid(1)}:0`]);
  const offline = await t.cli("--json", "deposits", "list", "--offline");
  assertEquals((offline.json?.deposits as Json[])[0].blocks_until_expiry, undefined);
  assertEquals(t.lnd.calls["Lightning.GetInfo"] !== undefined, true);

  // lnd down: the listing still works, without blocks until expiry, and says why on stderr.
  const port = (() => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const p = (l.addr as Deno.NetAddr).port;
    l.close();
    return p;
  })();
  const down = await runCli([...t.flags, "--rpcserver", `127.0.0.1:${port}`, "--json", "deposits", "list"]);
  assertEquals(down.code, 0, down.stderr);
  assertEquals((down.json?.deposits as Json[]).length, 2);
  assertEquals((down.json?.deposits as Json[])[0].blocks_until_expiry, undefined);
  assertStringIncludes(down.stderr, "no blocks_until_expiry");

  const human = await t.cli("deposits", "list");
  assertStringIncludes(human.stdout, "OUTPOINT");
  assertStringIncludes(human.stdout, "94 blocks");

  assertEquals((await t.cli("deposits", "list", "--state", "Nope")).code, 2);
  assertEquals(
    (await t.cli("deposits", "list", "--state", "Deposited", "--outpoint", `${txid(1)}:0`)).code,
    2,
  );
  assertEquals((await t.cli("deposits", "list", "--outpoint", "xyz:0")).code, 2);
  const missing = await t.cli("deposits", "list", "--outpoint", `${txid(9)}:0`);
  assertEquals(missing.code, 1);
  assertStringIncludes(missing.stderr, "Not all outpoints found");
  assertEquals((await t.cli("deposits", "sync", "--sweep-conf-target", "1")).code, 2);
});

Deno.test("deposits summary: Loop's fields, every category, and totals that add up to deposits list", async () => {
  await using t = await setup({ csvExpiry: 144 });
  t.lnd.setBlockHeight(500);
  t.lnd.setUtxos([
    t.deposit(1, 51, 3_000n),
    t.deposit(2, 0, 2_000n),
    t.deposit(3, 0, 7_000n),
    t.deposit(4, 9, 1_000n),
  ]);
  assertEquals((await t.cli("deposits", "sync")).code, 0);
  t.lnd.setUtxos([t.deposit(1, 51, 3_000n), t.deposit(2, 0, 2_000n)]); // 3 replaced, 4 vanished while confirmed
  assertEquals((await t.cli("deposits", "sync")).code, 0);

  const s = await t.cli("--json", "deposits", "summary");
  assertEquals(s.code, 0, s.stderr);
  assertEquals(s.json?.static_address, t.address.address);
  assertEquals(s.json?.relative_expiry_blocks, "144");
  assertEquals(s.json?.total_num_deposits, 3);
  assertEquals(s.json?.value_unconfirmed_satoshis, "2000");
  assertEquals(s.json?.value_deposited_satoshis, "3000");
  assertEquals(s.json?.replaced, { count: 1, value_sat: "7000" });
  const cats = s.json?.categories as { category: string; count: number; value_sat: string }[];
  assertEquals(cats.find((c) => c.category === "unavailable"), {
    category: "unavailable",
    count: 1,
    value_sat: "1000",
  });

  const list = (await t.cli("--json", "deposits", "list", "--offline")).json?.deposits as Json[];
  assertEquals(cats.reduce((a, c) => a + c.count, 0), list.length);
  assertEquals(
    cats.reduce((a, c) => a + BigInt(c.value_sat), 0n),
    list.reduce((a, d) => a + BigInt(d.value_sat as string), 0n),
  );
  assertEquals(String(list.reduce((a, d) => a + BigInt(d.value_sat as string), 0n)), s.json?.total_value_sat);

  const human = await t.cli("deposits", "summary");
  assertStringIncludes(human.stdout, t.address.address);
  assertStringIncludes(human.stdout, "unavailable");
  assertStringIncludes(human.stdout, "hidden");
});

// ---- concurrency

/** Rows that must not depend on which process wrote them. */
async function snapshot(dataDir: string) {
  const db = await openDb({ url: `file:${dataDir}/loopkit.db`, network: "regtest" });
  try {
    const deposits = await listDeposits(db.client);
    const history = await db.client.execute(
      "SELECT d.tx_hash, u.update_state FROM deposit_updates u JOIN deposits d USING (deposit_id) ORDER BY u.id",
    );
    const perOutpoint = new Map<string, string[]>();
    for (const r of history.rows) {
      const k = bytesToHex(new Uint8Array(r.tx_hash as ArrayBuffer));
      perOutpoint.set(k, [...(perOutpoint.get(k) ?? []), String(r.update_state)]);
    }
    return {
      deposits: deposits
        .map((d) =>
          [`${d.txid}:${d.vout}`, d.amountSat, d.confirmationHeight, d.state, d.walletVisible] as const
        )
        .sort((a, b) => (a[0] < b[0] ? -1 : 1)),
      history: [...perOutpoint.entries()].sort(),
      sweeps: deposits.filter((d) => d.expirySweepTx).map((d) => ({ txid: d.txid, tx: d.expirySweepTx! })),
      ids: new Set(deposits.map((d) => bytesToHex(d.depositId))).size,
    };
  } finally {
    db.close();
  }
}

/** No lock left behind: a write transaction gets the lock at once, and no rollback journal remains. */
async function assertNoLock(dataDir: string) {
  for await (const e of Deno.readDir(dataDir)) {
    assert(!e.name.endsWith("-journal"), `journal left: ${e.name}`);
  }
  const db = await openDb({ url: `file:${dataDir}/loopkit.db`, network: "regtest", busyTimeoutMs: 50 });
  try {
    await db.write((tx) => tx.execute("UPDATE meta SET value = value WHERE key = 'network'"));
  } finally {
    db.close();
  }
}

/** The wallet the rounds serve: new 0-conf and confirmed deposits, and some already expired (CSV 10). */
function wallet(t: { deposit: (n: number, c: number, a?: bigint) => FakeUtxo }, round: number): FakeUtxo[] {
  const utxos: FakeUtxo[] = [];
  for (let i = 0; i < 12; i++) {
    utxos.push(t.deposit(round * 100 + i + 1, i % 4 === 0 ? 0 : i, 50_000n + BigInt(i)));
  }
  for (let i = 0; i < 3; i++) utxos.push(t.deposit(round * 100 + 50 + i, 20 + i, 80_000n)); // expired at tip 300
  return utxos;
}

const ROUNDS = Number(Deno.env.get("LOOPKIT_CONCURRENCY_ROUNDS") ?? "5");

Deno.test(`4 deposits sync processes at once on one database file, ${ROUNDS} rounds: the rows of one sync, one sweep per expired deposit, only exit 0 or 75, no lock left`, async () => {
  await using t = await setup();
  t.lnd.setBlockHeight(300);
  const template = await Deno.readFile(`${t.dataDir}/loopkit.db`);
  const { lnd } = await connectLnd({ ...t.lnd, network: "regtest" });
  try {
    for (let round = 0; round < ROUNDS; round++) {
      t.lnd.setUtxos(wallet(t, round));
      // Reference: one sync alone, in process, on its own copy of the database.
      const refDir = `${t.loopdir}/ref-${round}`;
      await Deno.mkdir(refDir);
      await Deno.writeFile(`${refDir}/loopkit.db`, template);
      const refDb = await openDb({ url: `file:${refDir}/loopkit.db`, network: "regtest" });
      try {
        await syncDeposits({ db: refDb, lnd: syncLnd(lnd, "regtest") });
      } finally {
        refDb.close();
      }
      const expected = await snapshot(refDir);
      // Expired at tip 300: confirmed at C = 300 − confs + 1 ≤ 300 − CSV, i.e. confs ≥ CSV + 1.
      assertEquals(expected.sweeps.length, wallet(t, round).filter((u) => u.confirmations >= CSV + 1).length);

      // Four processes at once on another copy.
      const loopdir = `${t.loopdir}/round-${round}`;
      const dataDir = `${loopdir}/regtest`;
      await Deno.mkdir(dataDir, { recursive: true });
      await Deno.writeFile(`${dataDir}/loopkit.db`, template);
      const flags = lndFlags(t.lnd, loopdir);
      const publishedBefore = t.lnd.published.length;
      const runs = await Promise.all(
        [0, 1, 2, 3].map(() => runCli([...flags, "--json", "deposits", "sync"])),
      );
      for (const r of runs) {
        assert(r.code === 0 || r.code === 75, `round ${round}: exit ${r.code}: ${r.stderr}`);
      }
      if (runs.some((r) => r.code === 75)) {
        const retry = await runCli([...flags, "deposits", "sync"]); // what cron does next
        assertEquals(retry.code, 0, retry.stderr);
      }
      const got = await snapshot(dataDir);
      assertEquals(got.deposits, expected.deposits, `round ${round}: rows differ`);
      assertEquals(got.history, expected.history, `round ${round}: history differs`);
      assertEquals(got.ids, got.deposits.length);
      // Exactly one stored sweep per expired deposit, and every published transaction is a stored one.
      assertEquals(got.sweeps.map((s) => s.txid).sort(), expected.sweeps.map((s) => s.txid).sort());
      const stored = new Set(got.sweeps.map((s) => bytesToHex(s.tx)));
      const published = t.lnd.published.slice(publishedBefore);
      assert(published.length >= 3, `round ${round}: ${published.length} published`);
      for (const p of published) {
        assert(stored.has(bytesToHex(p.tx)), `round ${round}: a different sweep was published`);
      }
      await assertNoLock(dataDir);
    }
  } finally {
    lnd.close();
  }
});

Deno.test("a first sync of many deposits writes no progress into a pipe (stderr piped), human or --json", async () => {
  await using t = await setup();
  t.lnd.setUtxos(Array.from({ length: 450 }, (_, i) => t.deposit(i + 1, 1 + (i % 5))));
  const human = await t.cli("deposits", "sync"); // more than two batches of 200 new deposits
  assertEquals(human.code, 0, human.stderr);
  assertEquals(human.stderr, "");
  assertEquals(human.stdout.split("\n").filter((l) => l.startsWith("created")).length, 450);
  t.lnd.setUtxos([
    ...Array.from({ length: 450 }, (_, i) => t.deposit(i + 1, 2 + (i % 5))),
    ...Array.from({ length: 250 }, (_, i) => t.deposit(1000 + i, 1)),
  ]);
  const json = await t.cli("--json", "deposits", "sync");
  assertEquals([json.code, json.stderr], [0, ""]);
  assertEquals((json.json?.changes as Json[]).filter((c) => c.change === "created").length, 250);
});
