/**
 * Backup file names: `L402_backup_<created_at_ns %019d>_<token_id>.enc`
 * (spec/backup-and-recovery.md §1.2).
 *
 * The parser answers three ways, so callers match Loop's discovery exactly while being stricter
 * (project decision 4):
 * - `null`: Go's `parseBackupFileName` rejects the name too: not a backup file, skip it silently;
 * - `{ ok: false }`: Go accepts the name but it is not canonical (a timestamp that is not exactly
 *   19 unsigned digits, e.g. `+…`, `-…`, `5`; upper-case hex in the token ID). Loop would consider
 *   such a file; loopkit reports it as invalid (`name_mismatch`) instead of using it;
 * - `{ ok: true }`: canonical name, with the timestamp as `bigint`.
 *
 * @module
 */
import { isTokenIdHex } from "../l402/identifier.ts";

/** File name prefix (`L402_backup` plus `_`). */
export const BACKUP_FILE_PREFIX = "L402_backup_";
/** File name suffix. */
export const BACKUP_FILE_SUFFIX = ".enc";

const I64_MAX = (1n << 63n) - 1n;
const I64_MIN = -(1n << 63n);

/** A canonical backup file name, parsed. */
export interface BackupFileName {
  ok: true;
  /** Token creation time from the name, Unix nanoseconds. */
  createdAtNs: bigint;
  /** Token ID from the name, 64 lower-case hex characters. */
  tokenId: string;
}

/** A name Loop's lax parser accepts but loopkit does not. */
export interface MalformedBackupFileName {
  ok: false;
  /** Why, e.g. `Cannot parse backup file name "x": timestamp is not 19 digits`. */
  message: string;
}

/**
 * Builds the backup file name for a token (Go `fmt.Sprintf("L402_backup_%019d_%s.enc", …)`).
 *
 * @param createdAtNs token creation time, Unix nanoseconds, 0 ≤ value ≤ 2^63 − 1
 * @param tokenId 64 lower-case hex characters
 * @returns the base name (no directory)
 * @throws {RangeError} negative or out-of-range time (Go would print a sign), or a bad token ID
 * @example
 * ```ts
 * import { backupFileName } from "./file_name.ts";
 * backupFileName(1776159001000000000n, "01".padEnd(64, "0"));
 * // "L402_backup_1776159001000000000_0100…00.enc"
 * ```
 */
export function backupFileName(createdAtNs: bigint, tokenId: string): string {
  if (createdAtNs < 0n || createdAtNs > I64_MAX) {
    throw new RangeError(`Cannot build backup file name: creation time ${createdAtNs} ns is out of range`);
  }
  if (!isTokenIdHex(tokenId)) {
    throw new RangeError(
      `Cannot build backup file name: token ID "${tokenId}" is not 64 lower-case hex characters`,
    );
  }
  return `${BACKUP_FILE_PREFIX}${createdAtNs.toString().padStart(19, "0")}_${tokenId}${BACKUP_FILE_SUFFIX}`;
}

/** Go `strconv.ParseInt(s, 10, 64)` success test. */
function goParsesInt64(s: string): boolean {
  if (!/^[+-]?[0-9]+$/.test(s)) return false;
  const v = BigInt(s.startsWith("+") ? s.slice(1) : s);
  return v >= I64_MIN && v <= I64_MAX;
}

/**
 * Parses a directory entry name (base name, no directory part).
 *
 * @param name the entry name
 * @returns `null` if it is not a backup name (Loop skips it too), a {@linkcode MalformedBackupFileName}
 *   if only Loop's lax parser accepts it, else the canonical {@linkcode BackupFileName}
 */
export function parseBackupFileName(name: string): BackupFileName | MalformedBackupFileName | null {
  if (!name.startsWith(BACKUP_FILE_PREFIX) || !name.endsWith(BACKUP_FILE_SUFFIX)) return null;
  const rest = name.slice(BACKUP_FILE_PREFIX.length, name.length - BACKUP_FILE_SUFFIX.length);
  const sep = rest.indexOf("_");
  if (sep < 0) return null;
  const ts = rest.slice(0, sep);
  const id = rest.slice(sep + 1);
  if (!goParsesInt64(ts)) return null;
  if (id.length !== 64 || !/^[0-9a-fA-F]+$/.test(id)) return null;
  const what = `Cannot parse backup file name ${JSON.stringify(name)}`;
  if (!/^[0-9]{19}$/.test(ts)) return { ok: false, message: `${what}: timestamp is not 19 digits` };
  if (!isTokenIdHex(id)) return { ok: false, message: `${what}: token ID is not lower-case hex` };
  return { ok: true, createdAtNs: BigInt(ts), tokenId: id };
}
