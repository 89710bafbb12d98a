/**
 * Swap recovery record files (swap_record.ts) on disk: written once, atomically (0600, fsync, rename, directory
 * fsync: core/fs/atomic_write.ts, as backups are, spec/backup-and-recovery.md §1.6 and decision 5), into the
 * directory the L402 backups go to, and never rewritten; listed and opened for `recover`.
 *
 * @module
 */
import { join } from "node:path";
import { bytesToHex } from "@noble/hashes/utils.js";
import { equalBytes } from "@noble/curves/utils.js";
import { dataDirUnwritable, ExitCode, isUnwritableError, LoopkitError } from "../errors.ts";
import { atomicWriteFile } from "../fs/atomic_write.ts";
import { type BackupFs, denoBackupFs } from "../fs/fs.ts";
import type { NetworkName } from "../staticaddr/network.ts";
import {
  encodeSwapRecord,
  type LoopInSwapRecord,
  openSwapRecord,
  parseSwapRecordFileName,
  sealSwapRecord,
  swapRecordFileName,
} from "./swap_record.ts";

/**
 * Writes the sealed record as `<dir>/loopin_swap_<swap hash>.enc`, once. Under the directory lock: no file ⇒
 * written; a file there that opens to the very same record ⇒ left as it is (a retry); anything else there ⇒
 * refused, never replaced (it may be the only copy of another swap's parameters).
 *
 * @param dir the backup directory (the network data directory)
 * @param key the 32-byte backup key (`deriveBackupKey`)
 * @param nonce tests only
 * @returns the file's path and whether this call wrote it
 * @throws {LoopkitError} `data_dir_unwritable` (exit 2) when the directory may not be written;
 *   `swap_record_conflict` (exit 1) when another file holds the name; `swap_record_write_failed` (exit 1)
 *   naming the path and the file system's error (e.g. `No space left on device`); no partial file is left;
 *   `swap_record_invalid` for an inconsistent record
 */
export async function writeSwapRecordFile(
  dir: string,
  key: Uint8Array,
  record: LoopInSwapRecord,
  fs: BackupFs = denoBackupFs,
  nonce?: Uint8Array,
): Promise<{ path: string; written: boolean }> {
  const path = join(dir, swapRecordFileName(record.swapHash));
  const sealed = sealSwapRecord(key, record, nonce);
  const plain = encodeSwapRecord(record);
  const decide = async (): Promise<boolean> => {
    let there: Uint8Array;
    try {
      there = await fs.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return true;
      throw conflict(path, `it cannot be read (${(e as Error).message})`);
    }
    let existing: LoopInSwapRecord;
    try {
      existing = openSwapRecord(key, there, path);
    } catch (e) {
      throw conflict(path, (e as Error).message);
    }
    if (!equalBytes(encodeSwapRecord(existing), plain)) throw conflict(path, "it holds different parameters");
    return false;
  };
  try {
    const written = await atomicWriteFile(path, sealed, fs, { shouldWrite: decide });
    return { path, written };
  } catch (e) {
    if (e instanceof LoopkitError) throw e;
    if (isUnwritableError(e)) throw dataDirUnwritable(dir, path, e);
    throw new LoopkitError(
      "swap_record_write_failed",
      `Cannot write the swap recovery record "${path}": ${(e as Error).message ?? e}`,
      ExitCode.Failure,
      { cause: e },
    );
  }
}

function conflict(path: string, why: string): LoopkitError {
  return new LoopkitError(
    "swap_record_conflict",
    `Cannot write the swap recovery record "${path}": a file of that name is already there and ${why}; ` +
      "it is kept untouched (move it away only if you are sure it is not needed)",
    ExitCode.Failure,
  );
}

/** One record file found by {@linkcode readSwapRecordDir}. */
export type SwapRecordFile =
  | { path: string; swapHashHex: string; ok: true; record: LoopInSwapRecord }
  | { path: string; swapHashHex: string; ok: false; error: LoopkitError };

/**
 * Every `loopin_swap_<hash>.enc` directly inside `dir`, opened, in name order. A file that cannot be read or
 * opened is returned with its error (naming the file), never thrown. A missing directory has none.
 *
 * @param network the records' network must be this one
 * @throws the listing error of an existing directory as is
 */
export async function readSwapRecordDir(
  dir: string,
  key: Uint8Array,
  network: NetworkName,
  fs: BackupFs = denoBackupFs,
): Promise<SwapRecordFile[]> {
  let entries;
  try {
    entries = await fs.readDir(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const names = entries.filter((e) => parseSwapRecordFileName(e.name) !== null).map((e) => e.name).sort();
  const out: SwapRecordFile[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const swapHashHex = parseSwapRecordFileName(name)!;
    try {
      const record = openSwapRecord(key, await fs.readFile(path), path, network);
      out.push({ path, swapHashHex, ok: true, record });
    } catch (e) {
      const error = e instanceof LoopkitError ? e : new LoopkitError(
        "swap_record_invalid",
        `Swap recovery record "${path}" cannot be read: ${(e as Error).message ?? e}`,
        ExitCode.VerifyFailed,
        { cause: e },
      );
      out.push({ path, swapHashHex, ok: false, error });
    }
  }
  return out;
}

/**
 * The writer `initiateLoopIn` takes (`LoopInDeps.writeSwapRecord`): the backup key asked of lnd once per call
 * (one `DeriveSharedKey`), then {@linkcode writeSwapRecordFile} into `dir`.
 */
export function swapRecordWriter(
  dir: string,
  backupKey: () => Promise<Uint8Array>,
  fs: BackupFs = denoBackupFs,
): (record: LoopInSwapRecord) => Promise<string> {
  return async (record) => {
    let key: Uint8Array;
    try {
      key = await backupKey();
    } catch (e) {
      const le = e instanceof LoopkitError ? e : undefined;
      throw new LoopkitError(
        le?.code ?? "swap_record_write_failed",
        `Cannot write the swap recovery record of loop-in ${bytesToHex(record.swapHash)}: the backup key ` +
          `(lnd DeriveSharedKey) is unavailable: ${(e as Error).message ?? e}`,
        le?.exitCode ?? ExitCode.Failure,
        { cause: e },
      );
    }
    return (await writeSwapRecordFile(dir, key, record, fs)).path;
  };
}
