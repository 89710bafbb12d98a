import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { withTempDir } from "../../tests/fs.ts";
import { ExitCode, LoopkitError } from "../errors.ts";
import { type BackupFs, denoBackupFs } from "../fs/fs.ts";
import { listStaleTempFiles } from "../fs/temp_files.ts";
import { inspectBackupDir } from "../backup/inspect.ts";
import { findLatestBackup } from "../backup/select.ts";
import { openSwapRecord, swapRecordFileName } from "./swap_record.ts";
import { readSwapRecordDir, swapRecordWriter, writeSwapRecordFile } from "./swap_record_file.ts";
import { sampleSwapRecord } from "./_swap_record_testing.ts";

const KEY = sha256(new TextEncoder().encode("swap record file test key"));

Deno.test("writeSwapRecordFile: loopin_swap_<hash>.enc, mode 0600, opens to the record; no temp file left", async () => {
  await withTempDir(async (dir) => {
    const r = sampleSwapRecord();
    const w = await writeSwapRecordFile(dir, KEY, r);
    assertEquals(w, { path: join(dir, swapRecordFileName(r.swapHash)), written: true });
    assertEquals((await Deno.stat(w.path)).mode! & 0o777, 0o600);
    assertEquals(openSwapRecord(KEY, await Deno.readFile(w.path), w.path, "regtest"), r);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), [swapRecordFileName(r.swapHash)]);
  });
});

Deno.test("writeSwapRecordFile: never rewritten — the same record again is a no-op, a different one is refused", async () => {
  await withTempDir(async (dir) => {
    const r = sampleSwapRecord();
    const { path } = await writeSwapRecordFile(dir, KEY, r);
    const before = await Deno.readFile(path);
    assertEquals((await writeSwapRecordFile(dir, KEY, r)).written, false);
    assertEquals(await Deno.readFile(path), before, "the bytes (and nonce) stay");
    const changed = { ...r, label: "another label" };
    const e = await assertRejects(() => writeSwapRecordFile(dir, KEY, changed), LoopkitError);
    assertEquals(e.code, "swap_record_conflict");
    assert(e.message.includes(path), e.message);
    // A damaged file under the name is kept, never replaced.
    await Deno.writeFile(path, before.slice(0, 20));
    const d = await assertRejects(() => writeSwapRecordFile(dir, KEY, r), LoopkitError);
    assertEquals(d.code, "swap_record_conflict");
    assertEquals((await Deno.readFile(path)).length, 20);
  });
});

Deno.test("writeSwapRecordFile: disk full is swap_record_write_failed naming the path, and no file is left", async () => {
  await withTempDir(async (dir) => {
    const full: BackupFs = {
      ...denoBackupFs,
      async createExclusive(path, mode) {
        const f = await denoBackupFs.createExclusive(path, mode);
        return {
          write: () => Promise.reject(new Error("No space left on device (os error 28)")),
          sync: () => f.sync(),
          close: () => f.close(),
        };
      },
    };
    const r = sampleSwapRecord();
    const e = await assertRejects(() => writeSwapRecordFile(dir, KEY, r, full), LoopkitError);
    assertEquals(e.code, "swap_record_write_failed");
    assertEquals(e.exitCode, ExitCode.Failure);
    const path = join(dir, swapRecordFileName(r.swapHash));
    assert(e.message.includes(`"${path}"`) && e.message.includes("No space left"), e.message);
    assertEquals([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("writeSwapRecordFile: a missing or read-only directory is an error naming the path", async () => {
  await withTempDir(async (dir) => {
    const r = sampleSwapRecord();
    const missing = join(dir, "nope");
    const e = await assertRejects(() => writeSwapRecordFile(missing, KEY, r), LoopkitError);
    assert(e.message.includes(missing), e.message);
    const ro: BackupFs = {
      ...denoBackupFs,
      createExclusive: () =>
        Promise.reject(new Deno.errors.PermissionDenied("Permission denied (os error 13)")),
    };
    const p = await assertRejects(() => writeSwapRecordFile(dir, KEY, r, ro), LoopkitError);
    assertEquals(p.code, "data_dir_unwritable");
    assertEquals(p.exitCode, ExitCode.Usage);
  });
});

Deno.test("swapRecordWriter: asks for the backup key, writes; a key failure names the swap and writes nothing", async () => {
  await withTempDir(async (dir) => {
    const r = sampleSwapRecord();
    let asked = 0;
    const path = await swapRecordWriter(dir, () => {
      asked++;
      return Promise.resolve(KEY);
    })(r);
    assertEquals(asked, 1);
    assertEquals(path, join(dir, swapRecordFileName(r.swapHash)));
    const other = sampleSwapRecord({ seed: 8 });
    const e = await assertRejects(
      () => swapRecordWriter(dir, () => Promise.reject(new Error("lnd down")))(other),
      LoopkitError,
    );
    assert(e.message.includes("lnd down") && e.message.includes("DeriveSharedKey"), e.message);
    assertEquals([...Deno.readDirSync(dir)].length, 1);
  });
});

Deno.test("readSwapRecordDir: every record in name order; a bad one is reported with its path, never thrown", async () => {
  await withTempDir(async (dir) => {
    assertEquals(await readSwapRecordDir(join(dir, "missing"), KEY, "regtest"), []);
    const a = sampleSwapRecord({ seed: 1 });
    const b = sampleSwapRecord({ seed: 2 });
    const pa = (await writeSwapRecordFile(dir, KEY, a)).path;
    const pb = (await writeSwapRecordFile(dir, KEY, b)).path;
    const bytes = await Deno.readFile(pb);
    await Deno.writeFile(pb, bytes.slice(0, bytes.length - 3)); // truncated
    await Deno.writeTextFile(join(dir, "unrelated.txt"), "x");
    const got = await readSwapRecordDir(dir, KEY, "regtest");
    const want = [pa, pb].sort();
    assertEquals(got.map((g) => g.path), want);
    const good = got.find((g) => g.path === pa)!;
    assert(good.ok);
    assertEquals(good.record, a);
    const bad = got.find((g) => g.path === pb)!;
    assert(!bad.ok);
    assertEquals(bad.error.code, "swap_record_invalid");
    assert(bad.error.message.includes(pb), bad.error.message);
    // Another network's reader refuses the good one too.
    const other = await readSwapRecordDir(dir, KEY, "mainnet");
    assert(other.every((g) => !g.ok));
  });
});

Deno.test("backup scans skip swap records: backup verify / recover see no backup file, temp files are recognised", async () => {
  await withTempDir(async (dir) => {
    const r = sampleSwapRecord();
    await writeSwapRecordFile(dir, KEY, r);
    assertEquals(await inspectBackupDir(dir, KEY, "regtest"), []);
    assertEquals((await findLatestBackup(dir, KEY, "regtest")).kind, "empty");
    const tmp = join(dir, swapRecordFileName(r.swapHash) + ".tmp");
    await Deno.writeFile(tmp, new Uint8Array(3));
    assertEquals(await listStaleTempFiles(dir), [tmp]);
    assertEquals(await inspectBackupDir(dir, KEY, "regtest"), []);
  });
});
