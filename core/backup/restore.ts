/**
 * `loopkit recover`: rebuilds one generation (paid L402 token + static addresses) from its backup
 * (spec/backup-and-recovery.md §4.4–§4.9, §6.2–§6.6, §7.1; loopkit decisions 1 and 5).
 *
 * The whole plan is computed before anything is written: backup resolved, decrypted and fully
 * validated; client key found; token-store and database conflicts checked; the receive/change
 * branches scanned against one wallet snapshot. Then, in order: the token file is published
 * (no-clobber), the tapscripts are imported into lnd, and every new address row is inserted in one
 * database transaction. If any of these fails, the token file this run wrote is removed and the
 * database is untouched. Finally one deposit sync runs; its failure does not undo the restore.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { KeyLocator, LndClient, Utxo } from "../../lnd/types.ts";
import type { Db } from "../db/db.ts";
import { dbError } from "../db/db.ts";
import {
  insertStaticAddress,
  listStaticAddresses,
  type NewStaticAddress,
  type StaticAddressRow,
} from "../db/static_addresses.ts";
import type { SyncResult } from "../deposits/sync.ts";
import { listDeposits } from "../deposits/store.ts";
import { filterOurUtxos } from "../deposits/reconcile.ts";
import { outpointOf } from "../deposits/types.ts";
import { ExitCode, LoopkitError } from "../errors.ts";
import { PAID_TOKEN_FILE_NAME, PENDING_TOKEN_FILE_NAME } from "../l402/token_file.ts";
import type { NetworkName } from "../staticaddr/network.ts";
import { STATIC_ADDRESS_PROTOCOL_V0, type StaticAddress, staticAddress } from "../staticaddr/script.ts";
import { PRIVATE_FILE_MODE } from "../fs/atomic_write.ts";
import { deriveBackupKey } from "./envelope.ts";
import { parseBackupFileName } from "./file_name.ts";
import { type BackupFs, denoBackupFs, writeAllAndSync } from "../fs/fs.ts";
import { findLatestBackup } from "./select.ts";
import { BackupInvalidError, type BackupPayload, type StaticAddressBackup } from "./types.ts";
import { validateBackupBytes } from "./validate.ts";
import {
  type BranchScan,
  checkScanGap,
  DEFAULT_MULTI_ADDRESS_SCAN_GAP,
  findClientKey,
  LEGACY_CLIENT_KEY_SCAN_LIMIT,
  scanBranches,
} from "./scan.ts";
import { equalBytes } from "@noble/curves/utils.js";

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

/** What the restore needs from lnd (each maps to one RPC, spec §6.7). */
export type RecoverLnd = Pick<
  LndClient,
  "deriveSharedKey" | "deriveKey" | "importTapscript" | "listUnspent" | "getInfo"
>;

/** Dependencies and options of {@linkcode recover}. */
export interface RecoverDeps {
  /** Network data directory: `l402.token` goes here; backups are auto-selected from here. */
  dataDir: string;
  /** Daemon network (payload `network` must equal it; address HRP). */
  network: NetworkName;
  lnd: RecoverLnd;
  /**
   * The database for reading, or null when none exists yet (nothing stored, nothing to conflict
   * with). Must not create one: a dry run and a refused run leave no file behind.
   */
  existingDb(): Promise<Db | null>;
  /** Opens (creating and migrating when needed) the database for the final write transaction. */
  openDb(): Promise<Db>;
  /** One deposit sync (`deposits sync`) after a successful restore. */
  syncDeposits(db: Db): Promise<SyncResult>;
  /** Explicit backup file (`--backup-file`); default: the latest valid backup in `dataDir`. */
  backupFile?: string;
  /** Rolling gap of the branch scan (`--gap`, default 20). */
  gap?: number;
  /** Compute and return the plan, write nothing (no token file, no import, no row, no sync). */
  dryRun?: boolean;
  /** File-system operations (default real). */
  fs?: RestoreFs;
}

/** Role of a restored address: the legacy (V0) address or a multi-address branch child. */
export type AddressRole = "legacy" | "receive" | "change";

/** One address of the plan. */
export interface RestoredAddress {
  role: AddressRole;
  /** lnd key locator of the client key. */
  keyLocator: KeyLocator;
  /** The address, recomputed from the keys and expiry. */
  address: StaticAddress;
  /** The row as it is (or will be) stored. */
  row: NewStaticAddress;
  /** `create`: no row yet (created unless dry run); `existing`: an equal row is stored. */
  action: "create" | "existing";
  /** lnd newly imported its tapscript (false in a dry run and for "already exists"). */
  imported: boolean;
}

/** Result of {@linkcode recover}. */
export interface RecoverResult {
  /** Resolved path of the backup used. */
  backupFile: string;
  /** True for `--dry-run`: the `restored*` fields and counts say what a real run would do. */
  dryRun: boolean;
  /** Token ID of the restored generation. */
  tokenId: string;
  /** Token creation time, Unix ns. */
  createdAtNs: bigint;
  /** `l402.token` was written by this run (dry run: would be). */
  restoredL402: boolean;
  /** A row was created or lnd newly imported a tapscript (dry run: a row would be created). */
  restoredStaticAddress: boolean;
  /** The legacy taproot address. */
  staticAddress: string;
  /** The legacy address. */
  legacy: RestoredAddress;
  /** Branch children found by the scan (in family, then index order). */
  children: RestoredAddress[];
  /** What the scan covered, per family. */
  scanned: BranchScan[];
  /** Gap used. */
  gap: number;
  /** The backup's first height (`legacy_first_height`, else `multi_address_first_height`), or null. */
  firstHeight: number | null;
  /** New deposits created by the sync (dry run: wallet outputs of our addresses without a deposit row). */
  numDepositsFound: number;
  /** The sync's error text; the restore itself succeeded. */
  depositSyncError: string | null;
  /** Wallet outputs paying our static addresses (after the sync, else in the snapshot). */
  walletDeposits: number;
  /** Human warnings (skipped invalid backups, lnd does not rescan, empty wallet). */
  warnings: string[];
}

const hex = bytesToHex;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A problem with the backup's static-address parameters: exit 3 like any invalid backup. */
function addressInvalid(message: string): LoopkitError {
  return new LoopkitError("backup_address_invalid", message, ExitCode.VerifyFailed);
}

/** A refused restore: something different is already in place (exit 1, nothing changed). */
export function restoreConflict(message: string): LoopkitError {
  return new LoopkitError("restore_conflict", message, ExitCode.Failure);
}

async function readOrNull(fs: BackupFs, path: string): Promise<Uint8Array | null> {
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
function parsePubkey(bytes: Uint8Array | null | undefined, field: string): Uint8Array {
  const b = bytes ?? new Uint8Array();
  if (b.length !== 33 && b.length !== 65) {
    throw addressInvalid(`malformed public key: invalid length: ${b.length} (backup ${field})`);
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
    throw addressInvalid(`invalid public key: backup ${field} ${hex(b)} is not a point on secp256k1`);
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
 */
export async function prepareLegacy(
  a: StaticAddressBackup,
  lnd: Pick<LndClient, "deriveKey">,
  network: NetworkName,
): Promise<PreparedLegacy> {
  if (a.protocolVersion > STATIC_ADDRESS_PROTOCOL_V0) {
    throw addressInvalid(`invalid static address protocol version ${a.protocolVersion}`);
  }
  const serverPubkey = parsePubkey(a.serverPubkey, "server_pubkey");
  if (!a.clientPubkey || a.clientPubkey.length === 0) {
    throw addressInvalid("backup file is missing the static address client pubkey");
  }
  if (a.legacyClientKeyFamily === 0) {
    throw addressInvalid("backup file is missing the legacy static address client key family");
  }
  const clientPubkey = parsePubkey(a.clientPubkey, "client_pubkey");
  const family = a.legacyClientKeyFamily;
  if (!Number.isInteger(family) || family < 0) {
    throw addressInvalid(`invalid legacy static address client key family ${family}`);
  }
  const key = await findClientKey(lnd, family, clientPubkey);
  if (!key) {
    throw addressInvalid(
      `unable to derive static address client key from backup: none of lnd's keys ${family}/0..` +
        `${LEGACY_CLIENT_KEY_SCAN_LIMIT} is the backup's client key ${hex(clientPubkey)}; ` +
        "is this lnd created from the same seed?",
    );
  }
  let address: StaticAddress;
  try {
    address = staticAddress({ clientPubkey, serverPubkey, csvExpiry: a.expiry, network });
  } catch (e) {
    throw addressInvalid(`Cannot rebuild the backup's static address: ${messageOf(e)}`);
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

function pendingConflict(pendingPath: string): LoopkitError {
  return restoreConflict(
    `token store already contains unexpected file "${PENDING_TOKEN_FILE_NAME}" ("${pendingPath}"): ` +
      "a token acquisition is under way or was interrupted; resolve it before recovering",
  );
}

function differentTokenConflict(path: string): LoopkitError {
  return restoreConflict(
    `token file "${PAID_TOKEN_FILE_NAME}" already exists with different contents ("${path}"): ` +
      "another L402 generation is in place; refusing to overwrite it",
  );
}

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

/**
 * Removes the token file this run wrote, only while it still holds exactly those bytes, then
 * fsyncs its directory.
 * @returns rollback errors, each `remove <path>: <err>` ("already gone" is not an error)
 */
export async function rollbackToken(fs: RestoreFs, path: string, bytes: Uint8Array): Promise<string[]> {
  const errors: string[] = [];
  try {
    const there = await fs.readFile(path);
    if (!equalBytes(there, bytes)) return errors; // replaced by someone else meanwhile: not ours
    await fs.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) errors.push(`remove ${path}: ${messageOf(e)}`);
    return errors;
  }
  try {
    const dir = await fs.lockDir(dirname(path));
    try {
      await dir.sync();
    } finally {
      dir.close();
    }
  } catch { /* durability of the removal is best effort; the file is gone */ }
  return errors;
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

// ---------------------------------------------------------------- the restore

/**
 * Restores the generation of a backup (spec §6.2 with the [R1] branch scan), statelessly and
 * idempotently: a second run finds everything in place and reports `restored*` false.
 *
 * Steps:
 * 1. one `DeriveSharedKey(NUMS, {42060, 0})` for the backup key;
 * 2. resolve (explicit `backupFile`, else the latest valid backup of `dataDir`), decrypt, validate
 *    envelope and generation — exit 3 on any failure;
 * 3. prepare the legacy address: Loop's checks, client key by `DeriveKey(42060, 0..20)` — exit 3;
 * 4. check the token store (pending token, different `l402.token` ⇒ refuse, exit 1);
 * 5. read the database (if one exists) and plan the legacy row (a different row ⇒ refuse, exit 1);
 * 6. one `ListUnspent(0, 0)` snapshot; rolling-gap scan of the receive/change families; plan their rows;
 * 7. dry run: return the plan;
 * 8. publish `l402.token` (no-clobber, 0600); import every tapscript (legacy first); insert every new
 *    row in one transaction (re-checked there). On any failure: remove the token file this run wrote,
 *    the database stays as it was; the error says what was rolled back;
 * 9. one deposit sync; its failure is reported in `depositSyncError` (the CLI exits 4).
 *
 * @throws {BackupInvalidError} / {@linkcode LoopkitError} exit 3 (backup unusable), exit 2 (bad
 *   `--backup-file` / `--gap`), `restore_conflict` exit 1 (nothing changed), `restore_failed` exit 1
 *   or 75 (rolled back), lnd errors (exit 75 when unreachable)
 */
export async function recover(deps: RecoverDeps): Promise<RecoverResult> {
  const fs = deps.fs ?? denoRestoreFs;
  const gap = deps.gap ?? DEFAULT_MULTI_ADDRESS_SCAN_GAP;
  checkScanGap(gap);
  const { lnd, network, dataDir } = deps;

  // 1–2. Key, file, full validation.
  const key = await deriveBackupKey(lnd);
  const backup = await loadBackup(fs, dataDir, network, key, deps.backupFile);
  const { payload } = backup;
  const warnings = [...backup.warnings];
  const a = payload.staticAddress!;

  // 3. Legacy address and client key.
  const legacyPrep = await prepareLegacy(a, lnd, network);

  // 4. Token store.
  const tokenPlan = await planTokenRestore(fs, dataDir, backup.tokenBytes);

  // Heights: the backup's, else the current one (asked at most once).
  let tip: number | undefined;
  const currentHeight = async () => tip ??= (await lnd.getInfo()).blockHeight;
  const legacyHeight = a.legacyFirstHeight > 0 ? a.legacyFirstHeight : await currentHeight();
  const legacyWanted: WantedAddress = {
    role: "legacy",
    heightFlexible: a.legacyFirstHeight <= 0,
    row: {
      clientPubkey: legacyPrep.clientPubkey,
      serverPubkey: legacyPrep.serverPubkey,
      expiry: a.expiry,
      clientKeyFamily: legacyPrep.keyLocator.family,
      clientKeyIndex: legacyPrep.keyLocator.index,
      pkScript: legacyPrep.address.pkScript,
      protocolVersion: a.protocolVersion,
      initiationHeight: legacyHeight,
    },
  };

  // 5. Database (read only; none yet ⇒ nothing stored).
  const readDb = await deps.existingDb();
  let rows: StaticAddressRow[] = [];
  if (readDb) rows = await listStaticAddresses(readDb);
  planAddressRows(rows, [legacyWanted]);

  // 6. One wallet snapshot, branch scan.
  let snapshot: Utxo[];
  try {
    snapshot = await lnd.listUnspent(0, 0);
  } catch (e) {
    throw new LoopkitError(
      e instanceof LoopkitError ? e.code : "lnd_rpc",
      `unable to list unspent outputs for multi-address recovery: ${messageOf(e)}`,
      e instanceof LoopkitError ? e.exitCode : ExitCode.Failure,
      { cause: e },
    );
  }
  const scanned = await scanBranches({
    families: [a.mainKeyFamily, a.changeKeyFamily],
    gap,
    walletPkScripts: new Set(snapshot.map((u) => hex(u.pkScript))),
    serverPubkey: legacyPrep.serverPubkey,
    csvExpiry: a.expiry,
    network,
    lnd,
  });
  if (snapshot.length === 0 && scanned.length > 0) {
    warnings.push(
      "The multi-address scan was skipped: lnd's wallet has no unspent outputs, so no receive/change " +
        "address can be found in it",
    );
  }
  const childWanted: (WantedAddress & { address: StaticAddress; keyLocator: KeyLocator })[] = [];
  for (const s of scanned) {
    for (const h of s.hits) {
      if (equalBytes(h.address.pkScript, legacyPrep.address.pkScript)) continue;
      childWanted.push({
        role: s.family === a.changeKeyFamily && s.family !== a.mainKeyFamily ? "change" : "receive",
        heightFlexible: true,
        address: h.address,
        keyLocator: h.keyLocator,
        row: {
          clientPubkey: h.clientPubkey,
          serverPubkey: legacyPrep.serverPubkey,
          expiry: a.expiry,
          clientKeyFamily: h.keyLocator.family,
          clientKeyIndex: h.keyLocator.index,
          pkScript: h.address.pkScript,
          protocolVersion: a.protocolVersion,
          initiationHeight: a.multiAddressFirstHeight > 0 ? a.multiAddressFirstHeight : await currentHeight(),
        },
      });
    }
  }
  const wanted: WantedAddress[] = [legacyWanted, ...childWanted];
  const actions = planAddressRows(rows, wanted);

  const legacy: RestoredAddress = {
    role: "legacy",
    keyLocator: legacyPrep.keyLocator,
    address: legacyPrep.address,
    row: legacyWanted.row,
    action: actions[0],
    imported: false,
  };
  const children: RestoredAddress[] = childWanted.map((c, i) => ({
    role: c.role,
    keyLocator: c.keyLocator,
    address: c.address,
    row: c.row,
    action: actions[i + 1],
    imported: false,
  }));
  const all = [legacy, ...children];
  const ourScripts = all.map((x) => x.address.pkScript);
  const firstHeight = a.legacyFirstHeight > 0
    ? a.legacyFirstHeight
    : a.multiAddressFirstHeight > 0
    ? a.multiAddressFirstHeight
    : null;
  const base = {
    backupFile: backup.path,
    tokenId: payload.l402TokenId,
    createdAtNs: payload.l402TokenCreatedAtNs,
    staticAddress: legacy.address.address,
    legacy,
    children,
    scanned,
    gap,
    firstHeight,
  };

  // 7. Dry run: the plan only.
  if (deps.dryRun) {
    const ours = filterOurUtxos(snapshot, ourScripts);
    let known = new Set<string>();
    if (readDb) {
      try {
        known = new Set((await listDeposits(readDb.client)).map(outpointOf));
      } catch (e) {
        throw dbError(e, "reading deposits");
      }
    }
    if (ours.length === 0) warnings.push(noRescanWarning(firstHeight));
    return {
      ...base,
      dryRun: true,
      restoredL402: tokenPlan.action === "write",
      restoredStaticAddress: all.some((x) => x.action === "create"),
      numDepositsFound: ours.filter((u) => !known.has(outpointOf(u))).length,
      depositSyncError: null,
      walletDeposits: ours.length,
      warnings,
    };
  }

  // 8. Writes: token, imports, rows; rollback on failure.
  let wroteToken = false;
  let createdDir: string | null = null;
  let db: Db;
  try {
    if (tokenPlan.action === "write") {
      if (await fs.ensureDir(dataDir, 0o700)) createdDir = dataDir;
      wroteToken = await publishToken(fs, dataDir, tokenPlan.path, backup.tokenBytes);
    }
    for (const x of all) {
      const r = await lnd.importTapscript(x.address.internalKeyXOnly, x.address.timeoutLeafScript);
      x.imported = r.imported;
    }
    db = await deps.openDb();
    const finalActions = await db.write(async (tx) => {
      const now = await listStaticAddresses(tx);
      const acts = planAddressRows(now, wanted);
      for (let i = 0; i < wanted.length; i++) {
        if (acts[i] === "create") await insertStaticAddress(tx, wanted[i].row);
      }
      return acts;
    }).catch((e) => {
      throw e instanceof LoopkitError ? e : dbError(e, "storing the restored static addresses");
    });
    finalActions.forEach((act, i) => all[i].action = act);
  } catch (err) {
    const rolled = wroteToken ? await rollbackToken(fs, tokenPlan.path, backup.tokenBytes) : [];
    if (createdDir !== null) {
      try {
        await fs.remove(createdDir); // not recursive: only an empty directory goes
      } catch { /* not empty (the database may be there): keep it */ }
    }
    const cause = err instanceof LoopkitError ? err : undefined;
    const exit = cause?.exitCode === ExitCode.TempFail ? ExitCode.TempFail : ExitCode.Failure;
    let msg = `unable to restore static address: ${messageOf(err)}`;
    if (rolled.length) {
      msg += ` (also failed to roll back restored token files: ${rolled.join("; ")})`;
    } else if (wroteToken) {
      msg += `; rolled back: removed "${tokenPlan.path}" written by this run, database unchanged`;
    } else {
      msg += "; nothing was written, database unchanged";
    }
    throw new LoopkitError(
      cause?.code === "restore_conflict" ? "restore_conflict" : "restore_failed",
      msg,
      exit,
      { cause: err },
    );
  }

  // 9. One deposit sync.
  let numDepositsFound = 0;
  let depositSyncError: string | null = null;
  let walletDeposits = filterOurUtxos(snapshot, ourScripts).length;
  try {
    const r = await deps.syncDeposits(db);
    numDepositsFound = r.changes.filter((c) => c.change === "created").length;
    walletDeposits = r.walletDeposits;
  } catch (e) {
    depositSyncError = messageOf(e);
  }
  if (walletDeposits === 0) warnings.push(noRescanWarning(firstHeight));
  return {
    ...base,
    dryRun: false,
    restoredL402: wroteToken,
    restoredStaticAddress: all.some((x) => x.action === "create" || x.imported),
    numDepositsFound,
    depositSyncError,
    walletDeposits,
    warnings,
  };
}

/** The warning for restored addresses without wallet-visible deposits (issue 4). */
export function noRescanWarning(firstHeight: number | null): string {
  const h = firstHeight ?? "<the address's creation height>";
  return "lnd's wallet shows no deposit to the restored static address(es). lnd does not rescan the chain " +
    "for imported scripts, so deposits confirmed before this import stay invisible to it. The backup's first " +
    `height is ${h}; recover each known deposit with: ` +
    `loopkit recover deposit --outpoint <txid:vout> --height-hint ${h}`;
}
