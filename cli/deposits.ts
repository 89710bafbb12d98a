/**
 * `loopkit deposits sync|list`.
 *
 * @module
 */
import type { Command } from "commander";
import { syncDeposits, type SyncResult } from "../core/deposits/sync.ts";
import { listDeposits } from "../core/deposits/store.ts";
import { type Deposit, DEPOSIT_STATES, outpointOf } from "../core/deposits/types.ts";
import { listStaticAddresses } from "../core/db/static_addresses.ts";
import { dbError } from "../core/db/db.ts";
import { ExitCode, usageError } from "../core/errors.ts";
import { action } from "./main.ts";
import { out, toHex, toJson } from "./output.ts";
import { syncLnd } from "./lnd_adapters.ts";

/** JSON shape of one deposit (stable, snake_case, 64-bit as strings). */
export function depositJson(d: Deposit, csvExpiry: number | undefined, tip: number | undefined) {
  return {
    outpoint: outpointOf(d),
    deposit_id: toHex(d.depositId),
    state: d.state,
    value_sat: d.amountSat.toString(),
    confirmation_height: String(d.confirmationHeight),
    wallet_visible: d.walletVisible,
    pk_script: toHex(d.pkScript),
    blocks_until_expiry: csvExpiry === undefined || tip === undefined
      ? undefined
      : String(d.confirmationHeight > 0 ? d.confirmationHeight + csvExpiry - tip : csvExpiry),
    expiry_sweep_txid: d.expirySweepTxid ?? undefined,
    swap_hash: d.swapHash ?? undefined,
  };
}

function renderSync(r: SyncResult): string {
  const lines = [`tip height ${r.tipHeight}; ${r.walletDeposits} static-address output(s) in the wallet`];
  if (!r.changes.length) lines.push("no changes");
  for (const c of r.changes) {
    lines.push(
      `${
        c.change.padEnd(18)
      } ${c.outpoint}  ${c.amountSat} sat  state ${c.state}  conf height ${c.confirmationHeight}`,
    );
  }
  return lines.join("\n");
}

/** Registers `deposits` and its subcommands. */
export function registerDeposits(program: Command): void {
  const deposits = program.command("deposits").description("static-address deposits");

  deposits.command("sync")
    .description("reconcile the wallet's static-address outputs (0-conf included) into deposit records")
    .action(action(async (ctx) => {
      const db = await ctx.db();
      const { lnd } = await ctx.lnd();
      const r = await syncDeposits({ db, lnd: syncLnd(lnd, ctx.config.network) });
      if (ctx.config.json) {
        out(toJson({
          tip_height: String(r.tipHeight),
          wallet_deposits: r.walletDeposits,
          changes: r.changes.map((c) => ({
            outpoint: c.outpoint,
            change: c.change,
            state: c.state,
            confirmation_height: String(c.confirmationHeight),
            value_sat: c.amountSat.toString(),
          })),
        }));
      } else out(renderSync(r));
      return ExitCode.Ok;
    }));

  deposits.command("list")
    .description("list deposits (Replaced ones only with --all)")
    .option("--all", "include Replaced deposits")
    .option("--state <state>", `only this state (${DEPOSIT_STATES.join(", ")})`)
    .option("--outpoint <txid:vout>", "only this outpoint")
    .action(action<{ all?: boolean; state?: string; outpoint?: string }>(async (ctx, opts) => {
      if (opts.state && !(DEPOSIT_STATES as readonly string[]).includes(opts.state)) {
        throw usageError(`Invalid --state "${opts.state}": expected one of ${DEPOSIT_STATES.join(", ")}`);
      }
      const db = await ctx.db();
      let all: Deposit[];
      let expiry: number | undefined;
      try {
        all = await listDeposits(db.client);
        expiry = (await listStaticAddresses(db))[0]?.expiry;
      } catch (err) {
        throw dbError(err, "listing deposits");
      }
      const shown = all.filter((d) =>
        (opts.all || opts.state === "Replaced" || d.state !== "Replaced") &&
        (!opts.state || d.state === opts.state) &&
        (!opts.outpoint || outpointOf(d) === opts.outpoint)
      );
      if (ctx.config.json) {
        out(toJson({ deposits: shown.map((d) => depositJson(d, expiry, undefined)) }));
      } else if (!shown.length) {
        out("no deposits");
      } else {
        for (const d of shown) {
          out(
            `${outpointOf(d)}  ${d.amountSat} sat  ${d.state}${d.walletVisible ? "" : " (not in wallet)"}  ` +
              `conf height ${d.confirmationHeight || "unconfirmed"}`,
          );
        }
      }
      return ExitCode.Ok;
    }));
}
