import { assert, assertEquals, assertStringIncludes } from "../../tests/assert.ts";
import { LoopInSwapStore } from "../loopin/store.ts";
import { newSwap } from "../loopin/_store_testing.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import { ExitCode, LoopkitError } from "../errors.ts";
import type { LndInfo } from "../../lnd/types.ts";
import { vectorLnd } from "../backup/_testing.ts";
import { tokenFileBytes } from "../backup/_testing.ts";
import { writeBackup } from "../backup/write.ts";
import { tempDepositsDb, txidN } from "../deposits/_testing.ts";
import { insertDeposit, transitionDeposit } from "../deposits/store.ts";
import { backupFileName } from "../backup/file_name.ts";
import { collectStatus, DEFAULT_WARN_EXPIRY_BLOCKS, STALE_TEMP_MS, type StatusDeps } from "./status.ts";

const CREATED_NS = 1_700_000_000_000_000_000n;
const info = (blockHeight: number): LndInfo => ({
  identityPubkey: "02" + "11".repeat(32),
  blockHeight,
  blockHash: "",
  chains: [{ chain: "bitcoin", network: "regtest" }],
  syncedToChain: true,
  version: "0.21.3-beta",
});

/**
 * A data directory with a paid token, its backup (written by core/backup's own writer for the stand-in
 * address, sealed with the vector lnd's key), and the database with one deposit confirmed at 101 (CSV 144).
 */
async function setup() {
  const t = await tempDepositsDb();
  await Deno.writeFile(`${t.dir}/l402.token`, tokenFileBytes(7, CREATED_NS));
  const lnd = vectorLnd();
  const w = await writeBackup({
    dataDir: t.dir,
    network: "regtest",
    lnd,
    staticAddress: () => Promise.resolve({ ...t.address }),
    currentHeight: () => Promise.resolve(100),
  });
  assert(w.written && w.path, `backup not written: ${w.reason}`);
  await t.db.write((tx) =>
    insertDeposit(tx, {
      depositId: new Uint8Array(32).fill(1),
      txid: txidN(1),
      vout: 0,
      amountSat: 100_000n,
      confirmationHeight: 101,
      pkScript: t.address.pkScript,
      timeoutSweepPkScript: new Uint8Array(34),
    }, new Date())
  );
  let tip = 110;
  let down = false;
  const deps = (over: Partial<StatusDeps> = {}): StatusDeps => ({
    network: "regtest",
    dataDir: t.dir,
    db: () => Promise.resolve(t.db),
    lnd: () =>
      down
        ? Promise.reject(
          new LoopkitError("lnd_unreachable", "lnd at 127.0.0.1:1 is unreachable", ExitCode.TempFail),
        )
        : Promise.resolve({ lnd, info: info(tip) }),
    warnExpiryBlocks: 10,
    ...over,
  });
  return {
    ...t,
    backupPath: w.path,
    deps,
    setTip: (h: number) => tip = h,
    stopLnd: () => down = true,
    [Symbol.asyncDispose]: t[Symbol.asyncDispose],
  };
}

const levels = (r: { concerns: { check: string; level: string }[] }) =>
  Object.fromEntries(r.concerns.map((c) => [c.check, c.level]));

Deno.test("status: all well is exit 0 with every check ok, the backup verified through lnd", async () => {
  await using t = await setup();
  const r = await collectStatus(t.deps());
  assertEquals(r.exitCode, ExitCode.Ok, JSON.stringify(r.concerns));
  assertEquals(levels(r), {
    lnd: "ok",
    static_address: "ok",
    deposits: "ok",
    expiry: "ok",
    loopins: "ok",
    backup: "ok",
  });
  assertEquals(r.backup.status, "ok");
  assertEquals(r.backup.path, `${t.dir}/${backupFileName(CREATED_NS, "07" + "00".repeat(31))}`);
  assertEquals(r.deposits.nearestExpiry?.blocksUntilExpiry, 101 + 144 - 110);
  assertEquals(r.deposits.byState, [{ state: "Deposited", count: 1, valueSat: 100_000n }]);
  assertEquals(r.loopins, { total: 0, byState: [], active: [] });
  assertEquals(DEFAULT_WARN_EXPIRY_BLOCKS, 1_000);
});

Deno.test("status: the backup file removed is exit 1 naming it; a corrupt one is exit 1 with verify's reason", async () => {
  await using t = await setup();
  const good = await Deno.readFile(t.backupPath);
  await Deno.remove(t.backupPath);
  const r = await collectStatus(t.deps());
  assertEquals(r.exitCode, ExitCode.Failure);
  assertEquals(r.backup.status, "missing");
  const c = r.concerns.find((x) => x.check === "backup")!;
  assertEquals(c.level, "attention");
  assertStringIncludes(c.message, t.backupPath);
  const bad = good.slice();
  bad[bad.length - 1] ^= 1;
  await Deno.writeFile(t.backupPath, bad);
  const r2 = await collectStatus(t.deps());
  assertEquals([r2.exitCode, r2.backup.status, r2.backup.verify], [1, "invalid", "undecryptable"]);
});

Deno.test("status: a deposit within --warn-expiry-blocks is exit 1 with the blocks left; an expired one says so", async () => {
  await using t = await setup();
  t.setTip(101 + 144 - 7);
  const r = await collectStatus(t.deps());
  assertEquals(r.exitCode, ExitCode.Failure);
  assertEquals([r.deposits.nearExpiry, r.deposits.nearestExpiry?.blocksUntilExpiry], [1, 7]);
  const c = r.concerns.find((x) => x.check === "expiry")!;
  assertEquals(c.level, "attention");
  assertStringIncludes(c.message, "expires in 7 blocks");
  assertStringIncludes(c.message, `${txidN(1)}:0`);
  // Eight blocks away with a threshold of 7: ok.
  t.setTip(101 + 144 - 8);
  assertEquals((await collectStatus(t.deps({ warnExpiryBlocks: 7 }))).exitCode, ExitCode.Ok);
  t.setTip(101 + 144 + 2);
  assertStringIncludes(
    (await collectStatus(t.deps())).concerns.find((x) => x.check === "expiry")!.message,
    "expired 2 blocks ago",
  );
});

Deno.test("status: lnd down is exit 75 (could not tell); --offline does not ask lnd and is exit 0", async () => {
  await using t = await setup();
  t.stopLnd();
  const r = await collectStatus(t.deps());
  assertEquals(r.exitCode, ExitCode.TempFail);
  assertEquals([r.lnd.reachable, r.lnd.error?.code], [false, "lnd_unreachable"]);
  assertEquals(levels(r).lnd, "unknown");
  assertEquals([levels(r).backup, r.backup.status], ["unknown", "not_verified"]);
  const off = await collectStatus(t.deps({ lnd: undefined }));
  assertEquals(off.exitCode, ExitCode.Ok, JSON.stringify(off.concerns));
  assertEquals([off.offline, off.backup.status, off.deposits.nearestExpiry?.blocksUntilExpiry], [
    true,
    "not_verified",
    null,
  ]);
  // A known problem outranks "could not tell": the backup gone with lnd down is exit 1.
  await Deno.remove(t.backupPath);
  assertEquals((await collectStatus(t.deps())).exitCode, ExitCode.Failure);
});

Deno.test("status: off-site copies: identical ok, missing or invalid exit 1", async () => {
  await using t = await setup();
  const [a, b, c] = [await Deno.makeTempDir(), await Deno.makeTempDir(), await Deno.makeTempDir()];
  try {
    const name = t.backupPath.split("/").pop()!;
    await Deno.copyFile(t.backupPath, `${a}/${name}`);
    await Deno.writeFile(`${c}/${name}`, new Uint8Array(100));
    const ok = await collectStatus(t.deps({ copyTo: [a] }));
    assertEquals([ok.exitCode, ok.copies.map((x) => x.status)], [0, ["ok"]]);
    const r = await collectStatus(t.deps({ copyTo: [a, b, c] }));
    assertEquals(r.exitCode, ExitCode.Failure);
    assertEquals(r.copies.map((x) => [x.path, x.status]), [
      [`${a}/${name}`, "ok"],
      [`${b}/${name}`, "missing"],
      [`${c}/${name}`, "invalid"],
    ]);
  } finally {
    for (const d of [a, b, c]) await Deno.remove(d, { recursive: true });
  }
});

Deno.test("status: a stale .loopkit-*.tmp or backup .tmp is exit 1; a fresh one (a live writer) is not", async () => {
  await using t = await setup();
  const fresh = `${t.dir}/.loopkit-recover-00.tmp`;
  await Deno.writeTextFile(fresh, "x");
  assertEquals((await collectStatus(t.deps())).exitCode, ExitCode.Ok);
  const stale = `${t.backupPath}.tmp`;
  await Deno.writeTextFile(stale, "x");
  const old = new Date(Date.now() - STALE_TEMP_MS - 60_000);
  await Deno.utime(stale, old, old);
  const r = await collectStatus(t.deps());
  assertEquals(r.exitCode, ExitCode.Failure);
  assertEquals(r.tempFiles.map((f) => f.path), [stale]);
  assertStringIncludes(r.concerns.find((c) => c.check === "temp_files")!.message, stale);
});

Deno.test("status: an expiry sweep not final long after expiry is exit 1; a fresh one is ok", async () => {
  await using t = await setup();
  await t.db.write((tx) =>
    transitionDeposit(tx, {
      depositId: new Uint8Array(32).fill(1),
      from: "Deposited",
      events: ["OnExpiry", "OnExpiryPublished"],
      expirySweep: { txid: txidN(99), tx: new Uint8Array([1]) },
    }, new Date())
  );
  t.setTip(101 + 144 + 1);
  const r = await collectStatus(t.deps());
  assertEquals(r.exitCode, ExitCode.Ok, JSON.stringify(r.concerns));
  assertEquals(r.sweeps.map((s) => [s.txid, s.blocksSinceExpiry, s.late]), [[txidN(99), 1, false]]);
  t.setTip(101 + 144 + 3 + 13);
  const late = await collectStatus(t.deps());
  assertEquals(late.exitCode, ExitCode.Failure);
  assertEquals(late.sweeps[0].late, true);
  assertStringIncludes(late.concerns.find((c) => c.check === "sweeps")!.message, txidN(99));
});

Deno.test("status: loop-ins are counted by state and each pending one says what it waits for; no database is exit 1", async () => {
  await using t = await setup();
  const store = new LoopInSwapStore(t.db);
  const swap = newSwap([`${txidN(1)}:0`], 100_000n, 1);
  await store.createSwap(swap);
  const r = await collectStatus(t.deps());
  assertEquals(r.loopins?.total, 1);
  assertEquals(r.loopins?.byState, [{ state: "InitHtlcTx", count: 1 }]);
  assertEquals(r.loopins?.active.map((a) => [a.swapHash, a.state]), [[
    bytesToHex(swap.swapHash),
    "InitHtlcTx",
  ]]);
  const line = r.concerns.find((c) => c.check === "loopins" && c.message.includes(bytesToHex(swap.swapHash)));
  assert(line && line.message.includes(r.loopins!.active[0].waitingFor), JSON.stringify(r.concerns));
  const none = await collectStatus(t.deps({ db: () => Promise.resolve(null) }));
  assertEquals(none.exitCode, ExitCode.Failure);
  assertStringIncludes(
    none.concerns.find((c) => c.check === "static_address")!.message,
    "no loopkit database",
  );
});
