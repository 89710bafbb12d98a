/**
 * `loopkit deposits sync|list|summary`.
 *
 * @module
 */
import type { Command } from "commander";
import type { SpendReport, SweepReport, SyncResult } from "../core/deposits/sync.ts";
import type * as SyncModule from "../core/deposits/sync.ts";
import type * as AdaptersModule from "./lnd_adapters.ts";
import type * as NewAddressModule from "../core/staticaddr/new_address.ts";
import { listDeposits } from "../core/deposits/store.ts";
import { type Deposit, DEPOSIT_STATES, outpointOf } from "../core/deposits/types.ts";
import { blocksUntilExpiry, DEFAULT_SWEEP_CONF_TARGET } from "../core/deposits/expiry.ts";
import {
  type DepositSummary,
  isVisible,
  summarizeDeposits,
  SUMMARY_CATEGORIES,
} from "../core/deposits/summary.ts";
import { listStaticAddresses, type StaticAddressRow } from "../core/db/static_addresses.ts";
import { dbError } from "../core/db/db.ts";
import { ExitCode, type ExitCodeValue, LoopkitError, usageError } from "../core/errors.ts";
import { formatOutpoint, parseOutpoint } from "../core/staticaddr/outpoint.ts";
import { action, type Context } from "./context.ts";
import { addFlags, type FastCommand, type FlagSpec } from "./fast_path.ts";
import { diag, out, toHex, toJson } from "./output.ts";
import { depositJson } from "./deposit_json.ts";
import { lazyImport } from "./lazy.ts";
import { progressFor } from "../core/progress.ts";

// Only `sync` needs the sweep code and `summary` the address encoding (both load the Bitcoin libraries):
// imported in those actions, so `deposits list --offline` starts light (bench/README.md "Start-up").
const loadSync = () => lazyImport<typeof SyncModule>(new URL("../core/deposits/sync.ts", import.meta.url));
const loadAdapters = () => lazyImport<typeof AdaptersModule>(new URL("./lnd_adapters.ts", import.meta.url));
const loadNewAddress = () =>
  lazyImport<typeof NewAddressModule>(new URL("../core/staticaddr/new_address.ts", import.meta.url));

const hexOf = (b: Uint8Array) => toHex(b);

/** Expiry of a deposit's address (CSV blocks), by pkScript. */
function expiryOf(addresses: StaticAddressRow[]): (d: Deposit) => number | undefined {
  const m = new Map(addresses.map((a) => [hexOf(a.pkScript), a.expiry]));
  return (d) => m.get(hexOf(d.pkScript));
}

function spendJson(s: SpendReport) {
  return {
    outpoint: s.outpoint,
    action: s.action,
    state: s.state,
    spending_txid: s.spendingTxid,
    spending_height: s.spendingHeight === undefined ? undefined : String(s.spendingHeight),
    confirmations: s.confirmations,
    error: s.error
      ? { code: s.error.code, message: s.error.message, exit_code: s.error.exitCode }
      : undefined,
  };
}

function sweepJson(s: SweepReport) {
  return {
    outpoint: s.outpoint,
    action: s.action,
    state: s.state,
    txid: s.txid,
    fee_sat: s.feeSat?.toString(),
    confirmations: s.confirmations,
    error: s.error
      ? { code: s.error.code, message: s.error.message, exit_code: s.error.exitCode }
      : undefined,
  };
}

function renderSync(r: SyncResult): string {
  const lines = [`tip height ${r.tipHeight}; ${r.walletDeposits} static-address output(s) in the wallet`];
  if (!r.changes.length && !r.sweeps.length && !r.spends.length) lines.push("no changes");
  for (const c of r.changes) {
    lines.push(
      `${
        c.change.padEnd(18)
      } ${c.outpoint}  ${c.amountSat} sat  state ${c.state}  conf height ${c.confirmationHeight}`,
    );
  }
  for (const s of r.sweeps) {
    const what = `sweep_${s.action}`.padEnd(18);
    const detail = s.error
      ? `: ${s.error.message}`
      : `  txid ${s.txid}${s.feeSat !== undefined ? `  fee ${s.feeSat} sat` : ""}${
        s.confirmations !== undefined ? `  ${s.confirmations} conf` : ""
      }`;
    lines.push(`${what} ${s.outpoint}  state ${s.state}${detail}`);
  }
  for (const s of r.spends) {
    const what = `spend_${s.action}`.padEnd(18);
    const detail = s.error
      ? `: ${s.error.message}`
      : `  spent by ${s.spendingTxid} at height ${s.spendingHeight} (${s.confirmations} conf)`;
    lines.push(`${what} ${s.outpoint}  state ${s.state}${detail}`);
  }
  return lines.join("\n");
}

/**
 * Exit code of a sync: 0, or 4 when a sweep or a spend check failed (75 when every failure was temporary).
 * A deposit spent elsewhere is not a failure.
 */
export function syncExitCode(r: SyncResult): ExitCodeValue {
  const failed = [...r.sweeps, ...r.spends].filter((s) => s.error);
  if (!failed.length) return ExitCode.Ok;
  return failed.every((s) => s.error!.exitCode === ExitCode.TempFail) ? ExitCode.TempFail : ExitCode.Partial;
}

/** The tip from lnd for `blocks_until_expiry`; undefined (with a note on stderr) when lnd cannot answer. */
async function tipOrUndefined(ctx: Context, offline: boolean | undefined): Promise<number | undefined> {
  if (offline) return undefined;
  try {
    return (await ctx.lnd()).info.blockHeight;
  } catch (err) {
    diag(`loopkit: note: no blocks_until_expiry (lnd: ${(err as Error).message})`);
    return undefined;
  }
}

function parseConfTarget(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 2 || Number(v) > 1008) {
    throw usageError(`Invalid --sweep-conf-target "${v}": expected a whole number of blocks from 2 to 1008`);
  }
  return Number(v);
}

/** True when the database exists and holds a static address (read-only; an older schema is migrated). */
async function hasStaticAddress(ctx: Context): Promise<boolean> {
  let db;
  try {
    db = await ctx.existingDb();
  } catch (err) {
    if (!(err instanceof LoopkitError && err.code === "db_schema_outdated")) throw err;
    db = await ctx.db(); // sync writes anyway: upgrade the schema now
  }
  if (!db) return false;
  try {
    return (await listStaticAddresses(db)).length > 0;
  } catch (err) {
    throw dbError(err, "reading the static addresses");
  }
}

async function readAll(ctx: Context): Promise<{ deposits: Deposit[]; addresses: StaticAddressRow[] }> {
  const db = await ctx.existingDb();
  let addresses: StaticAddressRow[] = [];
  let deposits: Deposit[] = [];
  if (db) {
    try {
      addresses = await listStaticAddresses(db);
      deposits = await listDeposits(db.client);
    } catch (err) {
      throw dbError(err, "listing deposits");
    }
  }
  // The empty state is the same for every report (README "Empty state"): no static address ⇒ exit 1.
  if (!addresses.length) throw noStaticAddress();
  return { deposits, addresses };
}

/** `no_static_address` (exit 1): what the reports say before `address new` or `recover` ran. */
function noStaticAddress(): LoopkitError {
  return new LoopkitError(
    "no_static_address",
    "No static address in the database: run `loopkit address new` (or `loopkit recover`)",
    ExitCode.Failure,
  );
}

function pad(cells: string[][]): string[] {
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) =>
    r.map((c, i) => (i === 1 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd()
  );
}

/** Human table of deposits. */
function depositTable(shown: Deposit[], expiry: (d: Deposit) => number | undefined, tip: number | undefined) {
  const rows = [["OUTPOINT", "VALUE_SAT", "STATE", "CONF_HEIGHT", "EXPIRES_IN", "NOTE"]];
  for (const d of shown) {
    const e = expiry(d);
    const notes: string[] = [];
    if (!d.walletVisible) notes.push("not in wallet");
    if (d.expirySweepTxid) notes.push(`sweep ${d.expirySweepTxid}`);
    if (d.spentBy) notes.push(`spent by ${d.spentBy.txid} at ${d.spentBy.height}`);
    rows.push([
      outpointOf(d),
      d.amountSat.toString(),
      d.state,
      d.confirmationHeight > 0 ? String(d.confirmationHeight) : "unconfirmed",
      e === undefined || tip === undefined
        ? "?"
        : `${blocksUntilExpiry(d.confirmationHeight, e, tip)} blocks`,
      notes.join("; "),
    ]);
  }
  return pad(rows);
}

const LOOP_FIELDS: [string, keyof DepositSummary["categories"]][] = [
  ["value_unconfirmed_satoshis", "unconfirmed"],
  ["value_deposited_satoshis", "deposited"],
  ["value_expired_satoshis", "expired"],
  ["value_withdrawn_satoshis", "withdrawn"],
  ["value_looped_in_satoshis", "looped_in"],
  ["value_htlc_timeout_sweeps_satoshis", "htlc_timeout_swept"],
  ["value_channels_opened", "channel_published"],
];

/** JSON of `deposits summary`: Loop's `StaticAddressSummaryResponse` fields plus every category. */
export function summaryJson(address: string, csvExpiry: number, s: DepositSummary) {
  const loop = Object.fromEntries(LOOP_FIELDS.map(([k, c]) => [k, s.categories[c].valueSat.toString()]));
  return {
    static_address: address,
    relative_expiry_blocks: String(csvExpiry),
    total_num_deposits: s.totalNumDeposits,
    ...loop,
    total_value_sat: s.totalValueSat.toString(),
    categories: SUMMARY_CATEGORIES.map((c) => ({
      category: c,
      count: s.categories[c].count,
      value_sat: s.categories[c].valueSat.toString(),
    })),
    replaced: { count: s.replaced.count, value_sat: s.replaced.valueSat.toString() },
  };
}

/** Registers `deposits` and its subcommands. */
export function registerDeposits(program: Command): void {
  const deposits = program.command("deposits").description("static-address deposits");

  deposits.command("sync")
    .description(
      "reconcile the wallet's static-address outputs (0-conf included) into deposit records, and sweep " +
        "expired deposits back to the wallet through the timeout path",
    )
    .option(
      "--sweep-conf-target <blocks>",
      `confirmation target for the expiry sweep's fee estimate (default: ${DEFAULT_SWEEP_CONF_TARGET})`,
    )
    .action(action<{ sweepConfTarget?: string }>(async (ctx, opts) => {
      const sweepConfTarget = opts.sweepConfTarget === undefined
        ? DEFAULT_SWEEP_CONF_TARGET
        : parseConfTarget(opts.sweepConfTarget);
      // No static address (or no database): nothing to sync. Decided before contacting lnd or creating
      // anything, so a wrong --network or --loopdir leaves no file behind (README "Usage").
      if (!(await hasStaticAddress(ctx))) {
        if (ctx.config.json) {
          out(
            toJson({
              tip_height: null,
              wallet_deposits: 0,
              changes: [],
              sweeps: [],
              reason: "no_static_address",
            }),
          );
        } else {
          out("no static address: nothing to sync (run `loopkit address new` or `loopkit recover`)");
        }
        return ExitCode.Ok;
      }
      const { lnd } = await ctx.lnd();
      const db = await ctx.db();
      const [{ syncDeposits }, { syncLnd }] = await Promise.all([loadSync(), loadAdapters()]);
      const r = await syncDeposits({
        db,
        lnd: syncLnd(lnd, ctx.config.network),
        sweepConfTarget,
        progress: progressFor({ json: ctx.config.json }),
      });
      if (ctx.config.json) {
        out(toJson({
          tip_height: r.tipHeight,
          wallet_deposits: r.walletDeposits,
          changes: r.changes.map((c) => ({
            outpoint: c.outpoint,
            change: c.change,
            state: c.state,
            confirmation_height: String(c.confirmationHeight),
            value_sat: c.amountSat.toString(),
          })),
          sweeps: r.sweeps.map(sweepJson),
          spends: r.spends.map(spendJson),
        }));
      } else out(renderSync(r));
      const code = syncExitCode(r);
      if (code !== ExitCode.Ok) {
        const sweeps = r.sweeps.filter((s) => s.error).length;
        const checks = r.spends.filter((s) => s.error).length;
        diag(
          `loopkit: ${sweeps} expiry sweep(s) and ${checks} spend check(s) failed; see the output`,
        );
      }
      return code;
    }));

  addFlags(
    deposits.command("list").description("list deposits (Replaced ones only with --all or --state Replaced)"),
    LIST_FLAGS,
  ).action(action(depositsList));

  deposits.command("summary")
    .description("totals of the deposits by state, like Loop's static address summary (works offline)")
    .action(action(depositsSummary));
}

/** The flags of `deposits list` (registered on commander and read by the commander-free path). */
const LIST_FLAGS: readonly FlagSpec[] = [
  { flags: "--all", description: "include Replaced deposits" },
  { flags: "--state <state>", description: `only this state (${DEPOSIT_STATES.join(", ")})` },
  {
    flags: "--outpoint <txid:vout>",
    description: "only these outpoints (repeatable; each must exist)",
    repeatable: true,
  },
  { flags: "--offline", description: "do not ask lnd for the tip (no blocks until expiry)" },
];

type ListOpts = { all?: boolean; state?: string; outpoint: string[]; offline?: boolean };

/** `deposits list`: the stored deposits, filtered (exit 2 for a bad filter, 1 for an unknown outpoint). */
async function depositsList(ctx: Context, opts: ListOpts): Promise<number> {
  if (opts.state && !(DEPOSIT_STATES as readonly string[]).includes(opts.state)) {
    throw usageError(`Invalid --state "${opts.state}": expected one of ${DEPOSIT_STATES.join(", ")}`);
  }
  if (opts.state && opts.outpoint.length) {
    throw usageError(
      "Use either --state or --outpoint, not both (as Loop: filter by state or outpoints)",
    );
  }
  const wanted = opts.outpoint.map((o) => {
    try {
      return formatOutpoint(parseOutpoint(o));
    } catch (err) {
      throw usageError(`Invalid --outpoint "${o}": ${(err as Error).message}`);
    }
  });
  const { deposits: all, addresses } = await readAll(ctx);
  let shown: Deposit[];
  if (wanted.length) {
    const byOp = new Map(all.map((d) => [outpointOf(d), d]));
    const missing = wanted.filter((o) => !byOp.has(o));
    if (missing.length) {
      throw new LoopkitError(
        "deposit_not_found",
        `Not all outpoints found in deposits: ${missing.join(", ")}`,
        ExitCode.Failure,
      );
    }
    shown = [...new Set(wanted)].map((o) => byOp.get(o)!);
  } else {
    shown = all.filter((d) =>
      (opts.all || opts.state === "Replaced" || isVisible(d)) && (!opts.state || d.state === opts.state)
    );
  }
  const tip = await tipOrUndefined(ctx, opts.offline);
  const expiry = expiryOf(addresses);
  if (ctx.config.json) {
    out(toJson({
      tip_height: tip,
      deposits: shown.map((d) => depositJson(d, expiry(d), tip)),
    }));
  } else if (!shown.length) {
    out("no deposits");
  } else {
    for (const l of depositTable(shown, expiry, tip)) out(l);
  }
  return ExitCode.Ok;
}

/** `deposits summary`: totals by state (offline: the database only). */
async function depositsSummary(ctx: Context): Promise<number> {
  const { deposits: all, addresses } = await readAll(ctx);
  const legacy = addresses[0];
  const { addressOfRow } = await loadNewAddress();
  const address = addressOfRow(legacy, ctx.config.network).address;
  const s = summarizeDeposits(all);
  if (ctx.config.json) {
    out(toJson(summaryJson(address, legacy.expiry, s)));
    return ExitCode.Ok;
  }
  out(`static address  ${address}`);
  out(`CSV expiry      ${legacy.expiry} blocks`);
  const rows = [["CATEGORY", "VALUE_SAT", "COUNT"]];
  for (const c of SUMMARY_CATEGORIES) {
    const t = s.categories[c];
    if (t.count) rows.push([c, t.valueSat.toString(), String(t.count)]);
  }
  rows.push(["total", s.totalValueSat.toString(), String(s.totalNumDeposits)]);
  out("");
  for (const l of pad(rows)) out(l);
  if (s.replaced.count) {
    out(
      `(${s.replaced.count} replaced deposit(s), ${s.replaced.valueSat} sat, hidden: deposits list --all)`,
    );
  }
  return ExitCode.Ok;
}

/**
 * The `deposits` subcommands that run without commander on a plain command line (cli/fast_path.ts): both
 * read only the database, so `deposits list --offline` loads neither commander nor, without a database, libSQL.
 */
export const FAST_COMMANDS: readonly FastCommand[] = [
  { path: ["deposits", "list"], options: LIST_FLAGS, run: depositsList },
  { path: ["deposits", "summary"], options: [], run: depositsSummary },
];
