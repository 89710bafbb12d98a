import { join } from "node:path";
import { hexToBytes } from "@noble/hashes/utils.js";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../tests/assert.ts";
import { withTempDir } from "../../tests/fs.ts";
import { sealBackup } from "./envelope.ts";
import { backupFileName } from "./file_name.ts";
import { inspectBackupDir, inspectBackupFile } from "./inspect.ts";
import { MAX_READ_BYTES } from "../fs/fs.ts";
import { encodeBackupPayload } from "./payload.ts";
import type { BackupPayload } from "./types.ts";
import { payloadFor, seededTokenId, TEST_KEY, treeHash, vector } from "./_testing.ts";

const T0 = 1776159001000000000n;

async function put(dir: string, p: BackupPayload, name?: string): Promise<string> {
  const path = join(dir, name ?? backupFileName(p.l402TokenCreatedAtNs, p.l402TokenId));
  await Deno.writeFile(path, sealBackup(TEST_KEY, encodeBackupPayload(p)));
  return path;
}

Deno.test("inspectBackupFile() reports the vector file as ok with its details", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, vector.file_name);
    await Deno.writeFile(path, hexToBytes(vector.file));
    const r = await inspectBackupFile(path, hexToBytes(vector.backup_key), "testnet");
    assertEquals(r.reason, "ok");
    assertEquals(r.path, path);
    assertEquals(r.tokenId, vector.token_id);
    assertEquals(r.createdAtNs, 1776159001000000000n);
    assertEquals(r.network, "testnet");
    assertEquals(r.staticAddress, {
      protocolVersion: 0,
      clientPubkey: hexToBytes(vector.client_pubkey),
      serverPubkey: hexToBytes(vector.server_pubkey),
      expiry: 144,
      legacyClientKeyFamily: 42060,
      mainKeyFamily: 42061,
      changeKeyFamily: 42062,
      legacyFirstHeight: 321,
      multiAddressFirstHeight: 654,
    });
    assertEquals(r.token?.amountPaidMsat, 1000n);
  });
});

Deno.test("inspectBackupFile() reports an unreadable file and a non-backup path without throwing", async () => {
  await withTempDir(async (dir) => {
    const missing = join(dir, backupFileName(T0, seededTokenId(1)));
    const r = await inspectBackupFile(missing, TEST_KEY, "testnet");
    assertEquals(r.reason, "unreadable");
    assertStringIncludes(r.message, `Cannot read backup file "${missing}"`);
    assertEquals(r.tokenId, seededTokenId(1));

    const other = join(dir, "backup.enc");
    await Deno.writeFile(other, new Uint8Array(10));
    const o = await inspectBackupFile(other, TEST_KEY, "testnet");
    assertEquals(o.reason, "name_mismatch");
    assertEquals(o.message, `invalid backup file path ${JSON.stringify(other)}`);
  });
});

Deno.test("inspectBackupFile() reports wrong network with the payload details", async () => {
  await withTempDir(async (dir) => {
    const path = await put(dir, payloadFor(1, T0, "testnet"));
    const r = await inspectBackupFile(path, TEST_KEY, "mainnet");
    assertEquals(r.reason, "network_mismatch");
    assertEquals(r.message, "backup file network testnet does not match daemon network mainnet");
    assertEquals(r.network, "testnet");
    assert(r.payload !== undefined);
  });
});

Deno.test("inspectBackupDir() lists backup names in name order, a directory under a backup name unreadable, other files skipped", async () => {
  await withTempDir(async (dir) => {
    const a = await put(dir, payloadFor(2, T0));
    const b = await put(dir, payloadFor(1, T0 + 5n));
    await Deno.writeFile(join(dir, "l402.token"), new Uint8Array(3));
    await Deno.writeFile(join(dir, "L402_backup_not-an-id.enc"), new Uint8Array(3));
    const squat = join(dir, backupFileName(T0 + 9n, seededTokenId(3)));
    await Deno.mkdir(squat);
    const junk = join(dir, backupFileName(T0 + 7n, seededTokenId(4)));
    await Deno.writeFile(junk, new TextEncoder().encode("junk content, not a backup at all"));
    const lax = join(dir, `L402_backup_+${T0}_${seededTokenId(5)}.enc`);
    await Deno.writeFile(lax, new Uint8Array(3));
    const results = await inspectBackupDir(dir, TEST_KEY, "testnet");
    // Name order of the full entry names (all ASCII here, so JS string order is byte order).
    const expectedOrder = [lax, b, a, junk, squat].sort();
    assertEquals(results.map((r) => r.path), expectedOrder);
    const byPath = Object.fromEntries(results.map((r) => [r.path, r]));
    assertEquals(byPath[squat].reason, "unreadable");
    assertStringIncludes(byPath[squat].message, "is a directory");
    assertEquals(byPath[a].reason, "ok");
    assertEquals(byPath[b].reason, "ok");
    assertEquals(byPath[junk].reason, "unknown_format");
    assertEquals(byPath[lax].reason, "too_short"); // envelope failures come first, like Loop
  });
});

Deno.test("inspectBackupDir() reads a symlink to a directory and reports it unreadable, like Loop", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "sub"));
    const link = join(dir, backupFileName(T0, seededTokenId(1)));
    await Deno.symlink(join(dir, "sub"), link);
    const results = await inspectBackupDir(dir, TEST_KEY, "testnet");
    assertEquals(results.map((r) => [r.path, r.reason]), [[link, "unreadable"]]);
  });
});

Deno.test("inspectBackupDir() throws the listing error for a missing directory", async () => {
  await withTempDir(async (dir) => {
    await assertRejects(() => inspectBackupDir(join(dir, "nope"), TEST_KEY, "testnet"), Deno.errors.NotFound);
  });
});

Deno.test("inspection is read-only: the directory tree hashes the same before and after", async () => {
  await withTempDir(async (dir) => {
    await put(dir, payloadFor(1, T0));
    await put(dir, payloadFor(2, T0 + 1n, "mainnet"));
    await Deno.writeFile(join(dir, backupFileName(T0 + 2n, seededTokenId(3))), new Uint8Array(100));
    await Deno.writeFile(join(dir, "l402.token"), new Uint8Array(10));
    await Deno.mkdir(join(dir, "sub"));
    await Deno.writeFile(join(dir, "sub", backupFileName(T0 + 3n, seededTokenId(4))), new Uint8Array(50));
    const before = await treeHash(dir);
    const results = await inspectBackupDir(dir, TEST_KEY, "testnet");
    assertEquals(results.length, 3);
    await inspectBackupFile(join(dir, "sub", backupFileName(T0 + 3n, seededTokenId(4))), TEST_KEY, "testnet");
    assertEquals(await treeHash(dir), before);
  });
});

Deno.test("inspectBackupDir() reports a FIFO and an oversized file as unreadable without hanging or reading them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-inspect-special-" });
  try {
    const fifo = join(dir, backupFileName(1776159001000000000n, "aa".repeat(32)));
    const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert(mk.success, "mkfifo");
    const big = join(dir, backupFileName(1776159001000000001n, "bb".repeat(32)));
    const f = await Deno.open(big, { write: true, create: true });
    await f.truncate(MAX_READ_BYTES + 1);
    f.close();
    const results = await inspectBackupDir(dir, new Uint8Array(32), "testnet");
    assertEquals(results.map((r) => r.reason), ["unreadable", "unreadable"]);
    assertStringIncludes(results[0].message, "not a regular file");
    assertStringIncludes(results[1].message, "more than");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
