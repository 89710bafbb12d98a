/**
 * loopkit's own temporary files in a data (or `--copy-to`) directory, and their removal after a crash
 * (`kill -9`, power loss) left them behind.
 *
 * Every temp file loopkit creates lives only while its writer holds the directory lock (`flock` on the
 * directory, {@linkcode BackupFs.lockDir}): `atomicWriteFile` (`<target>.tmp` for `l402.token`,
 * `l402.token.pending`, backup files, swap recovery records) and `recover`'s token publish (`.loopkit-recover-<16 hex>.tmp`). So
 * under that lock no live writer owns one, and any found is stale. They matter: a stale token temp file is
 * a full copy of the macaroon and preimage.
 *
 * @module
 */
import { join } from "node:path";
import { type BackupFs, denoBackupFs } from "./fs.ts";

/** Names of loopkit's temp files (anything else in the directory is never touched). */
const TEMP_NAME_RES: readonly RegExp[] = [
  /^\.loopkit-recover-[0-9a-f]{16}\.tmp$/,
  /^l402\.token(\.pending)?\.tmp$/,
  /^L402_backup_[0-9]{19}_[0-9a-f]{64}\.enc\.tmp$/,
  /^loopin_swap_[0-9a-f]{64}\.enc\.tmp$/,
];

/** True for the name of a loopkit temp file. */
export function isLoopkitTempName(name: string): boolean {
  return TEMP_NAME_RES.some((re) => re.test(name));
}

/**
 * Lists loopkit temp files directly inside `dir` (read-only; `backup verify` reports them). A missing
 * directory has none.
 *
 * @returns full paths, sorted
 */
export async function listStaleTempFiles(dir: string, fs: BackupFs = denoBackupFs): Promise<string[]> {
  let entries;
  try {
    entries = await fs.readDir(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return entries.filter((e) => !e.isDirectory && isLoopkitTempName(e.name)).map((e) => join(dir, e.name))
    .sort();
}

/**
 * Removes loopkit's stale temp files directly inside `dir`, under the directory lock (so none belongs to a
 * live writer). A missing directory is nothing to do.
 *
 * @returns the paths removed
 * @throws the file system's error when the directory cannot be locked or a file cannot be removed
 */
export async function removeStaleTempFiles(dir: string, fs: BackupFs = denoBackupFs): Promise<string[]> {
  if ((await listStaleTempFiles(dir, fs)).length === 0) return [];
  const lock = await fs.lockDir(dir);
  const removed: string[] = [];
  try {
    for (const path of await listStaleTempFiles(dir, fs)) {
      try {
        await fs.remove(path);
        removed.push(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    if (removed.length) await lock.sync();
  } finally {
    lock.close();
  }
  return removed;
}
