/**
 * `loopkit recover` and `loopkit recover deposit`.
 *
 * Exit codes: 0 restored or already restored; 2 bad flag; 3 backup invalid or undecryptable; 1 refused
 * conflict, or a failure after which everything this run wrote was removed; 4 restored but the deposit
 * sync failed; 75 lnd or the database temporarily unavailable.
 *
 * @module
 */
import type { Command } from "commander";
import type { Db } from "../core/db/db.ts";
import { syncDeposits } from "../core/deposits/sync.ts";
import { recover, type RecoverResult, type RestoredAddress } from "../core/backup/restore.ts";
import {
  type BranchScan,
  DEFAULT_CLIENT_KEY_SCAN_LIMIT,
  LEGACY_CLIENT_KEY_SCAN_LIMIT,
  MAX_CLIENT_KEY_SCAN_LIMIT,
} from "../core/backup/scan.ts";
import {
  DEFAULT_RECOVER_DEPOSIT_SPEND_WAIT_MS,
  DEFAULT_RECOVER_DEPOSIT_WAIT_MS,
  parseRecoverDepositRequest,
  recoverDeposit,
  type RecoverDepositResult,
  RECOVERY_SCAN_LIMIT,
} from "../core/deposits/recover_deposit.ts";
import { ExitCode, usageError } from "../core/errors.ts";
import { action, type Context } from "./context.ts";
import { out, toHex, toJson } from "./output.ts";
import { syncLnd } from "./lnd_adapters.ts";

/** Path of a `file:` database URL, or null for other URLs (remote, `:memory:`). */
export function dbFilePath(url: string): string | null {
  if (!url.startsWith("file:")) return null;
  let p = url.slice("file:".length);
  if (p.startsWith("//")) p = p.slice(2);
  const q = p.indexOf("?");
  return q >= 0 ? p.slice(0, q) : p;
}

/** The database if it exists, without creating one (a dry run or a refused run leaves no file). */
async function existingDb(ctx: Context): Promise<Db | null> {
  const path = dbFilePath(ctx.config.dbUrl);
  if (path !== null) {
    try {
      await Deno.lstat(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
  }
  return await ctx.db();
}

function parseCount(flag: string, value: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw usageError(`Invalid ${flag} "${value}": expected an integer from ${min} to ${max}`);
  }
  return Number(value);
}

const BRANCH_NAMES: Record<string, string> = { legacy: "legacy", receive: "receive", change: "change" };

function branchOf(r: RecoverResult, s: BranchScan): string {
  const a = [r.legacy, ...r.children].find((c) => c.keyLocator.family === s.family);
  if (a) return BRANCH_NAMES[a.role];
  return s.family === 42062 ? "change" : "receive";
}

function restored(a: RestoredAddress): boolean {
  return a.action === "create" || a.imported;
}

/** JSON of `recover` (issue 4's fields, snake_case; `dry_run` added). */
export function recoverJson(r: RecoverResult) {
  return {
    backup_file: r.backupFile,
    dry_run: r.dryRun,
    restored_l402: r.restoredL402,
    restored_static_address: r.restoredStaticAddress,
    static_address: r.staticAddress,
    client_key_family: r.legacy.keyLocator.family,
    client_key_index: r.legacy.keyLocator.index,
    scanned: r.scanned.map((s) => ({
      branch: branchOf(r, s),
      key_family: s.family,
      first_index: s.firstIndex,
      last_index: s.lastIndex,
      gap: r.gap,
      hits: s.hits.map((h) => {
        const c = r.children.find((x) =>
          x.keyLocator.family === h.keyLocator.family && x.keyLocator.index === h.keyLocator.index
        );
        return {
          index: h.keyLocator.index,
          address: h.address.address,
          pk_script: toHex(h.address.pkScript),
          restored: c ? restored(c) : false,
        };
      }),
    })),
    num_deposits_found: r.numDepositsFound,
    deposit_sync_error: r.depositSyncError,
    loopins: r.swaps.map((s) => ({
      swap_hash: s.swapHashHex,
      record_file: s.path,
      action: s.action,
      reason: s.reason ?? null,
      deposits_created: s.depositsCreated ?? 0,
      deposits_linked: s.depositsLinked ?? 0,
    })),
    warnings: r.warnings,
  };
}

/** Human text of `recover`. */
export function recoverText(r: RecoverResult): string[] {
  const would = (done: string, todo: string) => r.dryRun ? todo : done;
  const lines = [
    r.dryRun ? `dry run: nothing written; the plan for ${r.backupFile}:` : `restored from ${r.backupFile}`,
    `L402 token ${r.tokenId}: ${
      r.restoredL402 ? would("l402.token written", "l402.token would be written") : "already in place"
    }`,
    `static address ${r.staticAddress} (key ${r.legacy.keyLocator.family}/${r.legacy.keyLocator.index}): ${
      r.legacy.action === "create"
        ? would("stored", "would be stored")
        : r.legacy.imported
        ? "already stored; tapscript re-imported into lnd"
        : "already stored"
    }`,
  ];
  for (const s of r.scanned) {
    const name = `${branchOf(r, s)} addresses (family ${s.family})`;
    if (s.lastIndex === null) {
      lines.push(`${name}: not scanned (lnd's wallet has no unspent outputs)`);
      continue;
    }
    const hits = s.hits.length
      ? `found ${s.hits.map((h) => h.keyLocator.index).join(", ")}`
      : "no address in use";
    lines.push(
      `${name}: scanned indexes ${s.firstIndex}..${s.lastIndex}, ${hits}; stopped after index ${s.lastIndex} ` +
        `(${r.gap} unused in a row; use a larger --gap if a deposit to a later address is missing)`,
    );
    for (const h of s.hits) {
      const c = r.children.find((x) =>
        x.keyLocator.family === h.keyLocator.family && x.keyLocator.index === h.keyLocator.index
      );
      const state = c?.action === "create" ? would("stored", "would be stored") : "already stored";
      lines.push(`  ${h.keyLocator.family}/${h.keyLocator.index} ${h.address.address}: ${state}`);
    }
  }
  if (r.depositSyncError !== null) {
    lines.push(
      `deposit sync failed (the restore is kept; run "loopkit deposits sync"): ${r.depositSyncError}`,
    );
  } else {
    lines.push(
      `deposits: ${r.numDepositsFound} ${r.dryRun ? "would be created" : "created"}; ` +
        `${r.walletDeposits} static-address output(s) in lnd's wallet`,
    );
  }
  for (const s of r.swaps) {
    const what = s.action === "imported"
      ? would("restored armed (UnlockDeposits)", "would be restored armed (UnlockDeposits)")
      : s.action === "existing"
      ? "already in the database"
      : `not restored: ${s.reason}`;
    lines.push(`loop-in ${s.swapHashHex} (${s.path}): ${what}`);
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines;
}

/** JSON of `recover deposit` (Loop's `RecoverDepositResponse` fields, snake_case, 64-bit as strings). */
export function recoverDepositJson(r: RecoverDepositResult) {
  return {
    outpoint: r.outpoint,
    value_sat: r.valueSat.toString(),
    confirmation_height: String(r.confirmationHeight),
    client_key_family: r.keyLocator.family,
    client_key_index: r.keyLocator.index,
    static_address: r.staticAddress,
    pk_script: toHex(r.pkScript),
    recovered_address: r.recoveredAddress,
    recovered_deposit: r.recoveredDeposit,
    deposit_id: toHex(r.depositId),
    state: r.state,
    wallet_visible: r.walletVisible,
  };
}

/** Registers `recover` and `recover deposit`. */
export function registerRecover(program: Command): void {
  const cmd = program.command("recover")
    .description(
      "restore the L402 token and static addresses from a backup (lost database, data directory or lnd)",
    )
    .option("--backup-file <path>", "backup to restore (default: the latest valid one in the data directory)")
    .option("--gap <n>", "rolling gap of the receive/change address scan", "20")
    .option(
      "--key-scan-limit <n>",
      `highest index of lnd's key family 42060 searched for the client key (Loop: ${LEGACY_CLIENT_KEY_SCAN_LIMIT})`,
      String(DEFAULT_CLIENT_KEY_SCAN_LIMIT),
    )
    .option("--dry-run", "compute and print the plan; write nothing")
    .action(
      action<{ backupFile?: string; gap: string; keyScanLimit: string; dryRun?: boolean }>(
        async (ctx, opts) => {
          const gap = parseCount("--gap", opts.gap, 1, 10_000);
          const keyScanLimit = parseCount(
            "--key-scan-limit",
            opts.keyScanLimit,
            LEGACY_CLIENT_KEY_SCAN_LIMIT,
            MAX_CLIENT_KEY_SCAN_LIMIT,
          );
          const { lnd } = await ctx.lnd();
          const r = await recover({
            dataDir: ctx.config.dataDir,
            network: ctx.config.network,
            lnd,
            existingDb: () => existingDb(ctx),
            openDb: () => ctx.db(),
            syncDeposits: (db) => syncDeposits({ db, lnd: syncLnd(lnd, ctx.config.network) }),
            backupFile: opts.backupFile,
            gap,
            keyScanLimit,
            dryRun: Boolean(opts.dryRun),
          });
          if (ctx.config.json) out(toJson(recoverJson(r)));
          else for (const l of recoverText(r)) out(l);
          return r.depositSyncError !== null ? ExitCode.Partial : ExitCode.Ok;
        },
      ),
    );

  cmd.command("deposit")
    .description(
      "recover one static-address deposit from on-chain data (lnd does not rescan imported scripts)",
    )
    .requiredOption("--outpoint <txid:vout>", "the deposit's outpoint")
    .requiredOption("--height-hint <height>", "a block height at or before the deposit's block")
    .option("--pkscript <hex>", "the output's P2TR pkScript (default: try every stored static address)")
    .option(
      "--timeout <seconds>",
      "how long to wait for lnd's confirmation",
      String(DEFAULT_RECOVER_DEPOSIT_WAIT_MS / 1000),
    )
    .option(
      "--spend-timeout <seconds>",
      "how long to wait for lnd to report a spend of the output (none seen is not proof it is unspent)",
      String(DEFAULT_RECOVER_DEPOSIT_SPEND_WAIT_MS / 1000),
    )
    .option(
      "--key-scan-limit <n>",
      "highest child index tried per key family to match --pkscript (Loop: 20)",
      String(RECOVERY_SCAN_LIMIT),
    )
    .option("--scan-limit <n>", "old name of --key-scan-limit")
    .action(
      action<{
        outpoint: string;
        heightHint: string;
        pkscript?: string;
        timeout: string;
        spendTimeout: string;
        keyScanLimit: string;
        scanLimit?: string;
      }>(
        async (ctx, opts) => {
          const req = parseRecoverDepositRequest(opts.outpoint, opts.heightHint, opts.pkscript);
          const waitMs = parseCount("--timeout", opts.timeout, 1, 3600) * 1000;
          const spendWaitMs = parseCount("--spend-timeout", opts.spendTimeout, 1, 3600) * 1000;
          const scanLimit = opts.scanLimit !== undefined
            ? parseCount("--scan-limit", opts.scanLimit, 0, MAX_CLIENT_KEY_SCAN_LIMIT)
            : parseCount("--key-scan-limit", opts.keyScanLimit, 0, MAX_CLIENT_KEY_SCAN_LIMIT);
          const db = await ctx.db();
          const { lnd } = await ctx.lnd();
          const adapter = syncLnd(lnd, ctx.config.network);
          const r = await recoverDeposit({
            db,
            network: ctx.config.network,
            waitMs,
            spendWaitMs,
            scanLimit,
            lnd: {
              registerConfirmation: (t, s, n, h, o) => lnd.registerConfirmation(t, s, n, h, o),
              registerSpend: (op, s, h, o) => lnd.registerSpend(op, s, h, o),
              deriveKey: (l) => lnd.deriveKey(l),
              importTapscript: (k, s) => lnd.importTapscript(k, s),
              listUnspent: (min, max) => lnd.listUnspent(min, max),
              nextSweepPkScript: () => adapter.nextSweepPkScript(),
            },
          }, req);
          if (ctx.config.json) out(toJson(recoverDepositJson(r)));
          else {
            out(
              `deposit ${r.outpoint}: ${r.valueSat} sat, first confirmed at height ${r.confirmationHeight}, ` +
                `state ${r.state} (${r.recoveredDeposit ? "recovered" : "already recovered"})`,
            );
            out(
              `static address ${r.staticAddress} (key ${r.keyLocator.family}/${r.keyLocator.index})` +
                (r.recoveredAddress ? ": restored" : ""),
            );
            if (!r.walletVisible) {
              out(
                "note: lnd's wallet does not list this output (it does not rescan imported scripts); " +
                  "loopkit keeps the deposit from the chain data, marked not wallet-visible",
              );
            }
          }
          return ExitCode.Ok;
        },
      ),
    );
}
