/**
 * `loopkit recover` and `loopkit recover deposit` as subprocesses against a fake lnd gRPC server on 127.0.0.1
 * (TLS + macaroon, lnd's protos, lnd's key derivation and DeriveSharedKey formula) and a real libSQL file.
 * The original state is made the way an operator's node has it: a paid l402.token, a static-address row
 * whose client key is lnd's key 42060/2, and a backup written by `loopkit backup write`.
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { Transaction } from "@scure/btc-signer";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { startFakeLnd } from "../fakelnd/server.ts";
import { openDb } from "../../core/db/db.ts";
import {
  insertStaticAddress,
  listStaticAddresses,
  type StaticAddressRow,
} from "../../core/db/static_addresses.ts";
import { listDeposits } from "../../core/deposits/store.ts";
import type { Deposit } from "../../core/deposits/types.ts";
import { staticAddress } from "../../core/staticaddr/script.ts";
import { lndFlags, makeTokenFile, runCli, spawnCli, waitFor } from "./_harness.ts";
import { exists, treeHash } from "../fs.ts";
import { SHARED_KEY_NUMS_PUBKEY } from "../../core/backup/envelope.ts";
import { LoopInSwapStore } from "../../core/loopin/store.ts";
import { writeSwapRecordFile } from "../../core/loopin/swap_record_file.ts";
import { sampleSwapRecord } from "../../core/loopin/_swap_record_testing.ts";

const SERVER = secp256k1.getPublicKey(sha256(new TextEncoder().encode("recover test server key")), true);
const EXPIRY = 14400;
const CLIENT_INDEX = 2;

/**
 * Stores the legacy static address (key family 42060) whose client key `clientPubkey` is lnd's key at
 * `clientKeyIndex`, as `address new` leaves it in the database at `dbPath`.
 */
async function insertLegacyAddress(
  dbPath: string,
  clientPubkey: Uint8Array,
  clientKeyIndex: number,
  initiationHeight: number,
): Promise<void> {
  const { pkScript } = staticAddress({
    clientPubkey,
    serverPubkey: SERVER,
    csvExpiry: EXPIRY,
    network: "regtest",
  });
  const db = await openDb({ url: `file:${dbPath}`, network: "regtest" });
  try {
    await db.write((tx) =>
      insertStaticAddress(tx, {
        clientPubkey,
        serverPubkey: SERVER,
        expiry: EXPIRY,
        clientKeyFamily: 42060,
        clientKeyIndex,
        pkScript,
        protocolVersion: 0,
        initiationHeight,
      })
    );
  } finally {
    db.close();
  }
}

/** The operator's node before the loss: token, address row, backup written by the CLI. */
async function setup(clientIndex = CLIENT_INDEX) {
  const lnd = await startFakeLnd({ network: "regtest", blockHeight: 700 });
  const loopdir = await Deno.makeTempDir({ prefix: "loopkit-recover-" });
  const dataDir = `${loopdir}/regtest`;
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const dbPath = `${dataDir}/loopkit.db`;
  const child = (family: number, index: number) =>
    staticAddress({
      clientPubkey: lnd.keyRing.publicKey(family, index),
      serverPubkey: SERVER,
      csvExpiry: EXPIRY,
      network: "regtest",
    });
  const legacy = child(42060, clientIndex);
  await insertLegacyAddress(dbPath, lnd.keyRing.publicKey(42060, clientIndex), clientIndex, 321);
  const token = makeTokenFile();
  await Deno.writeFile(`${dataDir}/l402.token`, token.bytes, { mode: 0o600 });
  const flags = lndFlags(lnd, loopdir);
  const w = await runCli([...flags, "--json", "backup", "write"]);
  assertEquals(w.code, 0, w.stderr);
  const original = await readRows(dbPath);
  return {
    lnd,
    loopdir,
    dataDir,
    dbPath,
    flags,
    token,
    legacy,
    child,
    original,
    backupPath: w.json?.path as string,
    cli: (...args: string[]) => runCli([...flags, ...args]),
    /** The disk loss: database and token file gone, backup file kept. */
    async lose() {
      await Deno.remove(dbPath);
      await Deno.remove(`${dataDir}/l402.token`);
    },
    async [Symbol.asyncDispose]() {
      await lnd.stop();
      await Deno.remove(loopdir, { recursive: true });
    },
  };
}

async function readRows(dbPath: string): Promise<StaticAddressRow[]> {
  if (!(await exists(dbPath))) return [];
  const db = await openDb({ url: `file:${dbPath}`, network: "regtest" });
  try {
    return await listStaticAddresses(db);
  } finally {
    db.close();
  }
}

async function readDeposits(dbPath: string): Promise<Deposit[]> {
  const db = await openDb({ url: `file:${dbPath}`, network: "regtest" });
  try {
    return await listDeposits(db.client);
  } finally {
    db.close();
  }
}

function utxo(pkScript: Uint8Array, n: number, confirmations = 6) {
  return {
    txid: bytesToHex(sha256(new TextEncoder().encode(`deposit ${n}`))),
    vout: 0,
    amountSat: 100_000n + BigInt(n),
    pkScript,
    confirmations,
  };
}

Deno.test("recover after losing the database and the token restores the same pkScript and a byte-identical token; a second run is a no-op", async () => {
  await using t = await setup();
  await t.lose();
  const r = await t.cli("--json", "recover");
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.json?.backup_file, t.backupPath);
  assertEquals(r.json?.restored_l402, true);
  assertEquals(r.json?.restored_static_address, true);
  assertEquals(r.json?.static_address, t.legacy.address);
  assertEquals(r.json?.deposit_sync_error, null);
  assertEquals(r.json?.num_deposits_found, 0);
  assertEquals(await Deno.readFile(`${t.dataDir}/l402.token`), t.token.bytes);
  assertEquals((await Deno.stat(`${t.dataDir}/l402.token`)).mode! & 0o777, 0o600);
  const rows = await readRows(t.dbPath);
  assertEquals(rows.map((x) => ({ ...x, id: 0 })), t.original.map((x) => ({ ...x, id: 0 })));
  assertEquals(t.lnd.imports.length, 1);
  assertEquals(t.lnd.imports[0].address, t.legacy.address);
  const warnings = r.json?.warnings as string[];
  assert(warnings.some((w) => w.includes("--height-hint 321")), warnings.join("\n"));

  const before = await treeHash(t.loopdir);
  const again = await t.cli("--json", "recover");
  assertEquals(again.code, 0, again.stderr);
  assertEquals([again.json?.restored_l402, again.json?.restored_static_address], [false, false]);
  assertEquals(await treeHash(t.loopdir), before);

  const text = await t.cli("recover");
  assertEquals(text.code, 0, text.stderr);
  assertStringIncludes(
    text.stdout,
    `static address ${t.legacy.address} (key 42060/${CLIENT_INDEX}): already stored`,
  );
});

Deno.test("recover finds a client key at 42060/22 (past Loop's 0..20), reports the index and warns; --key-scan-limit 20 refuses it", async () => {
  await using t = await setup(22);
  await t.lose();
  const narrow = await t.cli("--json", "recover", "--key-scan-limit", "20");
  assertEquals(narrow.code, 3, narrow.stderr);
  assertStringIncludes(narrow.stderr, "none of lnd's keys 42060/0..20");
  assertEquals(await exists(`${t.dataDir}/l402.token`), false);

  const r = await t.cli("--json", "recover");
  assertEquals(r.code, 0, r.stderr);
  assertEquals([r.json?.client_key_family, r.json?.client_key_index], [42060, 22]);
  assertEquals(r.json?.static_address, t.legacy.address);
  const warnings = r.json?.warnings as string[];
  assert(
    warnings.some((w) => w.includes("42060/22") && w.includes("Loop's own restore")),
    warnings.join("\n"),
  );
  assertEquals((await readRows(t.dbPath)).map((x) => x.clientKeyIndex), [22]);

  const bad = await t.cli("--json", "recover", "--key-scan-limit", "19");
  assertEquals(bad.code, 2, bad.stderr);
  assertStringIncludes(bad.stderr, "--key-scan-limit");
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`recover interrupted by ${signal} while lnd stalls after l402.token was written: rolled back, exit 130`, async () => {
    await using t = await setup();
    await t.lose();
    const before = await treeHash(t.loopdir);
    t.lnd.setStall("WalletKit.ImportTapscript", true);
    assertEquals(t.lnd.calls["WalletKit.ImportTapscript"] ?? 0, 0);
    const run = spawnCli([...t.flags, "--json", "recover"]);
    await waitFor("the stalled ImportTapscript", () => (t.lnd.calls["WalletKit.ImportTapscript"] ?? 0) >= 1);
    assert(await exists(`${t.dataDir}/l402.token`), "the token was written before the import");
    run.child.kill(signal);
    const r = await run.done();
    assertEquals(r.code, 130, r.stderr);
    const err = JSON.parse(r.stderr.trim().split("\n").at(-1)!).error;
    assertEquals(err.code, "interrupted");
    assertStringIncludes(err.message, `rolled back: removed "${t.dataDir}/l402.token"`);
    assertEquals(await exists(`${t.dataDir}/l402.token`), false);
    assertEquals(await treeHash(t.loopdir), before, "nothing this run wrote is left");

    // lnd answers again: the restore runs to the end.
    t.lnd.setStall("WalletKit.ImportTapscript", false);
    const again = await t.cli("--json", "recover");
    assertEquals(again.code, 0, again.stderr);
    assertEquals(again.json?.restored_l402, true);
  });
}

Deno.test("recover interrupted while lnd stalls before anything is written exits 130 at once, nothing written", async () => {
  await using t = await setup();
  await t.lose();
  const before = await treeHash(t.loopdir);
  t.lnd.setStall("WalletKit.DeriveKey", true);
  const asked = t.lnd.calls["WalletKit.DeriveKey"] ?? 0; // backup write asked one in setup()
  const run = spawnCli([...t.flags, "recover"]);
  await waitFor("the stalled DeriveKey", () => (t.lnd.calls["WalletKit.DeriveKey"] ?? 0) > asked);
  run.child.kill("SIGTERM");
  const r = await run.done();
  assertEquals(r.code, 130, r.stderr);
  assertStringIncludes(r.stderr, "nothing half-written is kept");
  assertEquals(await treeHash(t.loopdir), before);
});

Deno.test("a temp copy of the token left by a killed recover is reported by backup verify and removed by the next recover and backup write", async () => {
  await using t = await setup();
  await t.lose();
  // What `kill -9` between the temp file's creation and its removal leaves: the full token, 0600.
  const stale = `${t.dataDir}/.loopkit-recover-0123456789abcdef.tmp`;
  await Deno.writeFile(stale, t.token.bytes, { mode: 0o600 });
  const verify = await t.cli("--json", "backup", "verify");
  assertEquals(verify.json?.stale_temp_files, [stale]);
  assert(await exists(stale), "verify writes nothing");

  const r = await t.cli("--json", "recover");
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await exists(stale), false);
  assert((r.json?.warnings as string[]).some((w) => w.includes(stale)), r.stdout);

  const staleToken = `${t.dataDir}/l402.token.tmp`;
  await Deno.writeFile(staleToken, t.token.bytes, { mode: 0o600 });
  const w = await t.cli("--json", "backup", "write");
  assertEquals(w.code, 0, w.stderr);
  assertEquals(w.json?.removed_temp_files, [staleToken]);
  assertEquals(await exists(staleToken), false);
  assertEquals((await t.cli("--json", "backup", "verify")).json?.stale_temp_files, []);
});

Deno.test("recover with an lnd of another seed reports the backup undecryptable, exit 3, nothing written", async () => {
  await using t = await setup();
  await t.lose();
  const other = await startFakeLnd({
    network: "regtest",
    seed: sha256(new TextEncoder().encode("another seed")),
  });
  try {
    const before = await treeHash(t.loopdir);
    const r = await runCli([...lndFlags(other, t.loopdir), "--json", "recover"]);
    assertEquals(r.code, 3, r.stderr);
    assertStringIncludes(r.stderr, "unable to decrypt backup file");
    assertEquals(await treeHash(t.loopdir), before);
    assertEquals(other.imports.length, 0);
  } finally {
    await other.stop();
  }
});

Deno.test("recover refuses a different l402.token or a pending token: exit 1, directory and database unchanged", async () => {
  await using t = await setup();
  await Deno.writeFile(`${t.dataDir}/l402.token`, makeTokenFile().bytes, { mode: 0o600 });
  let before = await treeHash(t.loopdir);
  const diff = await t.cli("--json", "recover");
  assertEquals(diff.code, 1, diff.stderr);
  assertStringIncludes(diff.stderr, "already exists with different contents");
  assertStringIncludes(diff.stderr, "restore_conflict");
  assertEquals(await treeHash(t.loopdir), before);

  await Deno.remove(`${t.dataDir}/l402.token`);
  await Deno.writeFile(`${t.dataDir}/l402.token.pending`, makeTokenFile({ paid: false }).bytes, {
    mode: 0o600,
  });
  before = await treeHash(t.loopdir);
  const pending = await t.cli("recover");
  assertEquals(pending.code, 1, pending.stderr);
  assertStringIncludes(pending.stderr, 'unexpected file "l402.token.pending"');
  assertEquals(await treeHash(t.loopdir), before);
  assertEquals(t.lnd.imports.length, 0);
});

Deno.test("recover refuses a database holding another static address, exit 1, nothing changed", async () => {
  await using t = await setup();
  await t.lose();
  await insertLegacyAddress(t.dbPath, t.lnd.keyRing.publicKey(42060, 0), 0, 400);
  const before = await treeHash(t.loopdir);
  const r = await t.cli("recover");
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, "existing static address differs from backup");
  assertEquals(await treeHash(t.loopdir), before);
});

Deno.test("recover rolls back when the tapscript import fails: the token it wrote is removed, the database unchanged", async () => {
  await using t = await setup();
  await Deno.remove(`${t.dataDir}/l402.token`);
  const db = await openDb({ url: `file:${t.dbPath}`, network: "regtest" });
  await db.client.execute("DELETE FROM static_addresses");
  db.close();
  const before = await treeHash(t.loopdir);
  t.lnd.setImportTapscriptError("error importing script into wallet: injected failure");
  const r = await t.cli("--json", "recover");
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, "injected failure");
  assertStringIncludes(r.stderr, `removed \\"${t.dataDir}/l402.token\\"`);
  assertEquals(await exists(`${t.dataDir}/l402.token`), false);
  assertEquals(await treeHash(t.loopdir), before);
  assertEquals(await readRows(t.dbPath), []);

  // Failure on a branch child's import (after the legacy import succeeded) rolls back the same way.
  t.lnd.setUtxos([utxo(t.child(42061, 1).pkScript, 1)]);
  t.lnd.setImportTapscriptError("error importing script into wallet: second import fails", 1);
  const r2 = await t.cli("recover");
  assertEquals(r2.code, 1, r2.stderr);
  assertStringIncludes(r2.stderr, "second import fails");
  assertEquals(await treeHash(t.loopdir), before);

  t.lnd.setImportTapscriptError("");
  const ok = await t.cli("--json", "recover");
  assertEquals(ok.code, 0, ok.stderr);
  assertEquals(ok.json?.restored_l402, true);
  assertEquals((await readRows(t.dbPath)).length, 2);
});

/** Wallet outputs paying these children (key family, index): receive 0, 3 and 22, change 1. */
const GAP_HITS: [number, number][] = [[42061, 0], [42061, 3], [42061, 22], [42062, 1]];

Deno.test("recover --gap 20 finds receive 0, 3, 22 and change 1 and reports the scanned ranges", async () => {
  await using t = await setup();
  await t.lose();
  t.lnd.setUtxos(GAP_HITS.map(([f, i], n) => utxo(t.child(f, i).pkScript, n)));
  const r = await t.cli("--json", "recover", "--gap", "20");
  assertEquals(r.code, 0, r.stderr);
  const scanned = r.json?.scanned as {
    branch: string;
    key_family: number;
    first_index: number;
    last_index: number;
    hits: { index: number; address: string; restored: boolean }[];
  }[];
  assertEquals(scanned.map((s) => [s.branch, s.key_family, s.first_index, s.last_index]), [
    ["receive", 42061, 0, 42],
    ["change", 42062, 0, 21],
  ]);
  assertEquals(scanned[0].hits.map((h) => h.index), [0, 3, 22]);
  assertEquals(scanned[1].hits.map((h) => h.index), [1]);
  assertEquals(scanned[0].hits[2].address, t.child(42061, 22).address);
  assert(scanned.every((s) => s.hits.every((h) => h.restored)));
  assertEquals(r.json?.num_deposits_found, 4);
  assertEquals((r.json?.warnings as string[]).filter((w) => w.includes("does not rescan")), []);
  const rows = await readRows(t.dbPath);
  assertEquals(rows.map((x) => [x.clientKeyFamily, x.clientKeyIndex]), [
    [42060, CLIENT_INDEX],
    [42061, 0],
    [42061, 3],
    [42061, 22],
    [42062, 1],
  ]);
  assertEquals(t.lnd.imports.length, 5);
  const deposits = await readDeposits(t.dbPath);
  assertEquals(deposits.map((d) => d.confirmationHeight), [695, 695, 695, 695]);
});

Deno.test("recover --gap 2 stops before child 22 and says where it stopped", async () => {
  await using t = await setup();
  await t.lose();
  t.lnd.setUtxos(GAP_HITS.map(([f, i], n) => utxo(t.child(f, i).pkScript, n)));
  const r = await t.cli("--json", "recover", "--gap", "2");
  assertEquals(r.code, 0, r.stderr);
  const scanned = r.json?.scanned as { last_index: number; hits: { index: number }[] }[];
  assertEquals(scanned.map((s) => [s.last_index, s.hits.map((h) => h.index)]), [[2, [0]], [3, [1]]]);
  assertEquals((await readRows(t.dbPath)).length, 3);
  const text = await t.cli("recover", "--gap", "2");
  assertEquals(text.code, 0, text.stderr);
  assertStringIncludes(
    text.stdout,
    "receive addresses (family 42061): scanned indexes 0..2, found 0; stopped after index 2",
  );
  // A wider gap later finds the rest.
  const wide = await t.cli("--json", "recover", "--gap", "20");
  assertEquals(wide.code, 0, wide.stderr);
  assertEquals(wide.json?.restored_static_address, true);
  assertEquals((await readRows(t.dbPath)).length, 5);
});

Deno.test("recover --dry-run prints the plan and writes nothing (tree and database unchanged, no import)", async () => {
  await using t = await setup();
  await t.lose();
  t.lnd.setUtxos([utxo(t.child(42062, 1).pkScript, 1)]);
  const before = await treeHash(t.loopdir);
  const r = await t.cli("--json", "recover", "--dry-run");
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.json?.dry_run, true);
  assertEquals([r.json?.restored_l402, r.json?.restored_static_address], [true, true]);
  assertEquals((r.json?.scanned as { hits: unknown[] }[]).map((s) => s.hits.length), [0, 1]);
  assertEquals(r.json?.num_deposits_found, 1);
  assertEquals(await treeHash(t.loopdir), before);
  assertEquals(t.lnd.imports.length, 0);
  const text = await t.cli("recover", "--dry-run");
  assertStringIncludes(text.stdout, "dry run: nothing written");
  assertEquals(await treeHash(t.loopdir), before);
});

Deno.test("recover --dry-run with the database still there (token lost) leaves the database file untouched", async () => {
  await using t = await setup();
  await Deno.remove(`${t.dataDir}/l402.token`);
  const before = await treeHash(t.loopdir);
  const r = await t.cli("--json", "recover", "--dry-run");
  assertEquals(r.code, 0, r.stderr);
  assertEquals([r.json?.restored_l402, r.json?.restored_static_address], [true, false]);
  assertEquals(await treeHash(t.loopdir), before);
  assertEquals(t.lnd.imports.length, 0);
});

Deno.test("recover flags: bad --gap, a --backup-file that is not a backup name, exit 2", async () => {
  await using t = await setup();
  const gap = await t.cli("recover", "--gap", "0");
  assertEquals(gap.code, 2, gap.stderr);
  const file = await t.cli("recover", "--backup-file", `${t.loopdir}/backup.enc`);
  assertEquals(file.code, 2, file.stderr);
  assertStringIncludes(file.stderr, "invalid backup file path");
});

Deno.test("recover exits 4 when the deposit sync fails after a successful restore, and keeps the restore", async () => {
  await using t = await setup();
  await t.lose();
  // A wallet output paying our address with more confirmations than the tip allows: sync cannot derive a height.
  t.lnd.setUtxos([utxo(t.legacy.pkScript, 1, 5000)]);
  const r = await t.cli("--json", "recover");
  assertEquals(r.code, 4, r.stderr);
  assert(typeof r.json?.deposit_sync_error === "string" && r.json.deposit_sync_error !== "", r.stdout);
  assertEquals(r.json?.restored_l402, true);
  assertEquals(await Deno.readFile(`${t.dataDir}/l402.token`), t.token.bytes);
  assertEquals((await readRows(t.dbPath)).length, 1);
});

/** A raw transaction paying `outputs` (one dummy input). */
function rawTx(outputs: { script: Uint8Array; amount: bigint }[]): { raw: Uint8Array; txid: string } {
  const tx = new Transaction({ allowUnknownOutputs: true, allowUnknownInputs: true });
  tx.addInput({ txid: sha256(new TextEncoder().encode("funding")), index: 0 });
  for (const o of outputs) tx.addOutput(o);
  return { raw: tx.unsignedTx, txid: tx.id };
}

Deno.test("recover deposit brings back a deposit lnd cannot see, at its block height; refuses what is not ours", async () => {
  await using t = await setup();
  const other = Uint8Array.from([0x51, 0x20, ...new Uint8Array(32).fill(0x77)]);
  const { raw, txid } = rawTx([{ script: other, amount: 5_000n }, {
    script: t.legacy.pkScript,
    amount: 120_000n,
  }]);
  t.lnd.setConfirmation(txid, { blockHeight: 650, rawTx: raw });
  const pk = bytesToHex(t.legacy.pkScript);

  const refusals: [string[], number, string][] = [
    [["--outpoint", `${txid}:1`, "--height-hint", "0"], 2, "--height-hint must be positive"],
    [["--outpoint", `${txid}:1`, "--height-hint", "600", "--pkscript", "0014" + "ab".repeat(20)], 2, "P2TR"],
    [
      ["--outpoint", `${txid}:1`, "--height-hint", "600", "--pkscript", bytesToHex(other)],
      1,
      "no static address child matched",
    ],
    [
      ["--outpoint", `${txid}:0`, "--height-hint", "600", "--pkscript", pk],
      1,
      "confirmed output pkScript mismatch",
    ],
  ];
  const before = await treeHash(t.loopdir);
  for (const [args, code, want] of refusals) {
    const r = await t.cli("recover", "deposit", ...args);
    assertEquals(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assertStringIncludes(r.stderr, want);
  }
  assertEquals(await treeHash(t.loopdir), before);

  // Nothing spends the output: each run waits --spend-timeout for lnd's spend event, then records it.
  const ours = ["--outpoint", `${txid}:1`, "--height-hint", "600", "--spend-timeout", "1"];
  const r = await t.cli("--json", "recover", "deposit", ...ours, "--pkscript", pk);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.json?.outpoint, `${txid}:1`);
  assertEquals(r.json?.value_sat, "120000");
  assertEquals(r.json?.confirmation_height, "650");
  assertEquals([r.json?.client_key_family, r.json?.client_key_index], [42060, CLIENT_INDEX]);
  assertEquals(r.json?.static_address, t.legacy.address);
  assertEquals([r.json?.recovered_deposit, r.json?.state, r.json?.wallet_visible], [
    true,
    "Deposited",
    false,
  ]);
  const deposits = await readDeposits(t.dbPath);
  assertEquals(deposits.map((d) => [d.txid, d.vout, d.amountSat, d.confirmationHeight]), [[
    txid,
    1,
    120_000n,
    650,
  ]]);

  const again = await t.cli("--json", "recover", "deposit", ...ours);
  assertEquals(again.code, 0, again.stderr);
  assertEquals(again.json?.recovered_deposit, false);
});

Deno.test("recover deposit of an unconfirmed outpoint gives up after --timeout and writes nothing", async () => {
  await using t = await setup();
  const before = await treeHash(t.loopdir);
  const r = await t.cli(
    "recover",
    "deposit",
    "--outpoint",
    `${"ab".repeat(32)}:0`,
    "--height-hint",
    "600",
    "--pkscript",
    bytesToHex(t.legacy.pkScript),
    "--timeout",
    "1",
  );
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, "did not confirm");
  assertEquals(await treeHash(t.loopdir), before);
});

Deno.test("recover deposit refuses an output lnd reports already spent: exit 1, spending txid and height named, nothing written", async () => {
  await using t = await setup();
  const { raw, txid } = rawTx([{ script: t.legacy.pkScript, amount: 90_000n }]);
  t.lnd.setConfirmation(txid, { blockHeight: 650, rawTx: raw });
  const spender = bytesToHex(sha256(new TextEncoder().encode("spender")));
  t.lnd.setSpend(txid, 0, { spendingTxid: spender, spendingHeight: 660 });
  const before = await treeHash(t.loopdir);
  const r = await t.cli(
    "recover",
    "deposit",
    "--outpoint",
    `${txid}:0`,
    "--height-hint",
    "600",
    "--pkscript",
    bytesToHex(t.legacy.pkScript),
  );
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, `already spent by transaction ${spender} at height 660`);
  assertEquals(await treeHash(t.loopdir), before);
  assertEquals(t.lnd.imports.length, 0);
  const spendReq = t.lnd.requests.find((x) => x.rpc === "ChainNotifier.RegisterSpendNtfn");
  assert(spendReq, "lnd was asked for a spend notification");
  assertEquals(spendReq.request.height_hint, 650);
});

Deno.test("recover imports a loop-in's recovery record the lost database had: armed, UnlockDeposits; a second run imports nothing; backup verify ignores the record", async () => {
  await using t = await setup();
  const record = sampleSwapRecord({
    address: {
      id: 1,
      pkScript: t.legacy.pkScript,
      clientPubkey: t.lnd.keyRing.publicKey(42060, CLIENT_INDEX),
      serverPubkey: SERVER,
      expiry: EXPIRY,
      clientKeyFamily: 42060,
      clientKeyIndex: CLIENT_INDEX,
    },
  });
  // Sealed with this lnd's backup key, as `loopin` writes it before the marker.
  const key = t.lnd.keyRing.sharedKey(SHARED_KEY_NUMS_PUBKEY, 42060, 0);
  const { path } = await writeSwapRecordFile(t.dataDir, key, record);
  const verify = await t.cli("--json", "backup", "verify");
  assertEquals(verify.code, 0, verify.stderr);
  assert(!verify.stdout.includes("loopin_swap_"), verify.stdout);
  await t.lose();
  const r = await t.cli("--json", "recover");
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.json?.loopins, [{
    swap_hash: bytesToHex(record.swapHash),
    record_file: path,
    action: "imported",
    reason: null,
    deposits_created: 2,
    deposits_linked: 0,
  }]);
  const db = await openDb({ url: `file:${t.dbPath}`, network: "regtest" });
  try {
    const s = (await new LoopInSwapStore(db).getSwap(record.swapHash))!;
    assertEquals(s.state, "UnlockDeposits");
    assert(s.armedAt !== null);
    assertEquals(s.htlcTxids, record.htlcTxids);
    assertEquals(s.deposits.map((d) => d.state), ["LoopingIn", "LoopingIn"]);
  } finally {
    db.close();
  }
  const text = await t.cli("recover");
  assertEquals(text.code, 0, text.stderr);
  assertStringIncludes(
    text.stdout,
    `loop-in ${bytesToHex(record.swapHash)} (${path}): already in the database`,
  );
});
