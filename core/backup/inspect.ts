/**
 * Read-only inspection of backup files: one file, or every backup file directly inside a
 * directory (spec/backup-and-recovery.md §1.1, §4, §5.1). Nothing here writes to disk.
 *
 * @module
 */
import { basename, join } from "node:path";
import type { L402TokenFile } from "../l402/token_file.ts";
import { parseBackupFileName } from "./file_name.ts";
import { type BackupFs, denoBackupFs } from "../fs/fs.ts";
import type { BackupPayload, BackupReason, StaticAddressBackup } from "./types.ts";
import { validateBackupBytes } from "./validate.ts";
import type { KeyLocator, LndClient } from "../../lnd/types.ts";
import type { NetworkName } from "../staticaddr/network.ts";
import type { StaticAddress } from "../staticaddr/script.ts";
import { prepareLegacy, type RestoreCheck, RestoreCheckError } from "./restore_plan.ts";
import { DEFAULT_CLIENT_KEY_SCAN_LIMIT } from "./scan.ts";

/** Result of inspecting one backup file. */
export interface BackupInspection {
  /** The file's path as inspected. */
  path: string;
  /** `ok`, or why the file is not usable. */
  reason: BackupReason;
  /** Loop's wording for the failure, or `backup file is valid`. */
  message: string;
  /** Token ID from the file name (canonical names only). Equals the payload's when `ok`. */
  tokenId?: string;
  /** Token creation time (Unix ns) from the file name (canonical names only). Equals the payload's when `ok`. */
  createdAtNs?: bigint;
  /** Payload network, when the file decrypted and decoded. */
  network?: string;
  /** Payload static address, when present. */
  staticAddress?: StaticAddressBackup;
  /** The decoded payload, when the file decrypted and decoded (also for later failures). */
  payload?: BackupPayload;
  /** The parsed embedded `l402.token`, when it parsed. */
  token?: L402TokenFile;
  /** Set by {@linkcode checkRestorable}: every restore-time check passed. */
  restorable?: boolean;
  /** Set by {@linkcode checkRestorable} when restorable: where lnd holds the client key. */
  clientKeyLocator?: KeyLocator;
  /** Set by {@linkcode checkRestorable} when restorable: the address `recover` would rebuild. */
  address?: StaticAddress;
  /** Set by {@linkcode checkRestorable} when not restorable: the failing check. */
  failedCheck?: RestoreCheck;
}

/**
 * Runs every restore-time check of `recover` on a valid backup, read-only (spec §4.4 via
 * {@linkcode prepareLegacy}, the very code `recover` runs): protocol version, server key on the curve,
 * client key present and parsable, legacy key family non-zero, the client key derivable by this lnd in
 * family `legacy_client_key_family`, indexes 0..`keyScanLimit` (`DeriveKey` only), and the address
 * (pkScript) rebuilt. A backup that is not `ok` is returned as it is.
 *
 * @returns the inspection with `restorable`, and either the key locator and address, or reason
 *   `not_restorable` with a message naming the failing check
 * @throws temporary lnd failures (exit 75): "could not ask" is never reported as "not restorable"
 */
export async function checkRestorable(
  insp: BackupInspection,
  lnd: Pick<LndClient, "deriveKey">,
  network: NetworkName,
  keyScanLimit: number = DEFAULT_CLIENT_KEY_SCAN_LIMIT,
): Promise<BackupInspection> {
  if (insp.reason !== "ok") return insp;
  const a = insp.payload?.staticAddress;
  if (!a) {
    return { ...insp, reason: "not_restorable", message: "backup file is missing static address parameters" };
  }
  try {
    const p = await prepareLegacy(a, lnd, network, keyScanLimit);
    return { ...insp, restorable: true, clientKeyLocator: p.keyLocator, address: p.address };
  } catch (e) {
    if (!(e instanceof RestoreCheckError)) throw e;
    return {
      ...insp,
      reason: "not_restorable",
      restorable: false,
      failedCheck: e.check,
      message: `restore check ${e.check} failed: ${e.message}`,
    };
  }
}

/**
 * Inspects one backup file given by path (Loop's explicit `--backup_file` path rules, §4.7):
 * its base name must be a backup file name, then read, decrypt, decode, envelope check and
 * generation check against that name. Never throws for a bad or unreadable file.
 *
 * @param path path to the file
 * @param key 32-byte backup key ({@linkcode deriveBackupKey})
 * @param network expected network (e.g. `mainnet`)
 * @param fs file-system operations (default real; needs `--allow-read`)
 * @returns the inspection; `unreadable` when the file cannot be read, `name_mismatch` with
 *   `invalid backup file path "…"` when the base name is not a backup file name
 */
export async function inspectBackupFile(
  path: string,
  key: Uint8Array,
  network: string,
  fs: BackupFs = denoBackupFs,
): Promise<BackupInspection> {
  const name = parseBackupFileName(basename(path));
  if (name === null) {
    return { path, reason: "name_mismatch", message: `invalid backup file path ${JSON.stringify(path)}` };
  }
  const base: BackupInspection = { path, reason: "ok", message: "" };
  if (name.ok) {
    base.tokenId = name.tokenId;
    base.createdAtNs = name.createdAtNs;
  }
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(path);
  } catch (e) {
    return {
      ...base,
      reason: "unreadable",
      message: `Cannot read backup file "${path}": ${(e as Error).message}`,
    };
  }
  const v = validateBackupBytes(bytes, key, network, name);
  const out: BackupInspection = { ...base, reason: v.reason, message: v.message };
  if (v.payload) {
    out.network = v.payload.network;
    if (v.payload.staticAddress) out.staticAddress = v.payload.staticAddress;
    out.payload = v.payload;
  }
  if (v.token) out.token = v.token;
  return out;
}

/** Go sorts directory entries by byte order of the UTF-8 name, i.e. by code point. */
function byCodePoint(a: string, b: string): number {
  const x = [...a], y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/**
 * Inspects every backup file directly inside `dir` (§1.1, §5.1 steps 1–3): entries sorted by
 * name, names that are not backup names skipped; a directory (or a symlink to one) under a backup
 * name is reported `unreadable` (Loop skips directories; a directory squatting on a backup's name is
 * worth knowing about); names only Go's lax parser accepts are reported as `name_mismatch`.
 *
 * @param dir the network data directory
 * @param key 32-byte backup key
 * @param network expected network
 * @param fs file-system operations (default real; needs `--allow-read`)
 * @returns one inspection per backup-named entry, in name order (empty when there is none)
 * @throws the listing error as is (e.g. `Deno.errors.NotFound` for a missing directory)
 */
export async function inspectBackupDir(
  dir: string,
  key: Uint8Array,
  network: string,
  fs: BackupFs = denoBackupFs,
): Promise<BackupInspection[]> {
  const entries = (await fs.readDir(dir)).sort((a, b) => byCodePoint(a.name, b.name));
  const out: BackupInspection[] = [];
  for (const e of entries) {
    if (parseBackupFileName(e.name) === null) continue;
    const path = join(dir, e.name);
    if (e.isDirectory) {
      // Something sits under a backup's name: report it (never "no backup files found"), never select it.
      const name = parseBackupFileName(e.name);
      out.push({
        path,
        reason: "unreadable",
        message: `Cannot read backup file "${path}": it is a directory`,
        ...(name?.ok ? { tokenId: name.tokenId, createdAtNs: name.createdAtNs } : {}),
      });
      continue;
    }
    out.push(await inspectBackupFile(path, key, network, fs));
  }
  return out;
}
