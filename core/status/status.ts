/**
 * `loopkit status`: the one-glance health check for people and monitoring (issue "Running it for years",
 * item 1). Read-only: it opens no database that does not exist, writes no file, and asks lnd only read-only
 * questions (GetInfo, and one DeriveSharedKey to decrypt the backup like `backup verify`).
 *
 * Every finding is a {@linkcode Concern} with a level: `ok`, `attention` (something needs a person: exit 1)
 * or `unknown` (loopkit could not tell, e.g. lnd is down: exit 75). README.md in this directory documents the
 * JSON fields and the exit codes.
 *
 * @module
 */
import { listLoopIns } from "../loopin/view.ts";
import { basename, join } from "node:path";
import type { LndClient, LndInfo } from "../../lnd/types.ts";
import type { Db } from "../db/db.ts";
import { dbError } from "../db/db.ts";
import { listStaticAddresses, type StaticAddressRow } from "../db/static_addresses.ts";
import { listDeposits } from "../deposits/store.ts";
import { type Deposit, DEPOSIT_STATES, outpointOf } from "../deposits/types.ts";
import { blocksUntilExpiry, EXPIRY_SWEEP_CONFS } from "../deposits/sweep.ts";
import { deriveBackupKey } from "../backup/envelope.ts";
import { backupFileName } from "../backup/file_name.ts";
import { inspectBackupFile } from "../backup/inspect.ts";
import { PAID_TOKEN_FILE_NAME, parseTokenFile, PENDING_TOKEN_FILE_NAME } from "../l402/token_file.ts";
import { addressOfRow } from "../staticaddr/new_address.ts";
import type { NetworkName } from "../staticaddr/network.ts";
import { ExitCode, exitCodeOf, type ExitCodeValue } from "../errors.ts";
import { equalBytes } from "@noble/curves/utils.js";

/** Default `--warn-expiry-blocks`: a deposit this close to its CSV expiry needs a person (about a week). */
export const DEFAULT_WARN_EXPIRY_BLOCKS = 1_000;

/**
 * Default `--warn-sweep-blocks`: an expiry sweep still not final this many blocks after the deposit's expiry
 * height plus its {@linkcode EXPIRY_SWEEP_CONFS} confirmations is "not confirming" (about two hours).
 */
export const DEFAULT_WARN_SWEEP_BLOCKS = 12;

/** A temporary file older than this (ms) is stale: no live loopkit writer holds one this long. */
export const STALE_TEMP_MS = 10 * 60 * 1000;

/** What one check found. */
export type ConcernLevel = "ok" | "attention" | "unknown";

/** One line of the report. */
export interface Concern {
  /** `lnd`, `static_address`, `deposits`, `expiry`, `sweeps`, `loopins`, `backup`, `copy`, `temp_files`. */
  check: string;
  level: ConcernLevel;
  /** One human line. */
  message: string;
}

/** What {@linkcode collectStatus} needs. */
export interface StatusDeps {
  network: NetworkName;
  /** The network data directory (`<loopdir>/<network>`). */
  dataDir: string;
  /** The database when it exists, else null (never created here). */
  db(): Promise<Db | null>;
  /** Connects to lnd (checks its network); absent with `--offline`. */
  lnd?: () => Promise<{ lnd: Pick<LndClient, "deriveSharedKey">; info: LndInfo }>;
  /** `--copy-to` directories whose copy of the backup is checked. */
  copyTo?: string[];
  /** `--warn-expiry-blocks` (default {@linkcode DEFAULT_WARN_EXPIRY_BLOCKS}). */
  warnExpiryBlocks?: number;
  /** `--warn-sweep-blocks` (default {@linkcode DEFAULT_WARN_SWEEP_BLOCKS}). */
  warnSweepBlocks?: number;
  /** Clock (stale temporary files). */
  now?: () => Date;
}

/** One deposit state's count and value. */
export interface StateTotal {
  state: string;
  count: number;
  valueSat: bigint;
}

/** A pending expiry sweep. */
export interface PendingSweep {
  outpoint: string;
  state: string;
  txid: string | null;
  /** C + E: the height from which the sweep is valid. */
  expiryHeight: number;
  /** Blocks since the expiry height (tip − (C + E)); undefined without a tip. */
  blocksSinceExpiry?: number;
  /** True when the sweep is later than expected ({@linkcode DEFAULT_WARN_SWEEP_BLOCKS}). */
  late: boolean;
}

/** The nearest expiry among deposits that still have to be swept or used. */
export interface NearestExpiry {
  outpoint: string;
  state: string;
  valueSat: bigint;
  expiryHeight: number;
  /** C + E − tip (0 or negative: expired, the next sync sweeps it); null without a tip (offline). */
  blocksUntilExpiry: number | null;
}

/** The backup of the current generation. */
export interface BackupStatus {
  /** Why no backup is expected or what was found: `ok`, `missing`, `invalid`, `not_verified`, `no_token`, … */
  status: string;
  /** The expected file (`<datadir>/L402_backup_<created_at_ns>_<token_id>.enc`), when a paid token exists. */
  path?: string;
  tokenId?: string;
  createdAtNs?: bigint;
  /** `backup verify`'s reason for the file (`ok`, `undecryptable`, …), when it was verified. */
  verify?: string;
  message?: string;
}

/** One `--copy-to` directory's copy. */
export interface CopyStatus {
  dir: string;
  path: string;
  /** `ok` (same bytes as the primary, or verified), `missing`, `invalid`, `not_verified`, `unreadable`. */
  status: string;
  message?: string;
}

/** A stale temporary file. */
export interface TempFile {
  path: string;
  ageSeconds: number;
}

/** Everything `loopkit status` found. */
export interface StatusReport {
  network: string;
  dataDir: string;
  offline: boolean;
  lnd: {
    reachable: boolean | null;
    version?: string;
    identityPubkey?: string;
    blockHeight?: number;
    syncedToChain?: boolean;
    error?: { code: string; message: string; exitCode: ExitCodeValue };
  };
  staticAddress: { address: string; csvExpiry: number; pkScript: Uint8Array } | null;
  /** Number of static-address rows (legacy and children). */
  staticAddresses: number;
  deposits: {
    total: number;
    byState: StateTotal[];
    /** Confirmed `Deposited` deposits the wallet does not list. */
    notInWallet: number;
    nearestExpiry: NearestExpiry | null;
    /** Deposits within `warnExpiryBlocks` of expiry (or past it). */
    nearExpiry: number;
  };
  warnExpiryBlocks: number;
  sweeps: PendingSweep[];
  /**
   * The loop-ins: rows of `loopin_swaps` by state, and every pending or still watched swap with what it waits
   * for (core/loopin/view.ts); null when the table does not exist (a database older than the loop-in).
   */
  loopins: {
    total: number;
    byState: { state: string; count: number }[];
    active: { swapHash: string; state: string; waitingFor: string }[];
  } | null;
  backup: BackupStatus;
  copies: CopyStatus[];
  tempFiles: TempFile[];
  concerns: Concern[];
  /** `ok`, `attention` or `unknown`: the worst level of {@linkcode concerns}. */
  overall: ConcernLevel;
  exitCode: ExitCodeValue;
}

/** States whose expiry still matters (the deposit has not been swept or spent). */
const EXPIRY_WATCHED = new Set(["Deposited", "LoopingIn"]);
const SWEEPING = new Set(["PublishExpirySweep", "WaitForExpirySweep"]);

/**
 * The exit code of a report (README "Exit codes", Nagios-style): 1 when any concern needs attention, else 75
 * when something could not be told (lnd down), else 0. A known problem outranks an unknown.
 */
export function statusExitCode(concerns: readonly Concern[]): ExitCodeValue {
  if (concerns.some((c) => c.level === "attention")) return ExitCode.Failure;
  if (concerns.some((c) => c.level === "unknown")) return ExitCode.TempFail;
  return ExitCode.Ok;
}

function overallOf(concerns: readonly Concern[]): ConcernLevel {
  const code = statusExitCode(concerns);
  return code === ExitCode.Ok ? "ok" : code === ExitCode.Failure ? "attention" : "unknown";
}

async function readOrNull(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** `loopin_swaps` rows by state, or null when the table does not exist (the loop-in is another branch). */
async function loopinCounts(db: Db): Promise<StatusReport["loopins"]> {
  const t = await db.client.execute(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'loopin_swaps'",
  );
  if (!t.rows.length) return null;
  const cols = await db.client.execute("PRAGMA table_info(loopin_swaps)");
  const hasState = cols.rows.some((r) => String(r.name) === "state");
  if (!hasState) {
    const n = await db.client.execute("SELECT count(*) AS n FROM loopin_swaps");
    return { total: Number(n.rows[0].n), byState: [], active: [] };
  }
  const rs = await db.client.execute(
    "SELECT state, count(*) AS n FROM loopin_swaps GROUP BY state ORDER BY state",
  );
  const byState = rs.rows.map((r) => ({ state: String(r.state), count: Number(r.n) }));
  const active = (await listLoopIns(db)).filter((v) => v.pending || v.watched).map((v) => ({
    swapHash: v.swap.swapHashHex,
    state: v.swap.state,
    waitingFor: v.waitingFor,
  }));
  return { total: byState.reduce((a, b) => a + b.count, 0), byState, active };
}

/** Stale temporary files loopkit may leave after a crash: `.loopkit-*.tmp` and `<file>.tmp` in `dir`. */
async function staleTempFiles(dir: string, now: Date): Promise<TempFile[]> {
  const out: TempFile[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !e.name.endsWith(".tmp")) continue;
      if (
        !e.name.startsWith(".loopkit-") && !e.name.startsWith("L402_backup_") && !e.name.startsWith("l402.")
      ) {
        continue;
      }
      const path = join(dir, e.name);
      const st = await Deno.stat(path).catch(() => null);
      const age = st?.mtime ? now.getTime() - st.mtime.getTime() : 0;
      if (age >= STALE_TEMP_MS) out.push({ path, ageSeconds: Math.floor(age / 1000) });
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out.sort((a, b) => a.path < b.path ? -1 : 1);
}

/**
 * Collects the whole report (module doc). Never throws for what it checks: lnd failures become `unknown`,
 * problems become `attention`; only a database that cannot be read at all throws (`db_busy` exit 75,
 * `db_corrupt` exit 1).
 */
export async function collectStatus(deps: StatusDeps): Promise<StatusReport> {
  const now = deps.now ?? (() => new Date());
  const warnExpiryBlocks = deps.warnExpiryBlocks ?? DEFAULT_WARN_EXPIRY_BLOCKS;
  const warnSweepBlocks = deps.warnSweepBlocks ?? DEFAULT_WARN_SWEEP_BLOCKS;
  const concerns: Concern[] = [];
  const add = (check: string, level: ConcernLevel, message: string) =>
    concerns.push({ check, level, message });
  const report: StatusReport = {
    network: deps.network,
    dataDir: deps.dataDir,
    offline: !deps.lnd,
    lnd: { reachable: null },
    staticAddress: null,
    staticAddresses: 0,
    deposits: { total: 0, byState: [], notInWallet: 0, nearestExpiry: null, nearExpiry: 0 },
    warnExpiryBlocks,
    sweeps: [],
    loopins: null,
    backup: { status: "no_token" },
    copies: [],
    tempFiles: [],
    concerns,
    overall: "ok",
    exitCode: ExitCode.Ok,
  };

  // lnd: reachable, on the right network (connectLnd checks it), synced.
  let lnd: Pick<LndClient, "deriveSharedKey"> | undefined;
  let tip: number | undefined;
  if (deps.lnd) {
    try {
      const c = await deps.lnd();
      lnd = c.lnd;
      tip = c.info.blockHeight;
      report.lnd = {
        reachable: true,
        version: c.info.version,
        identityPubkey: c.info.identityPubkey,
        blockHeight: c.info.blockHeight,
        syncedToChain: c.info.syncedToChain,
      };
      if (c.info.syncedToChain) {
        add("lnd", "ok", `lnd ${c.info.version} on ${deps.network}, synced, tip ${c.info.blockHeight}`);
      } else {
        add(
          "lnd",
          "attention",
          `lnd ${c.info.version} on ${deps.network} is not synced to the chain (tip ${c.info.blockHeight})`,
        );
      }
    } catch (err) {
      const exitCode = exitCodeOf(err);
      const code = (err as { code?: unknown }).code;
      report.lnd = {
        reachable: false,
        error: {
          code: typeof code === "string" ? code : "lnd_error",
          message: (err as Error).message ?? String(err),
          exitCode,
        },
      };
      // Unreachable: cannot tell. Reachable but wrong (network, certificate, macaroon): a person must act.
      add("lnd", exitCode === ExitCode.TempFail ? "unknown" : "attention", `lnd: ${(err as Error).message}`);
    }
  } else {
    add("lnd", "ok", "lnd not asked (--offline)");
  }

  // The database: address, deposits, sweeps, loop-ins.
  const db = await deps.db();
  let addresses: StaticAddressRow[] = [];
  let deposits: Deposit[] = [];
  if (db) {
    try {
      addresses = await listStaticAddresses(db);
      deposits = await listDeposits(db.client);
      report.loopins = await loopinCounts(db);
    } catch (err) {
      throw dbError(err, "reading the database for status");
    }
  }
  report.staticAddresses = addresses.length;
  if (!db) {
    add(
      "static_address",
      "attention",
      `no loopkit database in ${deps.dataDir} (run "loopkit address new" or "loopkit recover")`,
    );
  } else if (!addresses.length) {
    add(
      "static_address",
      "attention",
      `no static address in the database (run "loopkit address new" or "loopkit recover")`,
    );
  } else {
    const legacy = addresses[0];
    const a = addressOfRow(legacy, deps.network);
    report.staticAddress = { address: a.address, csvExpiry: legacy.expiry, pkScript: legacy.pkScript };
    const more = addresses.length > 1 ? ` (+${addresses.length - 1} child address(es))` : "";
    add("static_address", "ok", `static address ${a.address}, CSV expiry ${legacy.expiry} blocks${more}`);
  }

  const expiryOf = (d: Deposit) => addresses.find((a) => equalBytes(a.pkScript, d.pkScript))?.expiry;
  const byState = new Map<string, StateTotal>();
  for (const d of deposits) {
    const t = byState.get(d.state) ?? { state: d.state, count: 0, valueSat: 0n };
    t.count++;
    t.valueSat += d.amountSat;
    byState.set(d.state, t);
    if (d.state === "Deposited" && d.confirmationHeight > 0 && !d.walletVisible) {
      report.deposits.notInWallet++;
    }
  }
  report.deposits.total = deposits.length;
  report.deposits.byState = DEPOSIT_STATES.filter((s) => byState.has(s)).map((s) => byState.get(s)!);
  if (db && addresses.length) {
    const summary = report.deposits.byState.map((s) => `${s.state} ${s.count} (${s.valueSat} sat)`).join(
      ", ",
    );
    const unlisted = report.deposits.notInWallet
      ? `; ${report.deposits.notInWallet} not in lnd's wallet`
      : "";
    add("deposits", "ok", deposits.length ? `deposits: ${summary}${unlisted}` : "no deposits");
  }

  // Expiry: the nearest among deposits still to be swept or used; a warning within warnExpiryBlocks.
  const watched = deposits.filter((d) =>
    EXPIRY_WATCHED.has(d.state) && d.confirmationHeight > 0 && expiryOf(d) !== undefined
  );
  if (watched.length) {
    const withHeight = watched.map((d) => ({ d, expiryHeight: d.confirmationHeight + expiryOf(d)! }))
      .sort((a, b) => a.expiryHeight - b.expiryHeight);
    const first = withHeight[0];
    if (tip === undefined) {
      add(
        "expiry",
        deps.lnd ? "unknown" : "ok",
        `nearest expiry: ${outpointOf(first.d)} at height ${first.expiryHeight} (tip unknown${
          deps.lnd ? "" : ", --offline"
        })`,
      );
      report.deposits.nearestExpiry = {
        outpoint: outpointOf(first.d),
        state: first.d.state,
        valueSat: first.d.amountSat,
        expiryHeight: first.expiryHeight,
        blocksUntilExpiry: null,
      };
    } else {
      const left = blocksUntilExpiry(first.d.confirmationHeight, expiryOf(first.d)!, tip);
      report.deposits.nearestExpiry = {
        outpoint: outpointOf(first.d),
        state: first.d.state,
        valueSat: first.d.amountSat,
        expiryHeight: first.expiryHeight,
        blocksUntilExpiry: left,
      };
      const near = withHeight.filter((x) => x.expiryHeight - tip <= warnExpiryBlocks);
      report.deposits.nearExpiry = near.length;
      if (near.length) {
        add(
          "expiry",
          "attention",
          `${near.length} deposit(s) within ${warnExpiryBlocks} blocks of expiry: ${outpointOf(first.d)} ` +
            `(${first.d.amountSat} sat, ${first.d.state}) ${
              left > 0 ? `expires in ${left} blocks` : `expired ${-left} blocks ago`
            } ` +
            `at height ${first.expiryHeight}; loop it in or let "deposits sync" sweep it at expiry`,
        );
      } else {
        add(
          "expiry",
          "ok",
          `nearest expiry in ${left} blocks (${outpointOf(first.d)}, height ${first.expiryHeight})`,
        );
      }
    }
  }

  // Pending expiry sweeps: late when not final warnSweepBlocks after C + E + 3.
  for (const d of deposits.filter((x) => SWEEPING.has(x.state))) {
    const e = expiryOf(d);
    const expiryHeight = d.confirmationHeight + (e ?? 0);
    const since = tip === undefined ? undefined : tip - expiryHeight;
    const late = since !== undefined && since > EXPIRY_SWEEP_CONFS + warnSweepBlocks;
    report.sweeps.push({
      outpoint: outpointOf(d),
      state: d.state,
      txid: d.expirySweepTxid,
      expiryHeight,
      blocksSinceExpiry: since,
      late,
    });
    add(
      "sweeps",
      late ? "attention" : "ok",
      late
        ? `expiry sweep ${d.expirySweepTxid} of ${
          outpointOf(d)
        } not confirming ${since} blocks after expiry: ` +
          `run "deposits sync", check lnd's mempool; fee-bump it with CPFP on its output`
        : `expiry sweep ${d.expirySweepTxid ?? "(not stored)"} of ${outpointOf(d)} pending (${d.state}${
          since === undefined ? "" : `, ${since} blocks after expiry`
        })`,
    );
  }

  if (report.loopins) {
    const s = report.loopins.byState.map((x) => `${x.state} ${x.count}`).join(", ");
    add("loopins", "ok", `loop-ins: ${report.loopins.total}${s ? ` (${s})` : ""}`);
    for (const a of report.loopins.active) {
      add("loopins", "ok", `loop-in ${a.swapHash} ${a.state}: ${a.waitingFor}`);
    }
  }

  // The backup of the current generation (the paid l402.token), verified like `backup verify` through lnd.
  await checkBackup(deps, report, lnd, add);

  // Stale temporary files.
  report.tempFiles = await staleTempFiles(deps.dataDir, now());
  for (const f of report.tempFiles) {
    add(
      "temp_files",
      "attention",
      `stale temporary file ${f.path} (${f.ageSeconds} s old): left by an interrupted write; remove it`,
    );
  }

  report.overall = overallOf(concerns);
  report.exitCode = statusExitCode(concerns);
  return report;
}

async function checkBackup(
  deps: StatusDeps,
  report: StatusReport,
  lnd: Pick<LndClient, "deriveSharedKey"> | undefined,
  add: (check: string, level: ConcernLevel, message: string) => void,
): Promise<void> {
  const tokenPath = join(deps.dataDir, PAID_TOKEN_FILE_NAME);
  let tokenBytes: Uint8Array | null;
  try {
    tokenBytes = await readOrNull(tokenPath);
  } catch (err) {
    report.backup = { status: "token_unreadable", message: (err as Error).message };
    add("backup", "attention", `cannot read ${tokenPath}: ${(err as Error).message}`);
    return;
  }
  if (tokenBytes === null) {
    const pending = await readOrNull(join(deps.dataDir, PENDING_TOKEN_FILE_NAME)).catch(() => null);
    report.backup = { status: pending ? "pending_only" : "no_token" };
    // With a static address there must be a paid token (and so a backup); without one nothing is at stake.
    add(
      "backup",
      report.staticAddress ? "attention" : "ok",
      pending
        ? `only a pending L402 token (${PENDING_TOKEN_FILE_NAME}): no backup yet`
        : report.staticAddress
        ? `no ${PAID_TOKEN_FILE_NAME} in ${deps.dataDir} but a static address exists: no backup can be written`
        : "no L402 token yet: no backup expected",
    );
    return;
  }
  let token;
  try {
    token = parseTokenFile(tokenBytes);
  } catch (err) {
    report.backup = { status: "token_invalid", message: (err as Error).message };
    add("backup", "attention", `${tokenPath} does not parse: ${(err as Error).message}`);
    return;
  }
  if (!token.paid) {
    report.backup = { status: "token_unpaid", tokenId: token.tokenId };
    add(
      "backup",
      report.staticAddress ? "attention" : "ok",
      `the L402 token ${token.tokenId} is not paid: no backup`,
    );
    return;
  }
  const path = join(deps.dataDir, backupFileName(token.createdAtNs, token.tokenId));
  const ids = { path, tokenId: token.tokenId, createdAtNs: token.createdAtNs };
  const bytes = await readOrNull(path).catch(() => undefined);
  if (bytes === null) {
    report.backup = { status: "missing", ...ids };
    add(
      "backup",
      "attention",
      `no backup of the current generation: ${path} is missing (run "loopkit backup write")`,
    );
  } else if (!lnd) {
    report.backup = { status: "not_verified", ...ids };
    add(
      "backup",
      deps.lnd ? "unknown" : "ok",
      `backup ${path} present, not verified (${deps.lnd ? "lnd unreachable" : "--offline"})`,
    );
  } else {
    let key: Uint8Array | undefined;
    try {
      key = await deriveBackupKey(lnd);
    } catch (err) {
      report.backup = { status: "not_verified", ...ids, message: (err as Error).message };
      add(
        "backup",
        exitCodeOf(err) === ExitCode.TempFail ? "unknown" : "attention",
        `backup ${path} not verified: ${(err as Error).message}`,
      );
    }
    if (key) {
      const r = await inspectBackupFile(path, key, deps.network);
      report.backup = {
        status: r.reason === "ok" ? "ok" : "invalid",
        ...ids,
        verify: r.reason,
        message: r.message,
      };
      add(
        "backup",
        r.reason === "ok" ? "ok" : "attention",
        r.reason === "ok" ? `backup ${path} verified` : `backup ${path} INVALID (${r.reason}): ${r.message}`,
      );
      for (const dir of deps.copyTo ?? []) {
        report.copies.push(
          await checkCopy(dir, path, r.reason === "ok" ? bytes ?? null : null, key, deps.network),
        );
      }
    }
  }
  if (!report.copies.length) {
    for (const dir of deps.copyTo ?? []) {
      report.copies.push(await checkCopy(dir, path, null, undefined, deps.network));
    }
  }
  for (const c of report.copies) {
    const level: ConcernLevel = c.status === "ok"
      ? "ok"
      : c.status === "not_verified"
      ? (deps.lnd ? "unknown" : "ok")
      : "attention";
    add(
      "copy",
      level,
      c.status === "ok"
        ? `off-site copy ${c.path} ok`
        : `off-site copy ${c.path}: ${c.status}${c.message ? ` (${c.message})` : ""}`,
    );
  }
}

/**
 * One `--copy-to` copy: the same bytes as the verified primary are ok; other bytes are verified on their own.
 * @param verifiedPrimary the primary's bytes when they verified, else null
 */
async function checkCopy(
  dir: string,
  primaryPath: string,
  verifiedPrimary: Uint8Array | null,
  key: Uint8Array | undefined,
  network: string,
): Promise<CopyStatus> {
  const path = join(dir, basename(primaryPath));
  let bytes: Uint8Array | null;
  try {
    bytes = await readOrNull(path);
  } catch (err) {
    return { dir, path, status: "unreadable", message: (err as Error).message };
  }
  if (bytes === null) {
    return { dir, path, status: "missing", message: `run "loopkit backup write --copy-to ${dir}"` };
  }
  if (!key) return { dir, path, status: "not_verified" };
  if (verifiedPrimary && equalBytes(verifiedPrimary, bytes)) return { dir, path, status: "ok" };
  const r = await inspectBackupFile(path, key, network);
  return r.reason === "ok"
    ? { dir, path, status: "ok" }
    : { dir, path, status: "invalid", message: `${r.reason}: ${r.message}` };
}
