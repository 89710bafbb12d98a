/**
 * Lightning Loop's encrypted static-address + L402 backup, byte-compatible with Loop (format
 * version 1, spec/backup-and-recovery.md §0–§5): file names, the `loopbak1` secretbox envelope
 * keyed through lnd `DeriveSharedKey`, the JSON payload, validation with stable reasons,
 * read-only inspection and selection, crash-safe writing.
 *
 * @example
 * ```ts ignore
 * import { deriveBackupKey, findLatestBackup, writeBackup } from "./mod.ts";
 * const result = await writeBackup({ dataDir, network, lnd, staticAddress, currentHeight });
 * const key = await deriveBackupKey(lnd);
 * const latest = await findLatestBackup(dataDir, key, network);
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./envelope.ts";
export * from "./payload.ts";
export * from "./file_name.ts";
export * from "./validate.ts";
export * from "../fs/fs.ts";
export * from "../fs/atomic_write.ts";
export * from "./inspect.ts";
export * from "./select.ts";
export * from "./write.ts";
export * from "./generation.ts";
export * from "./scan.ts";
export * from "./restore.ts";
export * from "../fs/temp_files.ts";
