/**
 * `loopkit status`: the one-glance health check (core/status/README.md documents the fields and exit codes).
 *
 * @module
 */
import type { Command } from "commander";
import {
  collectStatus,
  DEFAULT_WARN_EXPIRY_BLOCKS,
  DEFAULT_WARN_SWEEP_BLOCKS,
  type StatusReport,
} from "../core/status/status.ts";
import { usageError } from "../core/errors.ts";
import { action } from "./context.ts";
import { out, toHex, toJson } from "./output.ts";

const LABEL = { ok: "OK       ", attention: "ATTENTION", unknown: "UNKNOWN  " } as const;

/** Stable snake_case JSON of the report (64-bit integers as strings, bytes as hex). */
export function statusJson(r: StatusReport) {
  return {
    status: r.overall,
    exit_code: r.exitCode,
    network: r.network,
    data_dir: r.dataDir,
    offline: r.offline,
    lnd: {
      reachable: r.lnd.reachable,
      version: r.lnd.version,
      identity_pubkey: r.lnd.identityPubkey,
      block_height: r.lnd.blockHeight,
      synced_to_chain: r.lnd.syncedToChain,
      error: r.lnd.error
        ? { code: r.lnd.error.code, message: r.lnd.error.message, exit_code: r.lnd.error.exitCode }
        : undefined,
    },
    static_address: r.staticAddress
      ? {
        address: r.staticAddress.address,
        csv_expiry: r.staticAddress.csvExpiry,
        pk_script: toHex(r.staticAddress.pkScript),
      }
      : null,
    static_addresses: r.staticAddresses,
    deposits: {
      total: r.deposits.total,
      by_state: r.deposits.byState.map((s) => ({
        state: s.state,
        count: s.count,
        value_sat: s.valueSat.toString(),
      })),
      not_in_wallet: r.deposits.notInWallet,
      near_expiry: r.deposits.nearExpiry,
      warn_expiry_blocks: r.warnExpiryBlocks,
      nearest_expiry: r.deposits.nearestExpiry
        ? {
          outpoint: r.deposits.nearestExpiry.outpoint,
          state: r.deposits.nearestExpiry.state,
          value_sat: r.deposits.nearestExpiry.valueSat.toString(),
          expiry_height: String(r.deposits.nearestExpiry.expiryHeight),
          blocks_until_expiry: r.deposits.nearestExpiry.blocksUntilExpiry === null
            ? null
            : String(r.deposits.nearestExpiry.blocksUntilExpiry),
        }
        : null,
    },
    sweeps: r.sweeps.map((s) => ({
      outpoint: s.outpoint,
      state: s.state,
      txid: s.txid,
      expiry_height: String(s.expiryHeight),
      blocks_since_expiry: s.blocksSinceExpiry === undefined ? null : String(s.blocksSinceExpiry),
      late: s.late,
    })),
    loopins: r.loopins
      ? {
        total: r.loopins.total,
        by_state: r.loopins.byState.map((s) => ({ state: s.state, count: s.count })),
        active: r.loopins.active.map((a) => ({
          swap_hash: a.swapHash,
          state: a.state,
          waiting_for: a.waitingFor,
        })),
      }
      : null,
    backup: {
      status: r.backup.status,
      path: r.backup.path ?? null,
      token_id: r.backup.tokenId ?? null,
      token_created_at: r.backup.createdAtNs?.toString() ?? null,
      verify: r.backup.verify ?? null,
      message: r.backup.message ?? null,
    },
    copies: r.copies.map((c) => ({ dir: c.dir, path: c.path, status: c.status, message: c.message ?? null })),
    temp_files: r.tempFiles.map((f) => ({ path: f.path, age_seconds: f.ageSeconds })),
    concerns: r.concerns.map((c) => ({ check: c.check, level: c.level, message: c.message })),
  };
}

function blocks(v: string, flag: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 1_000_000) {
    throw usageError(`Invalid ${flag} "${v}": expected a whole number of blocks (0 to 1000000)`);
  }
  return Number(v);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Registers `status`. */
export function registerStatus(program: Command): void {
  program.command("status")
    .description(
      "one-glance health check: lnd, the static address, deposits and expiry, sweeps, the backup and its " +
        "copies, stale temporary files (exit 0 all well, 1 attention needed, 75 could not tell)",
    )
    .option("--offline", "do not contact lnd: report what the database and the data directory know")
    .option("--copy-to <dir>", "also check the backup's copy in this directory (repeatable)", collect, [])
    .option(
      "--warn-expiry-blocks <n>",
      `attention when a deposit is this close to its CSV expiry (default: ${DEFAULT_WARN_EXPIRY_BLOCKS})`,
    )
    .option(
      "--warn-sweep-blocks <n>",
      `attention when an expiry sweep is not final this many blocks after expiry + 3 (default: ${DEFAULT_WARN_SWEEP_BLOCKS})`,
    )
    .action(
      action<{ offline?: boolean; copyTo: string[]; warnExpiryBlocks?: string; warnSweepBlocks?: string }>(
        async (ctx, opts) => {
          const warnExpiryBlocks = opts.warnExpiryBlocks === undefined
            ? DEFAULT_WARN_EXPIRY_BLOCKS
            : blocks(opts.warnExpiryBlocks, "--warn-expiry-blocks");
          const warnSweepBlocks = opts.warnSweepBlocks === undefined
            ? DEFAULT_WARN_SWEEP_BLOCKS
            : blocks(opts.warnSweepBlocks, "--warn-sweep-blocks");
          const r = await collectStatus({
            network: ctx.config.network,
            dataDir: ctx.config.dataDir,
            db: () => ctx.existingDb(),
            lnd: opts.offline ? undefined : () => ctx.lnd(),
            copyTo: opts.copyTo,
            warnExpiryBlocks,
            warnSweepBlocks,
          });
          if (ctx.config.json) out(toJson(statusJson(r)));
          else for (const c of r.concerns) out(`${LABEL[c.level]} ${c.check}: ${c.message}`);
          return r.exitCode;
        },
      ),
    );
}
