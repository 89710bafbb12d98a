/**
 * loopkit command-line entry. Thin: parses flags, calls core, renders; every subcommand lives in its own file.
 *
 * Usage: `loopkit [global flags] <command> [flags]`; `loopkit --help` lists everything.
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import { ExitCode, LoopkitError } from "../core/errors.ts";
import type { GlobalFlags } from "../core/config/config.ts";
import { type Context, makeContext } from "./context.ts";
import { reportError } from "./output.ts";
import { registerBackup } from "./backup.ts";
import { registerDeposits } from "./deposits.ts";
import { registerAddress } from "./address.ts";
import { registerRecover } from "./recover.ts";
import { registerStatus } from "./status.ts";

/** Version printed by `--version`. */
export const VERSION = "0.1.0";

/** Exit code of the last subcommand run by {@linkcode main}. */
let exitCode: number = ExitCode.Ok;

/** A subcommand body: returns the exit code. */
export type Action<O> = (ctx: Context, opts: O, args: string[]) => Promise<number>;

/**
 * Wraps a subcommand body: builds the context from the global flags, maps errors to exit codes
 * (README "Exit codes") and always releases lnd and the database.
 */
export function action<O>(body: Action<O>) {
  return async (...params: unknown[]) => {
    const cmd = params[params.length - 1] as Command;
    const all = cmd.optsWithGlobals() as GlobalFlags & O;
    const args = params.slice(0, -2).flat() as string[];
    let ctx: Context | undefined;
    try {
      ctx = makeContext(all);
      exitCode = await body(ctx, all, args);
    } catch (err) {
      exitCode = reportError(err, ctx?.config.json ?? Boolean(all.json));
    } finally {
      await ctx?.close();
    }
  };
}

/** Builds the command tree (exported for tests that inspect the help). */
export function buildProgram(opts: { json?: boolean } = {}): Command {
  const program = new Command("loopkit")
    .description("Keep Lightning Loop static-address funds safe and usable without the Loop daemon")
    .version(VERSION)
    .option("--network <name>", "mainnet, testnet, testnet4, signet, regtest or simnet (default mainnet)")
    .option("--loopdir <dir>", "Loop base directory; the data dir is <loopdir>/<network> (default ~/.loop)")
    .option("--db <url>", "libSQL database URL (default file:<datadir>/loopkit.db)")
    .option("--rpcserver <host:port>", "lnd gRPC address (default localhost:10009)")
    .option("--lnddir <dir>", "lnd base directory (default ~/.lnd)")
    .option("--tlscertpath <path>", "lnd TLS certificate (default <lnddir>/tls.cert)")
    .option(
      "--macaroonpath <path>",
      "lnd macaroon (default <lnddir>/data/chain/bitcoin/<network>/admin.macaroon)",
    )
    .option("--json", "print stable snake_case JSON on stdout")
    .showHelpAfterError()
    .exitOverride();
  registerBackup(program);
  registerDeposits(program);
  registerAddress(program);
  registerRecover(program);
  registerStatus(program);
  if (opts.json) silenceCommander(program);
  return program;
}

/** With `--json`, usage errors are reported once, as the JSON error object on stderr (see {@linkcode main}). */
function silenceCommander(cmd: Command): void {
  cmd.configureOutput({ writeErr: () => {}, outputError: () => {} }).showHelpAfterError(false);
  for (const c of cmd.commands) silenceCommander(c);
}

/** Runs the CLI with `argv` (without the runtime and script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  exitCode = ExitCode.Ok;
  const json = wantsJson(argv);
  const program = buildProgram({ json });
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return ExitCode.Usage;
  }
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0) {
        return ExitCode.Ok;
      }
      if (err.code === "commander.help") return ExitCode.Ok;
      if (json) {
        reportError(new LoopkitError("usage", err.message.replace(/^error: /, ""), ExitCode.Usage), true);
      }
      return ExitCode.Usage;
    }
    return reportError(err, json);
  }
  return exitCode;
}

/** `--json` anywhere on the command line, or `LOOPKIT_JSON` set true. */
function wantsJson(argv: string[]): boolean {
  const env = Deno.env.get("LOOPKIT_JSON")?.toLowerCase();
  return argv.includes("--json") || env === "1" || env === "true" || env === "yes";
}

function onSignal(): void {
  reportError(
    new LoopkitError("interrupted", "Interrupted; nothing half-written is kept", ExitCode.Interrupted),
    wantsJson(Deno.args),
  );
  Deno.exit(ExitCode.Interrupted);
}

if (import.meta.main) {
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const code = await main(Deno.args);
  Deno.exit(code);
}
