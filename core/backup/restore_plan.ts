/**
 * The plan half of `loopkit recover` (spec/backup-and-recovery.md §4.4–§4.7, §6.2–§6.4): every check a
 * restore makes before it writes anything — the backup resolved, decrypted and validated, the
 * static-address preparation (Loop's checks, the client key found in lnd, the address rebuilt), the token
 * store and the database rows. Everything here only reads, so `backup verify` runs the same checks.
 *
 * @module
 */
import { basename, join, resolve } from "node:path";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { equalBytes } from "@noble/curves/utils.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { KeyLocator, LndClient } from "../../lnd/types.ts";
import type { NewStaticAddress, StaticAddressRow } from "../db/static_addresses.ts";
import { ExitCode, LoopkitError } from "../errors.ts";
import { PAID_TOKEN_FILE_NAME, PENDING_TOKEN_FILE_NAME } from "../l402/token_file.ts";
import type { NetworkName } from "../staticaddr/network.ts";
import { STATIC_ADDRESS_PROTOCOL_V0, type StaticAddress, staticAddress } from "../staticaddr/script.ts";
import { parseBackupFileName } from "./file_name.ts";
import type { BackupFs } from "../fs/fs.ts";
import { findLatestBackup } from "./select.ts";
import { BackupInvalidError, type BackupPayload, type StaticAddressBackup } from "./types.ts";
import { validateBackupBytes } from "./validate.ts";
import { DEFAULT_CLIENT_KEY_SCAN_LIMIT, findClientKey } from "./scan.ts";

/** Role of a restored address: the legacy (V0) address or a multi-address branch child. */
export type AddressRole = "legacy" | "receive" | "change";

const hex = bytesToHex;

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The restore-time checks of a backup's static address (spec §4.4), in Loop's order; `backup verify`
 * names the failing one in its `not_restorable` message.
 */
export type RestoreCheck =
  | "protocol_version"
  | "server_pubkey"
  | "client_pubkey_present"
  | "legacy_client_key_family"
  | "client_pubkey"
  | "client_key_in_lnd"
  | "pk_script";

/** A backup whose static address fails a restore-time check (exit 3 like any invalid backup). */
export class RestoreCheckError extends LoopkitError {
  /** The failing check. */
  readonly check: RestoreCheck;
  constructor(check: RestoreCheck, message: string) {
    super("backup_address_invalid", message, ExitCode.VerifyFailed);
    this.name = "RestoreCheckError";
    this.check = check;
  }
}

function addressInvalid(message: string, check: RestoreCheck): LoopkitError {
  return new RestoreCheckError(check, message);
}

/** A refused restore: something different is already in place (exit 1, nothing changed). */
export function restoreConflict(message: string): LoopkitError {
  return new LoopkitError("restore_conflict", message, ExitCode.Failure);
}

export async function readOrNull(fs: BackupFs, path: string): Promise<Uint8Array | null> {
  try {
    return await fs.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new LoopkitError("l402_store_io", `Cannot read "${path}": ${messageOf(e)}`, ExitCode.Failure, {
      cause: e,
    });
  }
}

// ---------------------------------------------------------------- backup file

/** A decrypted, fully validated backup. */
export interface LoadedBackup {
  /** Resolved path. */
  path: string;
  payload: BackupPayload;
  /** Raw `l402.token` bytes from the payload. */
  tokenBytes: Uint8Array;
  /** Warnings about other files (auto-selection skipped invalid ones). */
  warnings: string[];
}

/**
 * Resolves and fully validates the backup (spec §6.2 steps 2–4, §4.7, §5.1).
 *
 * @param key 32-byte backup key
 * @param backupFile explicit path; its base name must be a backup file name
 * @throws {LoopkitError} `usage` (exit 2) `invalid backup file path "…"`; `backup_not_found` (exit 2
 *   for an explicit path, exit 3 when the data directory holds no backup);
 *   {@linkcode BackupInvalidError} (exit 3) with Loop's wording for an invalid file
 */
export async function loadBackup(
  fs: BackupFs,
  dataDir: string,
  network: string,
  key: Uint8Array,
  backupFile?: string,
): Promise<LoadedBackup> {
  if (backupFile !== undefined) {
    const path = resolve(backupFile);
    const name = parseBackupFileName(basename(path));
    if (name === null) {
      throw new LoopkitError(
        "usage",
        `invalid backup file path ${
          JSON.stringify(backupFile)
        }: --backup-file must name an L402_backup_<19-digit ns>_<64 hex>.enc file`,
        ExitCode.Usage,
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = await fs.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new LoopkitError("backup_not_found", `Backup file "${path}" does not exist`, ExitCode.Usage);
      }
      throw new BackupInvalidError("unreadable", `Cannot read backup file "${path}": ${messageOf(e)}`);
    }
    const v = validateBackupBytes(bytes, key, network, name);
    if (v.reason !== "ok") throw new BackupInvalidError(v.reason, `${v.message} (backup file "${path}")`);
    return { path, payload: v.payload!, tokenBytes: tokenData(v.payload!), warnings: [] };
  }
  let sel;
  try {
    sel = await findLatestBackup(dataDir, key, network, fs);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new LoopkitError(
        "backup_not_found",
        `No backup to restore: data directory "${dataDir}" does not exist (give --backup-file)`,
        ExitCode.VerifyFailed,
      );
    }
    throw new BackupInvalidError("unreadable", `Cannot list data directory "${dataDir}": ${messageOf(e)}`);
  }
  if (sel.kind === "empty") {
    throw new LoopkitError(
      "backup_not_found",
      `No backup file (L402_backup_*.enc) in "${dataDir}" (give --backup-file)`,
      ExitCode.VerifyFailed,
    );
  }
  if (sel.kind === "none_valid") {
    const f = sel.firstFailure;
    throw new BackupInvalidError(
      f.reason as Exclude<typeof f.reason, "ok">,
      `${f.message} (backup file "${f.path}"; no valid backup in "${dataDir}")`,
    );
  }
  const warnings = sel.firstFailure
    ? [`Skipped invalid backup file "${sel.firstFailure.path}": ${sel.firstFailure.message}`]
    : [];
  const payload = sel.selected.payload!;
  return { path: resolve(sel.selected.path), payload, tokenBytes: tokenData(payload), warnings };
}

/** The one non-null `l402.token` entry (the generation check guarantees exactly one). */
function tokenData(p: BackupPayload): Uint8Array {
  const e = p.tokenFiles.find((t) => t.data !== null);
  if (!e?.data) {
    throw new BackupInvalidError("incomplete_generation", "backup file is missing paid L402 token data");
  }
  return e.data;
}

// ---------------------------------------------------------------- static-address preparation

/** Parses a public key the way Loop's btcec parser does (33 compressed, or 65 uncompressed/hybrid). */
function parsePubkey(
  bytes: Uint8Array | null | undefined,
  field: string,
  check: RestoreCheck,
): Uint8Array {
  const b = bytes ?? new Uint8Array();
  if (b.length !== 33 && b.length !== 65) {
    throw addressInvalid(`malformed public key: invalid length: ${b.length} (backup ${field})`, check);
  }
  try {
    const raw = b.length === 65 && (b[0] === 0x06 || b[0] === 0x07)
      ? Uint8Array.from([0x04, ...b.slice(1)])
      : b;
    const p = secp256k1.Point.fromBytes(raw);
    p.assertValidity();
    if (b.length === 65 && b[0] !== 0x04 && (b[0] & 1) !== Number(p.y & 1n)) throw new Error("hybrid parity");
    return p.toBytes(true);
  } catch {
    throw addressInvalid(`invalid public key: backup ${field} ${hex(b)} is not a point on secp256k1`, check);
  }
}

/** The legacy address of a backup, client key located. */
export interface PreparedLegacy {
  serverPubkey: Uint8Array;
  clientPubkey: Uint8Array;
  keyLocator: KeyLocator;
  address: StaticAddress;
}

/**
 * Static-address preparation before any write (spec §4.4, Loop `prepareStaticAddressRestore`),
 * Loop's checks in Loop's order, then the address (§6.3).
 *
 * @throws {LoopkitError} `backup_address_invalid` (exit 3) with Loop's wording:
 *   `invalid static address protocol version %d`, `… public key …`,
 *   `backup file is missing the static address client pubkey`,
 *   `backup file is missing the legacy static address client key family`,
 *   `unable to derive static address client key from backup`; temporary lnd failures (exit 75)
 * @param keyScanLimit highest client-key index searched (`--key-scan-limit`, default 1 000; Loop: 20)
 */
export async function prepareLegacy(
  a: StaticAddressBackup,
  lnd: Pick<LndClient, "deriveKey">,
  network: NetworkName,
  keyScanLimit: number = DEFAULT_CLIENT_KEY_SCAN_LIMIT,
): Promise<PreparedLegacy> {
  if (a.protocolVersion > STATIC_ADDRESS_PROTOCOL_V0) {
    throw addressInvalid(`invalid static address protocol version ${a.protocolVersion}`, "protocol_version");
  }
  const serverPubkey = parsePubkey(a.serverPubkey, "server_pubkey", "server_pubkey");
  if (!a.clientPubkey || a.clientPubkey.length === 0) {
    throw addressInvalid("backup file is missing the static address client pubkey", "client_pubkey_present");
  }
  if (a.legacyClientKeyFamily === 0) {
    throw addressInvalid(
      "backup file is missing the legacy static address client key family",
      "legacy_client_key_family",
    );
  }
  const clientPubkey = parsePubkey(a.clientPubkey, "client_pubkey", "client_pubkey");
  const family = a.legacyClientKeyFamily;
  if (!Number.isInteger(family) || family < 0) {
    throw addressInvalid(
      `invalid legacy static address client key family ${family}`,
      "legacy_client_key_family",
    );
  }
  const key = await findClientKey(lnd, family, clientPubkey, keyScanLimit);
  if (!key) {
    throw addressInvalid(
      `unable to derive static address client key from backup: none of lnd's keys ${family}/0..` +
        `${keyScanLimit} is the backup's client key ${hex(clientPubkey)}; ` +
        "is this lnd created from the same seed? (a key past that index needs a larger --key-scan-limit)",
      "client_key_in_lnd",
    );
  }
  let address: StaticAddress;
  try {
    address = staticAddress({ clientPubkey, serverPubkey, csvExpiry: a.expiry, network });
  } catch (e) {
    throw addressInvalid(`Cannot rebuild the backup's static address: ${messageOf(e)}`, "pk_script");
  }
  return { serverPubkey, clientPubkey, keyLocator: key.keyLocator, address };
}

// ---------------------------------------------------------------- token store

/** What the token restore will do. */
export interface TokenPlan {
  /** Path of `l402.token`. */
  path: string;
  /** `write`: absent; `unchanged`: identical bytes already there. */
  action: "write" | "unchanged";
}

/**
 * Checks the token store before any write (spec §4.5; decision 5): a `l402.token.pending` present,
 * or a `l402.token` with other bytes, refuses the restore.
 *
 * @throws {LoopkitError} `restore_conflict` (exit 1) with Loop's wording
 *   (`token store already contains unexpected file "l402.token.pending"`,
 *   `token file "l402.token" already exists with different contents`); `l402_store_io`
 */
export async function planTokenRestore(fs: BackupFs, dataDir: string, bytes: Uint8Array): Promise<TokenPlan> {
  const path = join(dataDir, PAID_TOKEN_FILE_NAME);
  const pendingPath = join(dataDir, PENDING_TOKEN_FILE_NAME);
  const existing = await readOrNull(fs, path);
  if (await readOrNull(fs, pendingPath) !== null) throw pendingConflict(pendingPath);
  if (existing === null) return { path, action: "write" };
  if (!equalBytes(existing, bytes)) throw differentTokenConflict(path);
  return { path, action: "unchanged" };
}

export function pendingConflict(pendingPath: string): LoopkitError {
  return restoreConflict(
    `token store already contains unexpected file "${PENDING_TOKEN_FILE_NAME}" ("${pendingPath}"): ` +
      "a token acquisition is under way or was interrupted; resolve it before recovering",
  );
}

export function differentTokenConflict(path: string): LoopkitError {
  return restoreConflict(
    `token file "${PAID_TOKEN_FILE_NAME}" already exists with different contents ("${path}"): ` +
      "another L402 generation is in place; refusing to overwrite it",
  );
}

// ---------------------------------------------------------------- address rows

/** One wanted address row for {@linkcode planAddressRows}. */
export interface WantedAddress {
  role: AddressRole;
  row: NewStaticAddress;
  /** The stored initiation height may differ (branch children; a legacy height the backup lacks). */
  heightFlexible: boolean;
}

function rowDifferences(stored: StaticAddressRow, want: NewStaticAddress, heightFlexible: boolean): string[] {
  const d: string[] = [];
  if (!equalBytes(stored.clientPubkey, want.clientPubkey)) d.push("client key");
  if (!equalBytes(stored.serverPubkey, want.serverPubkey)) d.push("server key");
  if (stored.expiry !== want.expiry) {
    d.push(`CSV expiry (${stored.expiry} stored, ${want.expiry} in the backup)`);
  }
  if (stored.clientKeyFamily !== want.clientKeyFamily || stored.clientKeyIndex !== want.clientKeyIndex) {
    d.push(
      `key locator (${stored.clientKeyFamily}/${stored.clientKeyIndex} stored, ` +
        `${want.clientKeyFamily}/${want.clientKeyIndex} restored)`,
    );
  }
  if (stored.protocolVersion !== want.protocolVersion) d.push("protocol version");
  if (!heightFlexible && stored.initiationHeight !== want.initiationHeight) {
    d.push(`initiation height (${stored.initiationHeight} stored, ${want.initiationHeight} in the backup)`);
  }
  return d;
}

function describeRow(r: { pkScript: Uint8Array; clientKeyFamily: number; clientKeyIndex: number }): string {
  return `pkScript ${hex(r.pkScript)} (key ${r.clientKeyFamily}/${r.clientKeyIndex})`;
}

/**
 * Decides, for each wanted row, whether to create it or reuse an equal stored one (spec §6.4 [R1+],
 * §3.5): the legacy address must be the lowest-id row when rows exist; rows are matched by pkScript;
 * a match must be equal in every field (branch children may differ in initiation height; the stored
 * one is kept).
 *
 * @param existing stored rows, ordered by id
 * @param wanted the legacy row first, then the branch children
 * @returns one action per wanted row, in order
 * @throws {LoopkitError} `restore_conflict` (`existing static address differs from backup: …`)
 */
export function planAddressRows(
  existing: readonly StaticAddressRow[],
  wanted: readonly WantedAddress[],
): ("create" | "existing")[] {
  return wanted.map((w) => {
    const match = existing.find((r) => equalBytes(r.pkScript, w.row.pkScript));
    if (w.role === "legacy" && existing.length > 0 && existing[0] !== match) {
      throw restoreConflict(
        `existing static address differs from backup: the database's static address is ` +
          `${describeRow(existing[0])}, the backup's is ${describeRow(w.row)}; ` +
          "refusing to mix two generations in one database",
      );
    }
    if (!match) return "create";
    const diff = rowDifferences(match, w.row, w.heightFlexible);
    if (diff.length) {
      throw restoreConflict(
        `existing static address differs from backup: ${describeRow(match)} differs in ${diff.join(", ")}`,
      );
    }
    return "existing";
  });
}
