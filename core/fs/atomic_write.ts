/**
 * Crash-safe file replacement (spec/backup-and-recovery.md §1.6 plus project decision 5).
 *
 * @module
 */
import { dirname } from "node:path";
import { type BackupFs, denoBackupFs, type WritableFile, writeAllAndSync } from "./fs.ts";

/** Suffix of the temporary file, appended to the full target path. */
export const TEMP_SUFFIX = ".tmp";
/** Mode of every file loopkit writes here. */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Writes `bytes` to `path` so that, whatever fails or crashes, `path` holds either its previous
 * content (or nothing) or the complete new content — never a partial file.
 *
 * Steps:
 * 1. lock the parent directory (exclusive `flock`; serializes loopkit writers — beyond Loop);
 * 2. remove a stale `path.tmp` left by a crash (under the lock no live loopkit writer owns it);
 * 3. create `path.tmp` exclusively, mode 0600 (a fresh inode, so the mode always applies);
 * 4. write all bytes, fsync, close;
 * 5. rename `path.tmp` → `path`;
 * 6. fsync the directory (decision 5; Loop does not), then unlock.
 *
 * On a failure in steps 4–5 the temp file is removed (errors ignored) and the original error is
 * rethrown. A failure in step 6 is rethrown too; the new file is then complete at `path` but its
 * rename may not be durable yet.
 *
 * `opts.shouldWrite`, when given, runs under the directory lock before step 2: returning false skips
 * the write. Check-then-write decisions (immutability) made there cannot race another loopkit writer.
 *
 * @param path target file path; its directory must exist
 * @param bytes the complete new content
 * @param fs file-system operations (default: the real one; needs `--allow-read --allow-write`)
 * @param opts `shouldWrite`: decide under the lock whether to write at all
 * @returns true when the file was written, false when `shouldWrite` declined
 * @throws the underlying `Deno.errors.*` error of the failing step (e.g. `path` is a directory), or
 *   whatever `shouldWrite` throws
 */
export async function atomicWriteFile(
  path: string,
  bytes: Uint8Array,
  fs: BackupFs = denoBackupFs,
  opts: { shouldWrite?: () => Promise<boolean> } = {},
): Promise<boolean> {
  const tmp = path + TEMP_SUFFIX;
  const dir = await fs.lockDir(dirname(path));
  try {
    if (opts.shouldWrite && !(await opts.shouldWrite())) return false;
    try {
      await fs.remove(tmp);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    // Created exclusively: if this fails, the temp file is not ours and stays untouched.
    let file: WritableFile | undefined = await fs.createExclusive(tmp, PRIVATE_FILE_MODE);
    try {
      await writeAllAndSync(file, bytes, tmp);
      const f = file;
      file = undefined;
      f.close();
      await fs.rename(tmp, path);
    } catch (e) {
      if (file) {
        try {
          file.close();
        } catch { /* already failing */ }
      }
      try {
        await fs.remove(tmp);
      } catch { /* best effort: the original error matters */ }
      throw e;
    }
    await dir.sync();
    return true;
  } finally {
    dir.close();
  }
}
