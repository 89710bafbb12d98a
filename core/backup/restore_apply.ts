/**
 * The apply half of `loopkit recover` (spec/backup-and-recovery.md §4.9, §6.2 step 8; decision 5): the
 * file-system operations of the restore and the no-clobber publish of `l402.token`.
 *
 * @module
 */
import { join } from "node:path";
import { equalBytes } from "@noble/curves/utils.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { PENDING_TOKEN_FILE_NAME } from "../l402/token_file.ts";
import { PRIVATE_FILE_MODE } from "../fs/atomic_write.ts";
import { type BackupFs, denoBackupFs, writeAllAndSync } from "../fs/fs.ts";
import { differentTokenConflict, pendingConflict, readOrNull } from "./restore_plan.ts";

const hex = bytesToHex;

/** File-system operations of the restore: {@linkcode BackupFs} plus hard links and directory creation. */
export interface RestoreFs extends BackupFs {
  /** link(2): fails with `Deno.errors.AlreadyExists` when `to` exists (the no-clobber publish). */
  link(from: string, to: string): Promise<void>;
  /** Creates `path` (and parents) with `mode` when missing; true when this call created it. */
  ensureDir(path: string, mode: number): Promise<boolean>;
}

/** The real file system. Needs `--allow-read --allow-write`. */
export const denoRestoreFs: RestoreFs = {
  ...denoBackupFs,
  link: (from, to) => Deno.link(from, to),
  async ensureDir(path, mode) {
    try {
      await Deno.lstat(path);
      return false;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    await Deno.mkdir(path, { recursive: true, mode });
    return true;
  },
};

/**
 * Publishes `bytes` as `path` without ever replacing a file there: under the data directory's lock
 * a private temp file (0600, fsynced) is hard-linked to `path`, then removed, then the directory is
 * fsynced. A file that appeared meanwhile is never overwritten.
 *
 * @returns true when this call created `path`; false when identical bytes were already there
 * @throws {LoopkitError} `restore_conflict` when a pending token or a different `l402.token`
 *   appeared; the file-system error of a failing step (no temp file is left)
 */
export async function publishToken(
  fs: RestoreFs,
  dataDir: string,
  path: string,
  bytes: Uint8Array,
): Promise<boolean> {
  const dir = await fs.lockDir(dataDir);
  try {
    const pendingPath = join(dataDir, PENDING_TOKEN_FILE_NAME);
    if (await readOrNull(fs, pendingPath) !== null) throw pendingConflict(pendingPath);
    // Not named l402.token*: Loop's `listauth` parses every such file.
    const tmp = join(dataDir, `.loopkit-recover-${hex(crypto.getRandomValues(new Uint8Array(8)))}.tmp`);
    const file = await fs.createExclusive(tmp, PRIVATE_FILE_MODE);
    let created = false;
    try {
      try {
        await writeAllAndSync(file, bytes, tmp);
      } finally {
        file.close();
      }
      try {
        await fs.link(tmp, path);
        created = true;
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
    } finally {
      try {
        await fs.remove(tmp);
      } catch { /* best effort; the name never collides with a token file */ }
    }
    if (!created) {
      const there = await readOrNull(fs, path);
      if (there === null || !equalBytes(there, bytes)) throw differentTokenConflict(path);
      return false;
    }
    await dir.sync();
    return true;
  } finally {
    dir.close();
  }
}
