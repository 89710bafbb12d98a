/**
 * `loopkit recover`: rebuilds one generation (paid L402 token + static addresses) from its backup
 * (spec/backup-and-recovery.md §4.4–§4.9, §6.2–§6.6, §7.1; loopkit decisions 1 and 5).
 *
 * The whole plan is computed before anything is written (`restore_plan.ts`): backup resolved, decrypted
 * and fully validated; client key found; token-store and database conflicts checked; the receive/change
 * branches scanned against one wallet snapshot. Then, in order (`restore_apply.ts`): the token file is
 * published (no-clobber), the tapscripts are imported into lnd, and every new address row is inserted in
 * one database transaction. If any of these fails, the token file this run wrote is removed and the
 * database is untouched (`restore_rollback.ts`). Finally one deposit sync runs; its failure does not undo
 * the restore.
 *
 * Loop-ins (issue 9 F8): every swap recovery record (`loopin_swap_<hash>.enc`, core/loopin/swap_record.ts)
 * beside the backup and in the data directory whose swap the database lacks is imported in the same
 * transaction as the address rows — armed, in `UnlockDeposits`, its deposits linked or created `LoopingIn`
 * (core/loopin/swap_record_restore.ts) — so the next `loopin sync` checks the HTLC variants before anything is
 * released. An unusable record is a warning naming the file.
 *
 * @module
 */
import { dirname } from "node:path";
import { bytesToHex } from "@noble/hashes/utils.js";
import { equalBytes } from "@noble/curves/utils.js";
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
import type { NetworkName } from "../staticaddr/network.ts";
import type { StaticAddress } from "../staticaddr/script.ts";
import { deriveBackupKey } from "./envelope.ts";
import {
  type BranchScan,
  checkKeyScanLimit,
  checkScanGap,
  DEFAULT_CLIENT_KEY_SCAN_LIMIT,
  DEFAULT_MULTI_ADDRESS_SCAN_GAP,
  LEGACY_CLIENT_KEY_SCAN_LIMIT,
  scanBranches,
} from "./scan.ts";
import {
  type AddressRole,
  loadBackup,
  messageOf,
  planAddressRows,
  planTokenRestore,
  prepareLegacy,
  type WantedAddress,
} from "./restore_plan.ts";
import { denoRestoreFs, publishToken, type RestoreFs } from "./restore_apply.ts";
import { rollBackWrites } from "./restore_rollback.ts";
import { removeStaleTempFiles } from "../fs/temp_files.ts";
import { interruptible, throwIfInterrupted, withRollback } from "../interrupt.ts";
import { readSwapRecordDir } from "../loopin/swap_record_file.ts";
import type { LoopInSwapRecord } from "../loopin/swap_record.ts";
import { importSwapRecord, type SwapImport } from "../loopin/swap_record_restore.ts";

export * from "./restore_plan.ts";
export * from "./restore_apply.ts";
export * from "./restore_rollback.ts";

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
  /** Highest client-key index searched (`--key-scan-limit`, default {@linkcode DEFAULT_CLIENT_KEY_SCAN_LIMIT}). */
  keyScanLimit?: number;
  /** Compute and return the plan, write nothing (no token file, no import, no row, no sync). */
  dryRun?: boolean;
  /** File-system operations (default real). */
  fs?: RestoreFs;
}

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
  /**
   * Loop-in swap recovery records found (core/loopin/swap_record.ts), one per swap: `imported` (dry run: would
   * be), `existing` (the database has the swap), `skipped` (see `reason`).
   */
  swaps: SwapImport[];
  /** Human warnings (skipped invalid backups, lnd does not rescan, empty wallet). */
  warnings: string[];
}

/**
 * The usable swap recovery records in `dirs` (the backup's directory, then the data directory), one per swap
 * hash (the first wins); each unusable file is a warning naming it.
 */
async function loadSwapRecords(
  fs: RestoreFs,
  dirs: string[],
  key: Uint8Array,
  network: NetworkName,
  warnings: string[],
): Promise<{ path: string; record: LoopInSwapRecord }[]> {
  const out: { path: string; record: LoopInSwapRecord }[] = [];
  const seen = new Set<string>();
  for (const dir of [...new Set(dirs)]) {
    let files;
    try {
      files = await readSwapRecordDir(dir, key, network, fs);
    } catch (e) {
      warnings.push(`cannot list "${dir}" for loop-in swap recovery records: ${messageOf(e)}`);
      continue;
    }
    for (const f of files) {
      if (!f.ok) {
        warnings.push(
          `${f.error.message}; that loop-in is NOT restored (keep the file; run recover again with a good copy)`,
        );
        continue;
      }
      if (seen.has(f.swapHashHex)) continue;
      seen.add(f.swapHashHex);
      out.push({ path: f.path, record: f.record });
    }
  }
  return out;
}

/**
 * Dry run: what the import would do, read-only — `existing` when the database has the swap, `skipped` when
 * the record's static address is neither stored nor restored by this plan (the check `importSwapRecord` makes),
 * else `imported` (a deposit another live swap holds is linked as released: both swaps stay watched).
 */
async function planSwapImports(
  db: Db | null,
  records: { path: string; record: LoopInSwapRecord }[],
  plannedScripts: Uint8Array[],
): Promise<SwapImport[]> {
  const out: SwapImport[] = [];
  const one = async (sql: string, args: (Uint8Array | number)[]) => {
    if (!db) return null;
    try {
      return (await db.client.execute({ sql, args })).rows[0] ?? null;
    } catch (e) {
      throw dbError(e, "reading loop-ins");
    }
  };
  for (const { path, record } of records) {
    const base = { swapHashHex: bytesToHex(record.swapHash), path };
    if (await one("SELECT 1 FROM loopin_swaps WHERE swap_hash = ?", [record.swapHash])) {
      out.push({ ...base, action: "existing" });
      continue;
    }
    const script = record.staticAddress.pkScript;
    if (!plannedScripts.some((p) => equalBytes(p, script))) {
      out.push({
        ...base,
        action: "skipped",
        reason: `its static address (pkScript ${bytesToHex(script)}) is not in the database`,
      });
      continue;
    }
    out.push({ ...base, action: "imported" });
  }
  return out;
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
 * 3. prepare the legacy address: Loop's checks, client key by `DeriveKey(42060, 0..keyScanLimit)`
 *    pipelined — exit 3; an index past Loop's 20 is warned about;
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
  const keyScanLimit = deps.keyScanLimit ?? DEFAULT_CLIENT_KEY_SCAN_LIMIT;
  checkKeyScanLimit(keyScanLimit);
  const { lnd, network, dataDir } = deps;

  // 1–2. Key, file, full validation.
  const key = await deriveBackupKey(lnd);
  const backup = await loadBackup(fs, dataDir, network, key, deps.backupFile);
  const { payload } = backup;
  const warnings = [...backup.warnings];
  const a = payload.staticAddress!;
  const swapRecords = await loadSwapRecords(fs, [dirname(backup.path), dataDir], key, network, warnings);

  // 3. Legacy address and client key.
  const legacyPrep = await prepareLegacy(a, lnd, network, keyScanLimit);
  if (legacyPrep.keyLocator.index > LEGACY_CLIENT_KEY_SCAN_LIMIT) {
    warnings.push(pastLoopWindowWarning(legacyPrep.keyLocator));
  }

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
    walletPkScripts: new Set(snapshot.map((u) => bytesToHex(u.pkScript))),
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
      swaps: await planSwapImports(readDb, swapRecords, [...ourScripts, ...rows.map((x) => x.pkScript)]),
      warnings,
    };
  }

  // 8. Writes: token, imports, rows; rollback on failure.
  // A run killed with -9 may have left a temp copy of the token here: remove it (under the dir lock).
  for (const p of await removeStaleTempFiles(dataDir, fs).catch(() => [] as string[])) {
    warnings.push(`removed a stale temporary file left by an interrupted run: "${p}"`);
  }
  let wroteToken = false;
  let createdDir: string | null = null;
  let swaps: SwapImport[] = [];
  // A rollback section: SIGINT/SIGTERM aborts the waits below and runs the same rollback as a failure
  // before the command exits 130 (core/interrupt.ts).
  const db: Db = await withRollback(async () => {
    try {
      throwIfInterrupted();
      if (tokenPlan.action === "write") {
        if (await fs.ensureDir(dataDir, 0o700)) createdDir = dataDir;
        wroteToken = await publishToken(fs, dataDir, tokenPlan.path, backup.tokenBytes);
      }
      for (const x of all) {
        throwIfInterrupted();
        const r = await interruptible(
          lnd.importTapscript(x.address.internalKeyXOnly, x.address.timeoutLeafScript),
        );
        x.imported = r.imported;
      }
      const db = await interruptible(deps.openDb());
      // Last chance to stop; the transaction itself is not abandoned half-way.
      throwIfInterrupted();
      const finalActions = await db.write(async (tx) => {
        const now = await listStaticAddresses(tx);
        const acts = planAddressRows(now, wanted);
        for (let i = 0; i < wanted.length; i++) {
          if (acts[i] === "create") await insertStaticAddress(tx, wanted[i].row);
        }
        // Loop-ins the database lacks, armed, in the same transaction (issue 9 F8).
        const at = new Date();
        const imported: SwapImport[] = [];
        for (const r of swapRecords) imported.push(await importSwapRecord(tx, r.record, r.path, at));
        swaps = imported;
        return acts;
      }).catch((e) => {
        throw e instanceof LoopkitError
          ? e
          : dbError(e, "storing the restored static addresses and loop-ins");
      });
      finalActions.forEach((act, i) => all[i].action = act);
      return db;
    } catch (err) {
      throw await rollBackWrites(fs, err, {
        wroteToken,
        tokenPath: tokenPlan.path,
        tokenBytes: backup.tokenBytes,
        createdDir,
      });
    }
  }, "the restore is complete (token, imports and address rows in place); run `loopkit deposits sync`");

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
  for (const s of swaps) {
    if (s.action === "skipped") {
      warnings.push(`loop-in ${s.swapHashHex} from "${s.path}" was NOT restored: ${s.reason}`);
    }
  }
  if (swaps.some((s) => s.action === "imported")) {
    warnings.push(
      "restored loop-in(s) are armed in UnlockDeposits: run `loopkit loopin sync` now (it looks for their HTLC " +
        "transactions, cancels or settles the invoice, and sweeps an HTLC back after its CLTV)",
    );
  }
  return {
    ...base,
    dryRun: false,
    swaps,
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

/**
 * The warning for a client key index past Loop's restore window (spec §0 `backupKeyScanLimit`): loopkit
 * finds it, Loop's own restore would not.
 */
export function pastLoopWindowWarning(loc: KeyLocator): string {
  return `the static address's client key is lnd's key ${loc.family}/${loc.index}, past index ` +
    `${LEGACY_CLIENT_KEY_SCAN_LIMIT}: Loop's own restore searches ${loc.family}/0..${LEGACY_CLIENT_KEY_SCAN_LIMIT} ` +
    `only and would not find it; restore this backup with loopkit (recover --key-scan-limit ≥ ${loc.index})`;
}
