import { join } from "node:path";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "../../tests/assert.ts";
import { type Db, openDb } from "../db/db.ts";
import { insertStaticAddress, listStaticAddresses, type StaticAddressRow } from "../db/static_addresses.ts";
import { listDeposits } from "../deposits/store.ts";
import { syncDeposits } from "../deposits/sync.ts";
import { LoopkitError } from "../errors.ts";
import { staticAddress } from "../staticaddr/script.ts";
import { deriveBackupKey, sealBackup } from "./envelope.ts";
import { backupFileName } from "./file_name.ts";
import { encodeBackupPayload } from "./payload.ts";
import {
  denoRestoreFs,
  planAddressRows,
  publishToken,
  recover,
  type RecoverDeps,
  type WantedAddress,
} from "./restore.ts";
import type { BackupPayload } from "./types.ts";
import { writeBackup } from "./write.ts";
import { seededTokenId, tokenFileBytes, treeHash } from "./_testing.ts";
import { contentHash, lndFailure, MemLnd, utxoFor } from "./_restore_testing.ts";
import { LoopInSwapStore } from "../loopin/store.ts";
import { swapRecordFileName } from "../loopin/swap_record.ts";
import { writeSwapRecordFile } from "../loopin/swap_record_file.ts";
import { sampleSwapRecord } from "../loopin/_swap_record_testing.ts";

const T = 1776159001000000123n;
const SERVER = secp256k1.getPublicKey(Uint8Array.from({ length: 32 }, (_, i) => 40 + i), true);
const EXPIRY = 144;
const CLIENT_INDEX = 3;

/** A temp tree: `src/` where the original node wrote its backup, `data/` the data dir to restore into. */
class Fixture {
  readonly dbs: Db[] = [];
  constructor(
    readonly root: string,
    readonly lnd: MemLnd,
    readonly backupPath: string,
    readonly token: Uint8Array,
  ) {}
  get dataDir() {
    return join(this.root, "data");
  }
  get dbPath() {
    return join(this.dataDir, "loopkit.db");
  }
  async open(): Promise<Db> {
    const db = await openDb({ url: `file:${this.dbPath}`, network: "regtest" });
    this.dbs.push(db);
    return db;
  }
  async exists(path: string): Promise<boolean> {
    try {
      await Deno.lstat(path);
      return true;
    } catch {
      return false;
    }
  }
  deps(over: Partial<RecoverDeps> = {}): RecoverDeps {
    let db: Promise<Db> | undefined;
    const open = () => db ??= this.open();
    return {
      dataDir: this.dataDir,
      network: "regtest",
      lnd: this.lnd,
      existingDb: async () => (await this.exists(this.dbPath)) ? await open() : null,
      openDb: async () => {
        await Deno.mkdir(this.dataDir, { recursive: true });
        return await open();
      },
      syncDeposits: (d) => syncDeposits({ db: d, lnd: this.syncLnd() }),
      ...over,
    };
  }
  /** What `syncDeposits` needs, from the same wallet (no expiry sweeps happen in these tests). */
  syncLnd() {
    const lnd = this.lnd;
    const unused = () => Promise.reject(new Error("not used by these tests"));
    const adapter = {
      getInfo: () => lnd.getInfo(),
      listUnspent: () => lnd.listUnspent(),
      nextSweepPkScript: () =>
        Promise.resolve(Uint8Array.from([0x51, 0x20, ...crypto.getRandomValues(new Uint8Array(32))])),
      estimateFeeSatPerKw: () => Promise.resolve(2500n),
      minRelayFeeSatPerKw: () => Promise.resolve(253n),
      signOutputRaw: unused,
      publishTransaction: unused,
      registerConfirmation: () => Promise.resolve(null),
      registerSpend: () => Promise.resolve(null),
    };
    return adapter;
  }
  async rows(): Promise<StaticAddressRow[]> {
    if (!(await this.exists(this.dbPath))) return [];
    return await listStaticAddresses(await this.open());
  }
  legacyAddress() {
    return this.lnd.childAddress(42060, CLIENT_INDEX, SERVER, EXPIRY);
  }
  async [Symbol.asyncDispose]() {
    for (const d of this.dbs) d.close();
    await Deno.remove(this.root, { recursive: true });
  }
}

/** Writes a real backup with `writeBackup` (the original node), copied into `data/` unless told not to. */
async function fixture(
  opts: { seed?: string; copy?: boolean; legacyHeight?: number } = {},
): Promise<Fixture> {
  const root = await Deno.makeTempDir({ prefix: "loopkit-restore-" });
  const lnd = new MemLnd(opts.seed ?? "alice");
  const src = join(root, "src");
  await Deno.mkdir(src);
  const token = tokenFileBytes(1, T);
  await Deno.writeFile(join(src, "l402.token"), token);
  const r = await writeBackup({
    dataDir: src,
    network: "regtest",
    lnd,
    staticAddress: () =>
      Promise.resolve({
        clientPubkey: lnd.publicKey(42060, CLIENT_INDEX),
        serverPubkey: SERVER,
        expiry: EXPIRY,
        protocolVersion: 0,
        clientKeyFamily: 42060,
        clientKeyIndex: CLIENT_INDEX,
        initiationHeight: opts.legacyHeight ?? 321,
      }),
    currentHeight: () => Promise.resolve(654),
  });
  assert(r.written && r.path);
  const f = new Fixture(root, lnd, r.path, token);
  if (opts.copy !== false) {
    await Deno.mkdir(f.dataDir, { mode: 0o700 });
    await Deno.copyFile(r.path, join(f.dataDir, backupFileName(T, seededTokenId(1))));
  }
  lnd.calls.deriveSharedKey = 0;
  return f;
}

/** A crafted backup sealed with `lnd`'s real key, written into `dir`. */
async function craftedBackup(lnd: MemLnd, dir: string, edit: (p: BackupPayload) => void): Promise<string> {
  const p: BackupPayload = {
    version: 1,
    network: "regtest",
    l402TokenId: seededTokenId(1),
    l402TokenCreatedAtNs: T,
    staticAddress: {
      protocolVersion: 0,
      clientPubkey: lnd.publicKey(42060, CLIENT_INDEX),
      serverPubkey: SERVER,
      expiry: EXPIRY,
      legacyClientKeyFamily: 42060,
      mainKeyFamily: 42061,
      changeKeyFamily: 42062,
      legacyFirstHeight: 321,
      multiAddressFirstHeight: 654,
    },
    tokenFiles: [{ name: "l402.token", data: tokenFileBytes(1, T) }],
  };
  edit(p);
  const key = await deriveBackupKey(lnd);
  const path = join(dir, backupFileName(T, seededTokenId(1)));
  await Deno.writeFile(path, sealBackup(key, encodeBackupPayload(p)));
  return path;
}

Deno.test("recover() into an empty data directory restores the byte-identical token and the same address row", async () => {
  await using f = await fixture();
  const r = await recover(f.deps());
  assertEquals(f.lnd.calls.deriveSharedKey, 1);
  assertEquals(f.lnd.calls.deriveNextKey, 0);
  assertEquals(r.restoredL402, true);
  assertEquals(r.restoredStaticAddress, true);
  assertEquals(r.dryRun, false);
  assertEquals(r.backupFile, join(f.dataDir, backupFileName(T, seededTokenId(1))));
  assertEquals(r.tokenId, seededTokenId(1));
  const tokenPath = join(f.dataDir, "l402.token");
  assertEquals(await Deno.readFile(tokenPath), f.token);
  assertEquals((await Deno.stat(tokenPath)).mode! & 0o777, 0o600);
  const expected = staticAddress({
    clientPubkey: f.lnd.keyRing.publicKey(42060, CLIENT_INDEX),
    serverPubkey: SERVER,
    csvExpiry: EXPIRY,
    network: "regtest",
  });
  assertEquals(r.staticAddress, expected.address);
  const rows = await f.rows();
  assertEquals(rows.length, 1);
  assertEquals(
    { ...rows[0], id: 0 },
    {
      id: 0,
      clientPubkey: f.lnd.keyRing.publicKey(42060, CLIENT_INDEX),
      serverPubkey: SERVER,
      expiry: EXPIRY,
      clientKeyFamily: 42060,
      clientKeyIndex: CLIENT_INDEX,
      pkScript: expected.pkScript,
      protocolVersion: 0,
      initiationHeight: 321,
    },
  );
  assertEquals(f.lnd.imported.size, 1);
  assertEquals(r.scanned.map((s) => [s.family, s.lastIndex]), [[42061, null], [42062, null]]);
  // The wallet shows nothing: the no-rescan warning gives the backup's first height.
  assertEquals(r.walletDeposits, 0);
  assert(
    r.warnings.some((w) => w.includes("does not rescan") && w.includes("--height-hint 321")),
    r.warnings.join("\n"),
  );
  for await (const e of Deno.readDir(f.dataDir)) assert(!e.name.endsWith(".tmp"), `stray ${e.name}`);
});

Deno.test("recover() a second time is a no-op: both restored flags false, nothing changes", async () => {
  await using f = await fixture();
  await recover(f.deps());
  const rowsBefore = await f.rows();
  const tokenStat = await Deno.stat(join(f.dataDir, "l402.token"));
  const r = await recover(f.deps());
  assertEquals([r.restoredL402, r.restoredStaticAddress], [false, false]);
  assertEquals(r.legacy.action, "existing");
  assertEquals(await f.rows(), rowsBefore);
  assertEquals((await Deno.stat(join(f.dataDir, "l402.token"))).mtime, tokenStat.mtime);
});

Deno.test("recover() with the token file still present and the database deleted restores only the address", async () => {
  await using f = await fixture();
  await Deno.writeFile(join(f.dataDir, "l402.token"), f.token, { mode: 0o600 });
  const r = await recover(f.deps());
  assertEquals([r.restoredL402, r.restoredStaticAddress], [false, true]);
  assertEquals((await f.rows()).length, 1);
});

Deno.test("recover() with lnd of another seed fails undecryptable (exit 3) and writes nothing", async () => {
  await using f = await fixture();
  const before = await treeHash(f.root);
  const other = new MemLnd("mallory");
  const err = await assertRejects(
    () => recover(f.deps({ lnd: other })),
    LoopkitError,
    "unable to decrypt backup file",
  );
  assertEquals((err as LoopkitError).exitCode, 3);
  assertEquals(other.imported.size, 0);
  assertEquals(await treeHash(f.root), before);
});

Deno.test("recover() resolves --backup-file strictly: bad name exit 2, missing file exit 2, empty dir exit 3", async () => {
  await using f = await fixture({ copy: false });
  const bad = await assertRejects(
    () => recover(f.deps({ backupFile: join(f.root, "backup.enc") })),
    LoopkitError,
    "invalid backup file path",
  );
  assertEquals((bad as LoopkitError).exitCode, 2);
  const missing = await assertRejects(
    () => recover(f.deps({ backupFile: join(f.root, backupFileName(T, seededTokenId(9))) })),
    LoopkitError,
    "does not exist",
  );
  assertEquals((missing as LoopkitError).exitCode, 2);
  const none = await assertRejects(() => recover(f.deps()), LoopkitError, "does not exist");
  assertEquals([(none as LoopkitError).exitCode, (none as LoopkitError).code], [3, "backup_not_found"]);
  await Deno.mkdir(f.dataDir);
  const empty = await assertRejects(() => recover(f.deps()), LoopkitError, "No backup file");
  assertEquals((empty as LoopkitError).exitCode, 3);
  // The explicit file outside the data directory works and is reported resolved.
  const r = await recover(f.deps({ backupFile: f.backupPath }));
  assertEquals(r.backupFile, f.backupPath);
  assertEquals(await Deno.readFile(join(f.dataDir, "l402.token")), f.token);
});

Deno.test("recover() auto-selection skips a newer invalid file, warns about it, and restores the valid one", async () => {
  await using f = await fixture();
  const newer = join(f.dataDir, backupFileName(T + 1n, seededTokenId(1)));
  await Deno.writeFile(
    newer,
    new TextEncoder().encode("loopbak1 and junk that does not decrypt at all......"),
  );
  const r = await recover(f.deps());
  assertEquals(r.backupFile, join(f.dataDir, backupFileName(T, seededTokenId(1))));
  assert(
    r.warnings.some((w) => w.includes(newer) && w.includes("unable to decrypt backup file")),
    r.warnings.join("\n"),
  );
});

Deno.test("recover() refuses a different l402.token with Loop's wording: exit 1, tree and database unchanged", async () => {
  await using f = await fixture();
  await recover(f.deps());
  const other = tokenFileBytes(2, T);
  await Deno.writeFile(join(f.dataDir, "l402.token"), other);
  for (const d of f.dbs.splice(0)) d.close();
  const before = await treeHash(f.root);
  const imports = f.lnd.calls.importTapscript;
  const err = await assertRejects(
    () => recover(f.deps()),
    LoopkitError,
    `token file "l402.token" already exists with different contents`,
  );
  assertEquals([(err as LoopkitError).exitCode, (err as LoopkitError).code], [1, "restore_conflict"]);
  assertEquals(f.lnd.calls.importTapscript, imports);
  for (const d of f.dbs.splice(0)) d.close();
  assertEquals(await treeHash(f.root), before);
});

Deno.test("recover() refuses when a pending token exists and writes no l402.token", async () => {
  await using f = await fixture();
  await Deno.writeFile(join(f.dataDir, "l402.token.pending"), tokenFileBytes(2, T, false));
  const before = await treeHash(f.root);
  const err = await assertRejects(() => recover(f.deps()), LoopkitError, "unexpected file");
  assertStringIncludes((err as Error).message, "l402.token.pending");
  assertEquals(await treeHash(f.root), before);
  assertEquals(await f.exists(join(f.dataDir, "l402.token")), false);
  assertEquals(await f.exists(f.dbPath), false);
});

Deno.test("recover() refuses a database holding another static address and leaves it unchanged", async () => {
  await using f = await fixture();
  const db = await f.open();
  const otherAddr = f.lnd.childAddress(42060, 0, SERVER, EXPIRY);
  await db.write((tx) =>
    insertStaticAddress(tx, {
      clientPubkey: f.lnd.publicKey(42060, 0),
      serverPubkey: SERVER,
      expiry: EXPIRY,
      clientKeyFamily: 42060,
      clientKeyIndex: 0,
      pkScript: otherAddr.pkScript,
      protocolVersion: 0,
      initiationHeight: 300,
    })
  );
  for (const d of f.dbs.splice(0)) d.close();
  const before = await treeHash(f.root);
  const err = await assertRejects(
    () => recover(f.deps()),
    LoopkitError,
    "existing static address differs from backup",
  );
  assertEquals((err as LoopkitError).exitCode, 1);
  for (const d of f.dbs.splice(0)) d.close();
  assertEquals(await treeHash(f.root), before);
  assertEquals(f.lnd.imported.size, 0);
});

Deno.test("recover() refuses a stored legacy row that differs only in initiation height (case 43)", async () => {
  await using f = await fixture();
  await recover(f.deps());
  await (await f.open()).client.execute("UPDATE static_addresses SET initiation_height = 456");
  await Deno.remove(join(f.dataDir, "l402.token"));
  await assertRejects(
    () => recover(f.deps()),
    LoopkitError,
    "initiation height (456 stored, 321 in the backup)",
  );
  assertEquals(await f.exists(join(f.dataDir, "l402.token")), false);
});

Deno.test("recover() rolls back when the tapscript import fails: token removed, no database written", async () => {
  await using f = await fixture();
  f.lnd.importError = lndFailure("WalletKit.ImportTapscript", "wallet is busy");
  const err = await assertRejects(() => recover(f.deps()), LoopkitError, "wallet is busy");
  assertEquals((err as LoopkitError).exitCode, 1);
  assertStringIncludes((err as Error).message, `removed "${join(f.dataDir, "l402.token")}"`);
  assertEquals(await f.exists(join(f.dataDir, "l402.token")), false);
  assertEquals(await f.exists(f.dbPath), false);
  // A retry after lnd recovers succeeds and creates everything.
  f.lnd.importError = null;
  const r = await recover(f.deps());
  assertEquals([r.restoredL402, r.restoredStaticAddress], [true, true]);
});

Deno.test("recover() rollback keeps the exit code of an unreachable lnd (75) and leaves the database unchanged", async () => {
  await using f = await fixture();
  const db = await f.open(); // an existing (empty) database
  await db.write(async () => {});
  for (const d of f.dbs.splice(0)) d.close();
  const before = await contentHash(f.root);
  f.lnd.importError = lndFailure("WalletKit.ImportTapscript", "connection refused", true);
  const err = await assertRejects(() => recover(f.deps()), LoopkitError, "connection refused");
  assertEquals((err as LoopkitError).exitCode, 75);
  for (const d of f.dbs.splice(0)) d.close();
  assertEquals(await contentHash(f.root), before);
});

Deno.test("recover() rolls back the token when the database write fails", async () => {
  await using f = await fixture();
  const err = await assertRejects(
    () => recover(f.deps({ openDb: () => Promise.reject(new LoopkitError("db_error", "disk full")) })),
    LoopkitError,
    "disk full",
  );
  assertEquals((err as LoopkitError).code, "restore_failed");
  assertEquals(await f.exists(join(f.dataDir, "l402.token")), false);
});

Deno.test("recover() never removes a token file it did not write", async () => {
  await using f = await fixture();
  await Deno.writeFile(join(f.dataDir, "l402.token"), f.token, { mode: 0o600 });
  f.lnd.importError = lndFailure("WalletKit.ImportTapscript", "boom");
  await assertRejects(() => recover(f.deps()), LoopkitError, "nothing was written");
  assertEquals(await Deno.readFile(join(f.dataDir, "l402.token")), f.token);
});

Deno.test("recover() scans receive/change with the default gap, creating a row and an import per hit", async () => {
  await using f = await fixture();
  const hits: [number, number][] = [[42061, 0], [42061, 3], [42061, 22], [42062, 1]];
  f.lnd.utxos = hits.map(([fam, i], n) => utxoFor(f.lnd.childAddress(fam, i, SERVER, EXPIRY).pkScript, n));
  const r = await recover(f.deps());
  assertEquals(f.lnd.calls.listUnspent >= 1, true);
  assertEquals(
    r.scanned.map((s) => [s.family, s.firstIndex, s.lastIndex, s.hits.map((h) => h.keyLocator.index)]),
    [
      [42061, 0, 42, [0, 3, 22]],
      [42062, 0, 21, [1]],
    ],
  );
  assertEquals(
    r.children.map((c) => [c.role, c.keyLocator.family, c.keyLocator.index, c.action, c.imported]),
    [
      ["receive", 42061, 0, "create", true],
      ["receive", 42061, 3, "create", true],
      ["receive", 42061, 22, "create", true],
      ["change", 42062, 1, "create", true],
    ],
  );
  const rows = await f.rows();
  assertEquals(rows.map((x) => [x.clientKeyFamily, x.clientKeyIndex, x.initiationHeight]), [
    [42060, CLIENT_INDEX, 321],
    [42061, 0, 654],
    [42061, 3, 654],
    [42061, 22, 654],
    [42062, 1, 654],
  ]);
  assert(rows.every((x) => x.expiry === EXPIRY && bytesToHex(x.serverPubkey) === bytesToHex(SERVER)));
  assertEquals(f.lnd.imported.size, 5);
  assertEquals(r.numDepositsFound, 4);
  assertEquals(r.walletDeposits, 4);
  assert(!r.warnings.some((w) => w.includes("does not rescan")), "no rescan warning with visible deposits");
  assertEquals((await listDeposits((await f.open()).client)).length, 4);
  // Again: all existing, nothing new.
  const again = await recover(f.deps());
  assertEquals([again.restoredL402, again.restoredStaticAddress, again.numDepositsFound], [false, false, 0]);
  assertEquals((await f.rows()).length, 5);
});

Deno.test("recover() with gap 2 stops early and reports where: receive 0..2, change 0..3", async () => {
  await using f = await fixture();
  const hits: [number, number][] = [[42061, 0], [42061, 3], [42061, 22], [42062, 1]];
  f.lnd.utxos = hits.map(([fam, i], n) => utxoFor(f.lnd.childAddress(fam, i, SERVER, EXPIRY).pkScript, n));
  const r = await recover(f.deps({ gap: 2 }));
  assertEquals(r.gap, 2);
  assertEquals(r.scanned.map((s) => [s.lastIndex, s.hits.map((h) => h.keyLocator.index)]), [[2, [0]], [3, [
    1,
  ]]]);
  assertEquals((await f.rows()).length, 3);
});

Deno.test("recover() tolerates a stored branch row with another initiation height and keeps it (case 47)", async () => {
  await using f = await fixture();
  f.lnd.utxos = [utxoFor(f.lnd.childAddress(42061, 2, SERVER, EXPIRY).pkScript, 1)];
  await recover(f.deps());
  await (await f.open()).client.execute(
    "UPDATE static_addresses SET initiation_height = 123 WHERE client_key_family = 42061",
  );
  const r = await recover(f.deps());
  assertEquals(r.children.map((c) => c.action), ["existing"]);
  assertEquals((await f.rows()).map((x) => x.initiationHeight), [321, 123]);
});

Deno.test("recover() refuses a stored branch row with the same pkScript but another key locator", async () => {
  await using f = await fixture();
  const child = f.lnd.childAddress(42061, 2, SERVER, EXPIRY);
  f.lnd.utxos = [utxoFor(child.pkScript, 1)];
  await recover(f.deps());
  await (await f.open()).client.execute(
    "UPDATE static_addresses SET client_key_index = 9 WHERE client_key_family = 42061",
  );
  await assertRejects(
    () => recover(f.deps()),
    LoopkitError,
    "key locator (42061/9 stored, 42061/2 restored)",
  );
});

Deno.test("recover() --dry-run computes the same plan and writes nothing (no token, no import, no row, no sync)", async () => {
  await using f = await fixture();
  f.lnd.utxos = [
    utxoFor(f.legacyAddress().pkScript, 1),
    utxoFor(f.lnd.childAddress(42062, 1, SERVER, EXPIRY).pkScript, 2),
  ];
  const before = await treeHash(f.root);
  let synced = false;
  const r = await recover(
    f.deps({ dryRun: true, syncDeposits: () => (synced = true, Promise.reject(new Error("no"))) }),
  );
  assertEquals(await treeHash(f.root), before);
  assertEquals(f.lnd.calls.importTapscript, 0);
  assertEquals(synced, false);
  assertEquals(r.dryRun, true);
  assertEquals([r.restoredL402, r.restoredStaticAddress], [true, true]);
  assertEquals(r.children.map((c) => [c.role, c.keyLocator.index, c.action, c.imported]), [[
    "change",
    1,
    "create",
    false,
  ]]);
  assertEquals(r.numDepositsFound, 2);
  // The real run does what the dry run said.
  const real = await recover(f.deps());
  assertEquals(real.children.map((c) => [c.role, c.keyLocator.index, c.action]), [["change", 1, "create"]]);
  assertEquals(real.numDepositsFound, 2);
  // A dry run after the restore reports nothing to do.
  const after = await recover(f.deps({ dryRun: true }));
  assertEquals([after.restoredL402, after.restoredStaticAddress, after.numDepositsFound], [false, false, 0]);
});

Deno.test("recover() keeps the restore when the deposit sync fails and reports the error", async () => {
  await using f = await fixture();
  const r = await recover(f.deps({ syncDeposits: () => Promise.reject(new Error("lnd went away")) }));
  assertEquals(r.depositSyncError, "lnd went away");
  assertEquals(r.numDepositsFound, 0);
  assertEquals(await Deno.readFile(join(f.dataDir, "l402.token")), f.token);
  assertEquals((await f.rows()).length, 1);
});

Deno.test("recover() with a backup lacking legacy_first_height uses the current height and stays idempotent", async () => {
  await using f = await fixture({ copy: false });
  await Deno.mkdir(f.dataDir);
  await craftedBackup(f.lnd, f.dataDir, (p) => p.staticAddress!.legacyFirstHeight = 0);
  f.lnd.height = 777;
  await recover(f.deps());
  assertEquals((await f.rows()).map((x) => x.initiationHeight), [777]);
  f.lnd.height = 800;
  const r = await recover(f.deps());
  assertEquals(r.restoredStaticAddress, false);
  assertEquals(r.firstHeight, 654);
});

Deno.test("recover() preparation rejects bad address parameters with Loop's wording, exit 3, nothing written (case 25)", async () => {
  const cases: [string, (p: BackupPayload) => void][] = [
    ["invalid static address protocol version 99", (p) => p.staticAddress!.protocolVersion = 99],
    [
      "backup file is missing the static address client pubkey",
      (p) => p.staticAddress!.clientPubkey = undefined,
    ],
    [
      "backup file is missing the legacy static address client key family",
      (p) => p.staticAddress!.legacyClientKeyFamily = 0,
    ],
    ["public key", (p) => p.staticAddress!.clientPubkey = new Uint8Array([2, 1])],
    ["public key", (p) => p.staticAddress!.serverPubkey = new Uint8Array([2, 1])],
    ["public key", (p) => p.staticAddress!.serverPubkey = null],
    ["unable to derive static address client key from backup", (p) => p.staticAddress!.clientPubkey = SERVER],
  ];
  for (const [want, edit] of cases) {
    await using f = await fixture({ copy: false });
    await Deno.mkdir(f.dataDir);
    await craftedBackup(f.lnd, f.dataDir, edit);
    const before = await treeHash(f.root);
    const err = await assertRejects(() => recover(f.deps()), LoopkitError, want);
    assertEquals((err as LoopkitError).exitCode, 3, want);
    assertEquals(await treeHash(f.root), before, want);
    assertEquals(f.lnd.imported.size, 0);
  }
});

Deno.test("recover() accepts an uncompressed server key like Loop and stores it compressed", async () => {
  await using f = await fixture({ copy: false });
  await Deno.mkdir(f.dataDir);
  const uncompressed = secp256k1.Point.fromBytes(SERVER).toBytes(false);
  await craftedBackup(f.lnd, f.dataDir, (p) => p.staticAddress!.serverPubkey = uncompressed);
  const r = await recover(f.deps());
  assertEquals(r.staticAddress, f.legacyAddress().address);
  assertEquals((await f.rows())[0].serverPubkey, SERVER);
});

Deno.test("publishToken() never replaces a file: identical bytes are a no-op, different bytes a conflict", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-publish-" });
  try {
    const path = join(dir, "l402.token");
    const bytes = tokenFileBytes(1, T);
    assertEquals(await publishToken(denoRestoreFs, dir, path, bytes), true);
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    assertEquals(await publishToken(denoRestoreFs, dir, path, bytes), false);
    await assertRejects(
      () => publishToken(denoRestoreFs, dir, path, tokenFileBytes(2, T)),
      LoopkitError,
      "different contents",
    );
    assertEquals(await Deno.readFile(path), bytes);
    await Deno.remove(path);
    await Deno.writeFile(join(dir, "l402.token.pending"), tokenFileBytes(2, T, false));
    await assertRejects(() => publishToken(denoRestoreFs, dir, path, bytes), LoopkitError, "unexpected file");
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assertEquals(names, ["l402.token.pending"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("publishToken() removes its temp file when the link fails and rethrows", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-publish-" });
  try {
    const fs = {
      ...denoRestoreFs,
      link: () => Promise.reject(new Deno.errors.PermissionDenied("no links here")),
    };
    await assertRejects(
      () => publishToken(fs, dir, join(dir, "l402.token"), tokenFileBytes(1, T)),
      Deno.errors.PermissionDenied,
    );
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assertEquals(names, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planAddressRows() matches by pkScript, needs the legacy row lowest, allows branch height drift only", () => {
  const lnd = new MemLnd();
  const mk = (family: number, index: number, height: number): WantedAddress => ({
    role: family === 42060 ? "legacy" : "receive",
    heightFlexible: family !== 42060,
    row: {
      clientPubkey: lnd.publicKey(family, index),
      serverPubkey: SERVER,
      expiry: EXPIRY,
      clientKeyFamily: family,
      clientKeyIndex: index,
      pkScript: lnd.childAddress(family, index, SERVER, EXPIRY).pkScript,
      protocolVersion: 0,
      initiationHeight: height,
    },
  });
  const stored = (w: WantedAddress, id: number): StaticAddressRow => ({ ...w.row, id });
  const legacy = mk(42060, 1, 100);
  const child = mk(42061, 4, 200);
  assertEquals(planAddressRows([], [legacy, child]), ["create", "create"]);
  assertEquals(planAddressRows([stored(legacy, 1)], [legacy, child]), ["existing", "create"]);
  assertEquals(
    planAddressRows([stored(legacy, 1), { ...stored(child, 2), initiationHeight: 5 }], [legacy, child]),
    [
      "existing",
      "existing",
    ],
  );
  let err: unknown;
  try {
    planAddressRows([stored(child, 1), stored(legacy, 2)], [legacy]);
  } catch (e) {
    err = e;
  }
  assert(err instanceof LoopkitError && err.code === "restore_conflict", String(err));
  assertNotEquals(
    (() => {
      try {
        planAddressRows([stored(legacy, 1), { ...stored(child, 2), expiry: 145 }], [legacy, child]);
      } catch (e) {
        return (e as Error).message;
      }
      return "";
    })(),
    "",
  );
});

/** A loop-in recovery record over the fixture's legacy address, sealed with the fixture lnd's backup key. */
async function swapRecordIn(f: Fixture, dir: string, seed = 7) {
  const a = f.legacyAddress();
  const record = sampleSwapRecord({
    seed,
    address: {
      id: 1,
      pkScript: a.pkScript,
      clientPubkey: f.lnd.publicKey(42060, CLIENT_INDEX),
      serverPubkey: SERVER,
      expiry: EXPIRY,
      clientKeyFamily: 42060,
      clientKeyIndex: CLIENT_INDEX,
    },
  });
  const key = await deriveBackupKey(f.lnd);
  f.lnd.calls.deriveSharedKey = 0;
  const { path } = await writeSwapRecordFile(dir, key, record);
  return { record, path };
}

Deno.test("recover() imports a loop-in's recovery record the database lacks: armed, UnlockDeposits, deposits LoopingIn", async () => {
  await using f = await fixture();
  const { record, path } = await swapRecordIn(f, f.dataDir);
  const r = await recover(f.deps());
  assertEquals(f.lnd.calls.deriveSharedKey, 1, "one key for the backup and the records");
  assertEquals(r.swaps.map((s) => [s.swapHashHex, s.path, s.action]), [[
    bytesToHex(record.swapHash),
    path,
    "imported",
  ]]);
  assertEquals([r.swaps[0].depositsCreated, r.swaps[0].depositsLinked], [2, 0]);
  const db = await f.open();
  const s = (await new LoopInSwapStore(db).getSwap(record.swapHash))!;
  assertEquals(s.state, "UnlockDeposits");
  assert(s.armedAt !== null);
  assertEquals(s.htlcTxids, record.htlcTxids);
  assertEquals(s.staticAddressId, (await f.rows())[0].id);
  assertEquals(s.deposits.map((d) => d.state), ["LoopingIn", "LoopingIn"]);
  assert(r.warnings.some((w) => w.includes("loopkit loopin sync")), r.warnings.join("\n"));
  // The record itself is left as it is (never rewritten).
  assert(await f.exists(path));
});

Deno.test("recover() twice imports a loop-in once; --dry-run reports it and writes nothing", async () => {
  await using f = await fixture();
  await swapRecordIn(f, f.dataDir);
  const dry = await recover(f.deps({ dryRun: true }));
  assertEquals(dry.swaps.map((s) => s.action), ["imported"]);
  assertEquals(await f.exists(f.dbPath), false, "a dry run creates no database");
  await recover(f.deps());
  const db = await f.open();
  const count = async () =>
    (await db.client.execute(
      "SELECT (SELECT count(*) FROM loopin_swaps) AS s, (SELECT count(*) FROM deposits) AS d, " +
        "(SELECT count(*) FROM loopin_swap_updates) AS u",
    )).rows[0];
  const before = await count();
  assertEquals([before.s, before.d], [1n, 2n]);
  const again = await recover(f.deps());
  assertEquals(again.swaps.map((s) => s.action), ["existing"]);
  assertEquals(await count(), before);
  const dry2 = await recover(f.deps({ dryRun: true }));
  assertEquals(dry2.swaps.map((s) => s.action), ["existing"]);
});

Deno.test("recover() finds records beside an explicit --backup-file too", async () => {
  await using f = await fixture({ copy: false });
  const src = join(f.root, "src");
  const { record } = await swapRecordIn(f, src);
  const r = await recover(f.deps({ backupFile: f.backupPath }));
  assertEquals(r.swaps.map((s) => [s.swapHashHex, s.action]), [[bytesToHex(record.swapHash), "imported"]]);
});

Deno.test("recover() with a damaged record still restores the address, warns naming the file, imports nothing", async () => {
  await using f = await fixture();
  const { path } = await swapRecordIn(f, f.dataDir);
  const bytes = await Deno.readFile(path);
  await Deno.writeFile(path, bytes.slice(0, bytes.length - 7));
  const good = await swapRecordIn(f, f.dataDir, 8);
  const r = await recover(f.deps());
  assertEquals(r.restoredStaticAddress, true);
  assertEquals(r.swaps.map((s) => s.path), [good.path]);
  assert(
    r.warnings.some((w) => w.includes(path) && w.includes("NOT restored")),
    r.warnings.join("\n"),
  );
  assertEquals(swapRecordFileName(good.record.swapHash), good.path.slice(f.dataDir.length + 1));
});

Deno.test("recover() skips a record whose static address is not this backup's: dry run and real run say why, nothing imported", async () => {
  await using f = await fixture();
  const key = await deriveBackupKey(f.lnd);
  f.lnd.calls.deriveSharedKey = 0;
  const foreign = sampleSwapRecord({ seed: 11 }); // the sample's own address, not the fixture's
  const { path } = await writeSwapRecordFile(f.dataDir, key, foreign);
  const dry = await recover(f.deps({ dryRun: true }));
  assertEquals(dry.swaps.map((s) => [s.path, s.action]), [[path, "skipped"]]);
  assertStringIncludes(dry.swaps[0].reason!, "static address");
  const r = await recover(f.deps());
  assertEquals(r.swaps.map((s) => s.action), ["skipped"]);
  assert(r.warnings.some((w) => w.includes(path) && w.includes("NOT restored")), r.warnings.join("\n"));
  const db = await f.open();
  assertEquals((await db.client.execute("SELECT count(*) AS n FROM loopin_swaps")).rows[0].n, 0n);
});
