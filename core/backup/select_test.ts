import { join } from "node:path";
import { assert, assertEquals } from "../../tests/assert.ts";
import { withTempDir } from "../../tests/fs.ts";
import { sealBackup } from "./envelope.ts";
import { backupFileName } from "./file_name.ts";
import type { BackupInspection } from "./inspect.ts";
import { encodeBackupPayload } from "./payload.ts";
import { findLatestBackup, selectLatest } from "./select.ts";
import type { BackupPayload } from "./types.ts";
import { payloadFor, seeded, seededTokenId, TEST_KEY, treeHash } from "./_testing.ts";

const T0 = 1776159001000000000n;

async function put(dir: string, p: BackupPayload, name?: string, key = TEST_KEY): Promise<string> {
  const path = join(dir, name ?? backupFileName(p.l402TokenCreatedAtNs, p.l402TokenId));
  await Deno.writeFile(path, sealBackup(key, encodeBackupPayload(p)));
  return path;
}

function ok(tokenId: string, createdAtNs: bigint): BackupInspection {
  return { path: `/d/${tokenId}`, reason: "ok", message: "", tokenId, createdAtNs };
}

Deno.test("selectLatest() picks the greatest timestamp even when its token ID sorts lower (spec §8 case 11)", () => {
  const older = ok(seededTokenId(0x20), T0);
  const newer = ok(seededTokenId(0x10), T0 + 1n);
  const s = selectLatest([older, newer]);
  assertEquals(s, { kind: "selected", selected: newer });
  assertEquals(selectLatest([newer, older]), { kind: "selected", selected: newer });
});

Deno.test("selectLatest() breaks equal timestamps by the greater token ID (case 15)", () => {
  const a = ok(seededTokenId(1), T0);
  const b = ok(seededTokenId(2), T0);
  assertEquals(selectLatest([a, b]), { kind: "selected", selected: b });
  assertEquals(selectLatest([b, a]), { kind: "selected", selected: b });
});

Deno.test("selectLatest() compares int64 timestamps exactly (1 ns apart above 2^53)", () => {
  const a = ok(seededTokenId(9), 1776159001000000122n);
  const b = ok(seededTokenId(1), 1776159001000000123n);
  assertEquals(selectLatest([a, b]), { kind: "selected", selected: b });
});

Deno.test("selectLatest() reports the first failure in order, or empty", () => {
  const bad1: BackupInspection = { path: "/d/1", reason: "too_short", message: "backup file is too short" };
  const bad2: BackupInspection = {
    path: "/d/2",
    reason: "undecryptable",
    message: "unable to decrypt backup file",
  };
  assertEquals(selectLatest([bad1, bad2]), { kind: "none_valid", firstFailure: bad1 });
  assertEquals(selectLatest([]), { kind: "empty" });
  const good = ok(seededTokenId(1), T0);
  assertEquals(selectLatest([bad2, good, bad1]), { kind: "selected", selected: good, firstFailure: bad2 });
});

Deno.test("findLatestBackup() skips newer invalid files and returns the valid older one (case 13)", async () => {
  await withTempDir(async (dir) => {
    const valid = await put(dir, payloadFor(1, T0));
    // newer corrupt file
    await Deno.writeFile(join(dir, backupFileName(T0 + 10n, seededTokenId(2))), new Uint8Array(200).fill(7));
    // newer file whose name ID differs from its payload
    await put(dir, payloadFor(3, T0 + 20n), backupFileName(T0 + 20n, seededTokenId(4)));
    // newer wrong-network file
    await put(dir, payloadFor(5, T0 + 30n, "mainnet"));
    // newer file without token data
    const noData = payloadFor(6, T0 + 40n);
    noData.tokenFiles = [];
    await put(dir, noData);
    // newer file sealed with another key
    await put(dir, payloadFor(7, T0 + 50n), undefined, seeded(99));
    // names Loop ignores or loopkit rejects
    await Deno.writeFile(join(dir, "L402_backup_not-an-id.enc"), new Uint8Array(64));
    const upper = `L402_backup_${T0 + 60n}_${seededTokenId(0xab).toUpperCase()}.enc`;
    assert(upper.includes("AB00"));
    await put(dir, payloadFor(0xab, T0 + 60n), upper);
    const s = await findLatestBackup(dir, TEST_KEY, "testnet");
    assert(s.kind === "selected");
    assertEquals(s.selected.path, valid);
    assertEquals(s.selected.tokenId, seededTokenId(1));
    // the first failure in name order is the T0+10 corrupt file
    assertEquals(s.firstFailure?.reason, "unknown_format");
  });
});

Deno.test("findLatestBackup() with only an invalid candidate returns its error (case 14)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, backupFileName(T0, seededTokenId(1))), new Uint8Array(5));
    const s = await findLatestBackup(dir, TEST_KEY, "testnet");
    assert(s.kind === "none_valid");
    assertEquals(s.firstFailure.reason, "too_short");
    assertEquals(s.firstFailure.message, "backup file is too short");
  });
});

Deno.test("findLatestBackup() on a directory without backup names is empty and writes nothing", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, "loop.db"), new Uint8Array(5));
    const before = await treeHash(dir);
    assertEquals(await findLatestBackup(dir, TEST_KEY, "testnet"), { kind: "empty" });
    assertEquals(await treeHash(dir), before);
  });
});

Deno.test("findLatestBackup() reports a directory under a backup name as unreadable, never selects it", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, backupFileName(T0, seededTokenId(1))));
    const sel = await findLatestBackup(dir, TEST_KEY, "testnet");
    assertEquals(sel.kind, "none_valid");
    if (sel.kind === "none_valid") assertEquals(sel.firstFailure.reason, "unreadable");
  });
});

Deno.test("findLatestBackup() is read-only over a mixed directory", async () => {
  await withTempDir(async (dir) => {
    await put(dir, payloadFor(1, T0));
    await put(dir, payloadFor(2, T0 + 1n));
    await Deno.writeFile(join(dir, backupFileName(T0 + 2n, seededTokenId(3))), new Uint8Array(40));
    const before = await treeHash(dir);
    const s = await findLatestBackup(dir, TEST_KEY, "testnet");
    assert(s.kind === "selected");
    assertEquals(s.selected.tokenId, seededTokenId(2));
    assertEquals(await treeHash(dir), before);
  });
});
