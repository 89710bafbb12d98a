/**
 * Choosing the backup to restore from (spec/backup-and-recovery.md §5.1).
 *
 * @module
 */
import { type BackupFs, denoBackupFs } from "../fs/fs.ts";
import { type BackupInspection, inspectBackupDir } from "./inspect.ts";

/** Outcome of {@linkcode selectLatest}. */
export type BackupSelection =
  /** A valid backup was found; `firstFailure` is the first invalid candidate, if any (for warnings). */
  | { kind: "selected"; selected: BackupInspection; firstFailure?: BackupInspection }
  /** Backup files exist but none is valid; Loop reports the first failure (in name order). */
  | { kind: "none_valid"; firstFailure: BackupInspection }
  /** No backup file at all (Loop: "not exist"). */
  | { kind: "empty" };

/**
 * Picks the latest valid backup: among results with reason `ok`, the greatest file-name
 * timestamp; on equal timestamps the lexicographically greater token ID (§5.1 steps 4–6).
 * Invalid files never hide a valid older one.
 *
 * @param results inspections in directory (name) order, e.g. from {@linkcode inspectBackupDir}
 * @returns the selection
 */
export function selectLatest(results: readonly BackupInspection[]): BackupSelection {
  let best: BackupInspection | undefined;
  let firstFailure: BackupInspection | undefined;
  for (const r of results) {
    if (r.reason !== "ok" || r.createdAtNs === undefined || r.tokenId === undefined) {
      firstFailure ??= r;
      continue;
    }
    if (
      best === undefined || r.createdAtNs > best.createdAtNs! ||
      (r.createdAtNs === best.createdAtNs && r.tokenId > best.tokenId!)
    ) {
      best = r;
    }
  }
  if (best) {
    return firstFailure
      ? { kind: "selected", selected: best, firstFailure }
      : { kind: "selected", selected: best };
  }
  if (firstFailure) return { kind: "none_valid", firstFailure };
  return { kind: "empty" };
}

/**
 * {@linkcode inspectBackupDir} followed by {@linkcode selectLatest}. Read-only.
 *
 * @param dir the network data directory
 * @param key 32-byte backup key
 * @param network expected network
 * @param fs file-system operations (default real; needs `--allow-read`)
 * @throws the listing error as is (e.g. `Deno.errors.NotFound`)
 */
export async function findLatestBackup(
  dir: string,
  key: Uint8Array,
  network: string,
  fs: BackupFs = denoBackupFs,
): Promise<BackupSelection> {
  return selectLatest(await inspectBackupDir(dir, key, network, fs));
}
