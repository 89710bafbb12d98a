/**
 * `loopkit loopin` (quote, initiate and sign in one invocation), `loopin quote`, `loopin sync`,
 * `loopin list` and `loopin show`. Thin: parses the flags (Loop's `loop static in`, spec/static-loop-in.md
 * §3.4), calls core/loopin, renders.
 *
 * Exit codes (README table): 0 done; 1 refused or failed (fee too high, deposit unavailable, server
 * answer refused; the swap is unwound); 2 bad flag, no terminal for the prompt without `--force`; 75 lnd,
 * the swap server or the database temporarily unavailable; 130 interrupted (before the signatures were
 * pushed the swap is unwound first; after, it is left armed for `loopin sync`).
 *
 * @module
 */
import type { Command } from "commander";
import { hexToBytes } from "@noble/hashes/utils.js";
import { L402TokenStore } from "../core/l402/store.ts";
import type { SwapServerClient } from "../core/swapserver/client.ts";
import type * as DepositsSyncModule from "../core/deposits/sync.ts";
import { lazyImport } from "./lazy.ts";
import { parseWholeFlag } from "./flags.ts";
import { resolveSwapServer, type SwapServerFlags } from "./swap_server.ts";
import { setInterruptHook } from "../core/interrupt.ts";
import { ExitCode, LoopkitError, usageError } from "../core/errors.ts";
import { formatLowConfirmationWarning } from "../core/loopin/warning.ts";
import {
  initiateLoopIn,
  type InitiateResult,
  type InitiateStep,
  type LoopInDeps,
  type LoopInQuote,
  type LoopInRequest,
  quoteLoopIn,
} from "../core/loopin/initiate.ts";
import { outpointOf } from "../core/deposits/types.ts";
import { LoopInSwapStore } from "../core/loopin/store.ts";
import { swapRecordWriter } from "../core/loopin/swap_record_file.ts";
import { deriveBackupKey } from "../core/backup/envelope.ts";
import { listLoopIns, type LoopInView, loopInViewJson, showLoopIn } from "../core/loopin/view.ts";
import { type LoopInSyncResult, syncExitCode, type SyncLoopInLnd, syncLoopIns } from "../core/loopin/sync.ts";
import { ownerAlive as defaultOwnerAlive, type OwnerTag } from "../core/loopin/owner.ts";
import { action, type Context } from "./context.ts";
import { diag, out, toHex, toJson } from "./output.ts";
import { pkScriptOfAddress, syncLnd } from "./lnd_adapters.ts";
import { depositJson } from "./deposit_json.ts";

// ---------------------------------------------------------------------------------------------------------
// Interrupts: cli/main.ts asks here first; while a loop-in is being initiated the first SIGINT/SIGTERM
// aborts it at the next step boundary (the unwind runs, then exit 130) instead of exiting at once.
// ---------------------------------------------------------------------------------------------------------

/**
 * The interrupt hold of the running initiation: `active` from the confirmation on (a signal at the prompt
 * exits at once) until the swap is armed (then exiting at once leaves it armed for `loopin sync`).
 */
let held: { controller: AbortController; signals: number; active: boolean; what: string } | null = null;

/**
 * Called by cli/main.ts's signal handler. True when a loop-in initiation holds the interrupt (it unwinds
 * and exits 130 itself); false when the process should exit now. A third signal always exits.
 */
export function takeInterrupt(): boolean {
  if (!held?.active) return false;
  held.signals++;
  if (held.signals >= 3) return false;
  if (held.signals === 1) {
    diag("loopkit: interrupted: undoing the loop-in (abandon, cancel the invoice, release the deposits)…");
  } else {
    diag(
      "loopkit: still undoing the loop-in; interrupt once more to exit at once (`loopin sync` finishes it)",
    );
  }
  held.controller.abort();
  return true;
}

setInterruptHook(takeInterrupt);

function holdInterrupts(what: string): AbortController {
  const controller = new AbortController();
  held = { controller, signals: 0, active: false, what };
  return controller;
}

function setInterruptHold(active: boolean): void {
  if (held) held.active = active;
}

function releaseInterrupts(): void {
  held = null;
}

// ---------------------------------------------------------------------------------------------------------
// Initiation ownership. Deno refuses /proc to a process without --allow-all (the CLI's permission set), so
// core/loopin/owner.ts cannot tell a dead initiator from a live one there. Each `loopin` run therefore holds
// an exclusive flock on `<datadir>/loopin-initiating-<pid>.lock` for the whole initiation (created before the
// swap row exists); the kernel releases it when the process dies, kill -9 included. `loopin sync` asks that
// lock: free ⇒ the owner is gone; held ⇒ alive; no file ⇒ owner.ts's own rule.
// ---------------------------------------------------------------------------------------------------------

function initiationLockPath(dataDir: string, pid: number): string {
  return `${dataDir}/loopin-initiating-${pid}.lock`;
}

/** Takes this process's initiation lock; release() unlocks and removes it. */
async function takeInitiationLock(dataDir: string): Promise<{ release(): void }> {
  const path = initiationLockPath(dataDir, Deno.pid);
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  file.lockSync(true);
  return {
    release() {
      try {
        Deno.removeSync(path);
      } catch { /* already gone */ }
      try {
        file.unlockSync();
        file.close();
      } catch { /* closed */ }
    },
  };
}

/** `ownerAlive` for `loopin sync`: the owner's initiation lock decides (see above). */
export function initiationOwnerAlive(dataDir: string) {
  return (owner: OwnerTag | null, ageMs: number): boolean => {
    if (!owner) return false;
    let host = "";
    try {
      host = Deno.hostname();
    } catch { /* unknown */ }
    if (owner.host !== host) return false;
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(initiationLockPath(dataDir, owner.pid), { read: true, write: true });
    } catch {
      return defaultOwnerAlive(owner, ageMs);
    }
    try {
      if (file.tryLockSync(true)) {
        file.unlockSync();
        return false;
      }
      return true;
    } finally {
      file.close();
    }
  };
}

// ---------------------------------------------------------------------------------------------------------
// Flag parsing
// ---------------------------------------------------------------------------------------------------------

interface LoopInFlags extends SwapServerFlags {
  utxo: string[];
  all?: boolean;
  fast?: boolean;
  lastHop?: string;
  private?: boolean;
  maxSwapFeeSat?: string;
  maxSwapFeePpm?: string;
  paymentTimeout?: string;
  label?: string;
  force?: boolean;
  listen?: string;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The positional AMOUNT (sat); at most one. */
export function parseAmountArg(args: string[]): bigint | undefined {
  const given = args.filter((a) => a !== undefined);
  if (given.length > 1) throw usageError("Only a single positional argument (the amount in sat) is allowed");
  if (!given.length) return undefined;
  const v = given[0];
  if (/^-\d+$/.test(v)) throw usageError(`Negative amount ${v}`);
  if (!/^\d{1,16}$/.test(v)) throw usageError(`Invalid amount "${v}": expected a whole number of sat`);
  return BigInt(v);
}

/**
 * A Go-style duration (`60s`, `1m30s`, `2h`, `500ms`) or plain seconds, truncated to whole seconds
 * (Loop's `--payment_timeout`, spec §3.4).
 */
export function parseDurationSec(flag: string, v: string): number {
  const plain = /^\d+$/.exec(v);
  if (plain) return Number(v);
  const m = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(v);
  if (!m || v === "" || m.slice(1).every((x) => x === undefined)) {
    throw usageError(`Invalid ${flag} "${v}": expected a duration such as 30s, 1m30s or 2h`);
  }
  const [h, min, s, ms] = m.slice(1).map((x) => Number(x ?? 0));
  const total = Math.floor(h * 3600 + min * 60 + s + ms / 1000);
  if (total > 0xffff_ffff) throw usageError(`Invalid ${flag} "${v}": too long`);
  return total;
}

function parsePubkeyFlag(flag: string, v: string | undefined): Uint8Array | undefined {
  if (v === undefined) return undefined;
  if (!/^0[23][0-9a-fA-F]{64}$/.test(v)) {
    throw usageError(`Invalid ${flag} "${v}": expected a 33-byte compressed public key in hex`);
  }
  return hexToBytes(v.toLowerCase());
}

/**
 * core/loopin names Loop's flags (`--max_swap_fee_sat`); loopkit's are dashed (`--max-swap-fee-sat`). Errors
 * keep their code and exit code, with the flag names the user can type.
 */
function withLoopKitFlagNames<T>(p: Promise<T>): Promise<T> {
  return p.catch((err) => {
    if (err instanceof LoopkitError && /--[a-z]+_[a-z_]+/.test(err.message)) {
      const message = err.message.replace(
        /--([a-z]+(?:_[a-z]+)+)/g,
        (_m, f: string) => `--${f.replaceAll("_", "-")}`,
      );
      throw Object.assign(new LoopkitError(err.code, message, err.exitCode, { cause: err }), {
        name: err.name,
      });
    }
    throw err;
  });
}

function loopInRequest(opts: LoopInFlags, args: string[]): LoopInRequest {
  if (opts.private) {
    throw usageError(
      "--private is not supported yet: loopkit does not generate hop hints (the swap invoice is always " +
        "created private, so lnd adds its own)",
      "unsupported_flag",
    );
  }
  return {
    amountSat: parseAmountArg(args),
    outpoints: opts.utxo,
    all: opts.all,
    fast: opts.fast,
    lastHop: parsePubkeyFlag("--last-hop", opts.lastHop),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Swap server and dependencies (gRPC and the deposit sync load on first use: cli/commands.ts)
// ---------------------------------------------------------------------------------------------------------

const loadDepositsSync = () =>
  lazyImport<typeof DepositsSyncModule>(new URL("../core/deposits/sync.ts", import.meta.url));

/** Opens the swap server like `address new` does (L402 through the token store, lnd pays). */
async function openServer(ctx: Context, opts: SwapServerFlags): Promise<SwapServerClient> {
  const { network, dataDir } = ctx.config;
  const { openSwapServer, address, tlsCert } = await resolveSwapServer(network, opts);
  const { lnd } = await ctx.lnd();
  const store = await L402TokenStore.open(dataDir);
  return openSwapServer({
    address,
    tls: opts.swapserverTls,
    tlsCert,
    network,
    l402: {
      store,
      payer: lnd,
      maxCostSat: parseWholeFlag("--max-l402-cost-sat", opts.maxL402CostSat, "sat"),
    },
  });
}

async function loopInDeps(ctx: Context, server: SwapServerClient, signal?: AbortSignal): Promise<LoopInDeps> {
  const db = await ctx.db();
  const { lnd } = await ctx.lnd();
  const network = ctx.config.network;
  return {
    db,
    network,
    lnd: {
      getInfo: () => lnd.getInfo(),
      deriveNextKey: (f) => lnd.deriveNextKey(f),
      addInvoice: (r) => lnd.addInvoice(r),
      cancelInvoice: (h) => lnd.cancelInvoice(h),
      lookupInvoice: (h) => lnd.lookupInvoice(h),
      getTransactions: () => lnd.getTransactions(0, -1),
      muSig2CreateSession: (r) => lnd.muSig2CreateSession(r),
      muSig2RegisterNonces: (id, n) => lnd.muSig2RegisterNonces(id, n),
      muSig2Sign: (id, d) => lnd.muSig2Sign(id, d, false),
      muSig2Cleanup: (id) => lnd.muSig2Cleanup(id),
      nextSweepPkScript: async () => pkScriptOfAddress(await lnd.nextAddr(), network),
    },
    server,
    store: new LoopInSwapStore(db),
    // The swap's recovery record goes where the L402 backups go (the data directory), before the marker.
    writeSwapRecord: swapRecordWriter(ctx.config.dataDir, () => deriveBackupKey(lnd)),
    signal,
    ...stepHooks(signal),
    refreshDeposits: async () => {
      const { syncDeposits } = await loadDepositsSync();
      await syncDeposits({ db, lnd: syncLnd(lnd, network) });
    },
    log: diag,
  };
}

/**
 * Test-only hooks of the initiation, installed by the test entry point `tests/cli/_hooked_main.ts` (which the
 * CLI and regtest tests run instead of `cli/main.ts` when they need them). The shipped CLI never installs any and
 * reads no environment variable for them.
 */
export interface LoopInTestHooks {
  /** Called at each step boundary after loopkit's own handling; may wait (e.g. to be killed there). */
  onStep?(step: InitiateStep, signal?: AbortSignal): Promise<void> | void;
  /** Called with the partial signatures just before the push (e.g. to corrupt one). */
  beforePush?: LoopInDeps["beforePush"];
}

let installedTestHooks: LoopInTestHooks = {};

/** Installs {@linkcode LoopInTestHooks} for this process (tests only; see `tests/cli/_hooked_main.ts`). */
export function setLoopInTestHooks(hooks: LoopInTestHooks): void {
  installedTestHooks = hooks;
}

/**
 * The interrupt hold follows the steps: active from the confirmation until the marker (an interrupt in between
 * unwinds the swap; after the marker the swap is armed and `loopin sync` takes it). Test hooks, when installed,
 * run after it.
 */
function stepHooks(signal?: AbortSignal): Pick<LoopInDeps, "onStep" | "beforePush"> {
  const hooks = installedTestHooks;
  return {
    onStep: async (step) => {
      if (step === "quoted") setInterruptHold(true);
      if (step === "armed") setInterruptHold(false);
      await hooks.onStep?.(step, signal);
    },
    beforePush: hooks.beforePush,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------------------

/** `--json` of `loopin quote`: Loop's `InQuoteResponse` fields plus the selection. */
export function quoteJson(q: LoopInQuote) {
  return {
    swap_fee_sat: q.swapFeeSat.toString(),
    htlc_publish_fee_sat: "0",
    cltv_delta: q.cltvDelta,
    quoted_amt: q.swapAmountSat.toString(),
    selected_amount_sat: q.selectedAmountSat.toString(),
    total_deposit_sat: q.totalDepositSat.toString(),
    change_sat: q.changeSat.toString(),
    receive_off_chain_sat: q.receiveSat.toString(),
    auto_selected: q.autoSelected,
    num_deposits: q.deposits.length,
    deposit_outpoints: q.deposits.map(outpointOf),
    low_confirmation_deposits: q.lowConfirmation.map((e) => ({
      outpoint: e.outpoint,
      confirmations: e.confirmations,
    })),
    min_swap_amount_sat: q.terms.minSwapAmountSat.toString(),
    max_swap_amount_sat: q.terms.maxSwapAmountSat.toString(),
    tip_height: q.tipHeight,
  };
}

const line = (label: string, sat: bigint) => `${label.padEnd(36)} ${sat.toString().padStart(12)} sat`;

/** Human text of a quote, Loop's layout (spec §3.4 step 11). */
export function quoteText(q: LoopInQuote): string[] {
  return [
    line(q.autoSelected ? "Send on-chain:" : "Previously deposited on-chain:", q.swapAmountSat),
    line("Receive off-chain:", q.receiveSat),
    line("Estimated total fee:", q.swapFeeSat),
    ...(q.changeSat > 0n ? [line("Change back to the static address:", q.changeSat)] : []),
    `Deposits (${q.deposits.length}): ${q.deposits.map(outpointOf).join(", ")}`,
  ];
}

/** `--json` of `loopin`: Loop's `StaticAddressLoopInResponse` fields (spec §1.5) plus loopkit's. */
export function initiateJson(r: InitiateResult) {
  const csv = r.quote.address.expiry;
  return {
    swap_hash: toHex(r.swapHash),
    state: r.state,
    amount: r.quote.totalDepositSat.toString(),
    htlc_cltv: r.htlcExpiry,
    quoted_swap_fee_satoshis: r.quote.swapFeeSat.toString(),
    max_swap_fee_satoshis: r.maxSwapFeeSat.toString(),
    initiation_height: r.initiationHeight,
    protocol_version: "V0",
    label: r.label,
    initiator: r.initiator,
    payment_timeout_seconds: r.paymentTimeoutSeconds,
    used_deposits: r.quote.deposits.map((d) => ({
      ...depositJson({ ...d, state: "LoopingIn", swapHash: toHex(r.swapHash) }, csv, r.quote.tipHeight),
    })),
    swap_amount: r.quote.swapAmountSat.toString(),
    change: r.quote.changeSat.toString(),
    fast: r.fast,
    armed: r.armed,
    invoice_amount_msat: r.invoiceValueMsat.toString(),
    payment_request: r.paymentRequest,
    htlc_txids: r.htlcTxids,
    htlc_fee_rates_sat_per_kw: {
      standard: r.feeRates.standard.toString(),
      high: r.feeRates.high.toString(),
      extreme: r.feeRates.extreme.toString(),
    },
    push_error: r.pushError
      ? { code: r.pushError.code, message: r.pushError.message, exit_code: r.pushError.exitCode }
      : null,
  };
}

function initiateText(r: InitiateResult): string[] {
  return [
    `swap hash      ${toHex(r.swapHash)}`,
    `state          ${r.state}${r.armed ? " (HTLC signatures handed to the server)" : ""}`,
    `swap amount    ${r.quote.swapAmountSat} sat (deposits ${r.quote.totalDepositSat} sat, change ${r.quote.changeSat} sat)`,
    `swap fee       ${r.quote.swapFeeSat} sat (max ${r.maxSwapFeeSat} sat); invoice ${r.invoiceValueMsat} msat`,
    `HTLC CLTV      ${r.htlcExpiry} (initiated at height ${r.initiationHeight}); payment timeout ${r.paymentTimeoutSeconds} s`,
    `deposits       ${r.quote.deposits.map(outpointOf).join(", ")}`,
    "next           run `loopkit loopin sync` until the swap is Succeeded",
  ];
}

/** Reads one line from a terminal's stdin. */
async function readLine(): Promise<string> {
  const buf = new Uint8Array(1024);
  let text = "";
  while (!text.includes("\n")) {
    const n = await Deno.stdin.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text.trim();
}

// ---------------------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------------------

/** Flags only `loopin` (initiation) takes; refused on the subcommands. */
const INITIATE_ONLY: (keyof LoopInFlags)[] = [
  "maxSwapFeeSat",
  "maxSwapFeePpm",
  "paymentTimeout",
  "label",
  "force",
];
const SELECTION: (keyof LoopInFlags)[] = ["all", "fast", "lastHop", "private"];

function refuseFlags(opts: LoopInFlags, names: (keyof LoopInFlags)[], cmd: string): void {
  for (const n of names) {
    if (opts[n] !== undefined && opts[n] !== false) {
      const flag = "--" + String(n).replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
      throw usageError(`${flag} does not apply to \`loopin ${cmd}\``);
    }
  }
  if (opts.utxo.length && names.includes("all")) {
    throw usageError(`--utxo does not apply to \`loopin ${cmd}\``);
  }
}

/** Registers `loopin` and its subcommands. */
export function registerLoopIn(program: Command): void {
  // Commander lets a parent's options be given after a subcommand's name, and a parent's values override a
  // subcommand's of the same name: every flag is therefore declared once, here, and each subcommand refuses
  // the ones that do not apply to it.
  const loopin = program.command("loopin")
    .description(
      "swap static-address deposits for an off-chain payment to this node (quote, initiate and sign in one " +
        "run; `loopin sync` follows it to the end)",
    )
    .argument("[amount]", "amount in sat (with --utxo/--all: all of the selected deposits when omitted)")
    .option(
      "--utxo <txid:vout>",
      "use this deposit (repeatable; the order is the HTLC input order)",
      collect,
      [],
    )
    .option("--all", "use every deposit that is Deposited")
    .option("--fast", "ask the server to sweep the deposits sooner")
    .option("--last-hop <pubkey>", "the last hop of the payment to this node (hex)")
    .option("--private", "generate route hints for private channels (not supported yet)")
    .option("--max-swap-fee-sat <sat>", "refuse a swap fee above this (default: the quoted fee)")
    .option("--max-swap-fee-ppm <ppm>", "refuse a swap fee above this share of the swap amount")
    .option("--payment-timeout <duration>", "how long the server has to pay once it accepted (default: 60s)")
    .option("--label <text>", "a label for the swap (at most 500 bytes)")
    .option("--force", "skip the confirmation prompt (needed without a terminal)")
    .option("--listen <duration>", "`loopin sync`: how long to hold the server's notification stream")
    .option("--swapserver <host:port>", "swap server address (default: Loop's server for the network)")
    .option("--swapserver-tls", "use TLS to the swap server", true)
    .option("--no-swapserver-tls", "plaintext to a local swap server on a loopback address")
    .option("--swapserver-tlscert <path>", "PEM certificate to trust for the swap server")
    .option("--max-l402-cost-sat <sat>", "highest L402 price paid automatically (default: 1000)")
    .action(action<LoopInFlags>(async (ctx, opts, args) => {
      refuseFlags(opts, ["listen"], "");
      const req = loopInRequest(opts, args);
      const maxSwapFeeSat = parseWholeFlag("--max-swap-fee-sat", opts.maxSwapFeeSat, "sat");
      const maxSwapFeePpm = parseWholeFlag("--max-swap-fee-ppm", opts.maxSwapFeePpm, "ppm");
      const paymentTimeoutSeconds = opts.paymentTimeout === undefined
        ? 0
        : parseDurationSec("--payment-timeout", opts.paymentTimeout);
      const interactive = Deno.stdin.isTerminal();
      if (!opts.force && !interactive) {
        throw usageError(
          "No terminal to confirm the swap on: pass --force to initiate without the prompt",
          "confirmation_required",
        );
      }
      const server = await openServer(ctx, opts);
      const lock = await takeInitiationLock(ctx.config.dataDir);
      const controller = holdInterrupts(
        "undoing the loop-in (abandon, cancel the invoice, release the deposits)",
      );
      try {
        const deps = await loopInDeps(ctx, server, controller.signal);
        const r = await withLoopKitFlagNames(initiateLoopIn(deps, {
          ...req,
          maxSwapFeeSat,
          maxSwapFeePpm,
          paymentTimeoutSeconds,
          label: opts.label,
          confirm: async (q, cap) => {
            const warning = formatLowConfirmationWarning(q.lowConfirmation);
            if (warning) diag(warning);
            if (opts.force) return true;
            for (const l of quoteText(q)) diag(l);
            diag(line("Maximum swap fee:", cap));
            await Deno.stderr.write(new TextEncoder().encode("\nCONTINUE SWAP? (y/n): "));
            return (await readLine()) === "y";
          },
        }));
        if (ctx.config.json) out(toJson(initiateJson(r)));
        else for (const l of initiateText(r)) out(l);
        if (r.pushError) {
          diag(
            `loopkit: handing the HTLC signatures to the server failed (${r.pushError.message}); the swap is ` +
              "armed (the server may hold them): run `loopkit loopin sync`",
          );
          return r.pushError.exitCode;
        }
        if (controller.signal.aborted) return ExitCode.Interrupted;
        return ExitCode.Ok;
      } finally {
        releaseInterrupts();
        lock.release();
        server.close();
      }
    }));

  loopin.command("quote")
    .description(
      "the swap fee for a loop-in of these deposits or this amount (writes nothing but a deposit sync)",
    )
    .argument("[amount]", "amount in sat")
    .action(action<LoopInFlags>(async (ctx, opts, args) => {
      refuseFlags(opts, [...INITIATE_ONLY, "listen"], "quote");
      const req = loopInRequest(opts, args);
      const server = await openServer(ctx, opts);
      try {
        const q = await quoteLoopIn(await loopInDeps(ctx, server), req);
        if (ctx.config.json) out(toJson(quoteJson(q)));
        else {
          for (const l of quoteText(q)) out(l);
          const warning = formatLowConfirmationWarning(q.lowConfirmation);
          if (warning) diag(warning);
        }
        return ExitCode.Ok;
      } finally {
        server.close();
      }
    }));

  loopin.command("sync")
    .description("one reconcile-and-act cycle over every pending loop-in (safe to run from a timer)")
    .action(action<LoopInFlags>(async (ctx, opts, args) => {
      refuseFlags(opts, [...INITIATE_ONLY, ...SELECTION], "sync");
      if (args.length) throw usageError("`loopin sync` takes no arguments");
      const listenSec = opts.listen === undefined ? undefined : parseDurationSec("--listen", opts.listen);
      return await runSync(ctx, opts, listenSec);
    }));

  loopin.command("list")
    .description("list loop-ins (pending and recent; --all for every one); works offline")
    .option("--all", "every loop-in, final ones included")
    .action(action<LoopInFlags>(async (ctx, opts, args) => {
      refuseFlags(opts, [...INITIATE_ONLY, "fast", "lastHop", "private", "listen"], "list");
      if (args.length) throw usageError("`loopin list` takes no arguments");
      return await runList(ctx, Boolean(opts.all));
    }));

  loopin.command("show")
    .description("one loop-in with its deposits and history; works offline")
    .argument("<swap_hash>", "the swap hash (hex)")
    .action(action<LoopInFlags>(async (ctx, opts, args) => {
      refuseFlags(opts, [...INITIATE_ONLY, ...SELECTION, "listen"], "show");
      const [hash] = args;
      if (!/^[0-9a-fA-F]{64}$/.test(hash ?? "")) {
        throw usageError(`Invalid swap hash "${hash}": expected 64 hex characters`);
      }
      return await runShow(ctx, hash.toLowerCase());
    }));
}

// ---------------------------------------------------------------------------------------------------------
// sync / list / show: core/loopin/sync.ts (E1's syncLoopIns / listLoopIns / showLoopIn)
// ---------------------------------------------------------------------------------------------------------

/** `--json` of `loopin sync`. */
export function syncJson(r: LoopInSyncResult) {
  const err = (e?: { code: string; message: string; exitCode: number }) =>
    e ? { code: e.code, message: e.message, exit_code: e.exitCode } : null;
  return {
    tip_height: r.tipHeight,
    server_contacted: r.serverContacted,
    swaps: r.swaps.map((s) => ({
      swap_hash: s.swapHash,
      state_before: s.stateBefore,
      state: s.state,
      actions: s.actions,
      waiting_for: s.waitingFor,
      error: err(s.error),
    })),
    notifications: r.notifications.map((n) => ({ kind: n.kind, swap_hash: n.swapHash, result: n.result })),
    listen_error: err(r.listenError),
  };
}

function syncText(r: LoopInSyncResult): string[] {
  if (!r.swaps.length && !r.notifications.length) return ["no pending loop-ins"];
  const lines = [`tip height ${r.tipHeight}`];
  for (const s of r.swaps) {
    const moved = s.stateBefore === s.state ? s.state : `${s.stateBefore} -> ${s.state}`;
    lines.push(`${s.swapHash}  ${moved}${s.actions.length ? `  (${s.actions.join("; ")})` : ""}`);
    if (s.waitingFor) lines.push(`  waiting for ${s.waitingFor}`);
    if (s.error) lines.push(`  error: ${s.error.message}`);
  }
  for (const n of r.notifications) lines.push(`notification ${n.kind} ${n.swapHash}: ${n.result}`);
  if (r.listenError) lines.push(`notification stream: ${r.listenError.message}`);
  return lines;
}

/**
 * `loopin sync`: lnd and the swap server are opened only when a swap needs them, so with nothing pending
 * it contacts neither. SIGINT/SIGTERM stops the listening; the current step finishes, then exit 130.
 */
async function runSync(ctx: Context, opts: LoopInFlags, listenSec: number | undefined): Promise<number> {
  // No database: nothing was ever initiated (and none is created). Otherwise sync writes: the writable handle.
  if (!(await ctx.existingDb())) {
    if (ctx.config.json) {
      out(toJson(syncJson({ tipHeight: 0, swaps: [], serverContacted: false, notifications: [] })));
    } else out("no pending loop-ins");
    return ExitCode.Ok;
  }
  const db = await ctx.db();
  const node = async () => (await ctx.lnd()).lnd;
  const lnd: SyncLoopInLnd = {
    getInfo: async () => (await node()).getInfo(),
    lookupInvoice: async (h) => (await node()).lookupInvoice(h),
    cancelInvoice: async (h) => (await node()).cancelInvoice(h),
    registerConfirmation: async (t, p, n, h, o) => (await node()).registerConfirmation(t, p, n, h, o),
    registerSpend: async (op, p, h, o) => (await node()).registerSpend(op, p, h, o),
    listUnspent: async (min, max, o) => (await node()).listUnspent(min, max, o),
    signOutputRaw: async (tx, d, p) => (await node()).signOutputRaw(tx, d, p),
    publishTransaction: async (tx, l) => (await node()).publishTransaction(tx, l),
    estimateFeeSatPerKw: async (c) => (await node()).estimateFeeSatPerKw(c),
    muSig2CreateSession: async (r) => (await node()).muSig2CreateSession(r),
    muSig2RegisterNonces: async (id, n) => (await node()).muSig2RegisterNonces(id, n),
    muSig2Sign: async (id, d, c) => (await node()).muSig2Sign(id, d, c),
    muSig2Cleanup: async (id) => (await node()).muSig2Cleanup(id),
  };
  let server: SwapServerClient | undefined;
  const controller = holdInterrupts("stopping after the current step");
  setInterruptHold(true);
  try {
    const r = await syncLoopIns({
      db,
      network: ctx.config.network,
      lnd,
      server: async () => server ??= await openServer(ctx, opts),
      log: diag,
      signal: controller.signal,
      ownerAlive: initiationOwnerAlive(ctx.config.dataDir),
    }, { listenMs: listenSec === undefined ? undefined : listenSec * 1000 });
    if (ctx.config.json) out(toJson(syncJson(r)));
    else for (const l of syncText(r)) out(l);
    if (controller.signal.aborted) return ExitCode.Interrupted;
    return syncExitCode(r);
  } finally {
    releaseInterrupts();
    server?.close();
  }
}

function swapLine(v: LoopInView): string {
  const s = v.swap;
  return `${s.swapHashHex}  ${s.state.padEnd(23)}  ${s.swapAmountSat.toString().padStart(10)} sat  ` +
    `${s.deposits.length} deposit(s)${s.armedAt ? "  armed" : ""}${s.label ? `  "${s.label}"` : ""}` +
    (v.waitingFor ? `  (${v.waitingFor})` : "");
}

async function runList(ctx: Context, all: boolean): Promise<number> {
  const db = await ctx.existingDb();
  const views = db ? await listLoopIns(db, { all }) : [];
  if (ctx.config.json) out(toJson({ swaps: views.map(loopInViewJson) }));
  else if (!views.length) out(all ? "no loop-ins" : "no pending or recent loop-ins (--all lists every one)");
  else for (const v of views) out(swapLine(v));
  return ExitCode.Ok;
}

async function runShow(ctx: Context, hash: string): Promise<number> {
  const db = await ctx.existingDb();
  if (!db) throw new LoopkitError("loopin_not_found", `No loop-in with swap hash ${hash} (no database)`);
  const v = await showLoopIn(db, hash);
  if (ctx.config.json) {
    out(toJson(loopInViewJson(v)));
    return ExitCode.Ok;
  }
  const swap = v.swap;
  out(`swap hash      ${swap.swapHashHex}`);
  out(`state          ${swap.state}${swap.armedAt ? ` (armed ${swap.armedAt.toISOString()})` : ""}`);
  if (v.waitingFor) out(`waiting for    ${v.waitingFor}`);
  out(
    `swap amount    ${swap.swapAmountSat} sat (deposits ${swap.totalDepositSat} sat, change ${swap.changeSat} sat)`,
  );
  out(`swap fee       ${swap.quotedSwapFeeSat} sat (max ${swap.maxSwapFeeSat} sat)`);
  if (swap.htlcExpiry !== null) out(`HTLC CLTV      ${swap.htlcExpiry}`);
  if (swap.sweeplessSigned) out(`sweep          ${swap.sweeplessSigned.txid} (cooperative, signed)`);
  if (swap.lastError) out(`last error     ${swap.lastError}`);
  for (const d of swap.deposits) {
    out(`deposit        ${d.outpoint}  ${d.amountSat} sat  ${d.state}${d.released ? "  (released)" : ""}`);
  }
  for (const h of v.history) {
    out(
      `  ${h.at.toISOString()}  ${h.state}${h.event ? ` ${h.event}` : ""}${h.reason ? `: ${h.reason}` : ""}`,
    );
  }
  return ExitCode.Ok;
}
