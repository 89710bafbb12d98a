/**
 * loopkit command-line entry. Thin: parses flags, calls core, renders; every subcommand lives in its own file,
 * loaded only when it runs (`cli/commands.ts`). `loopkit --help` prints the top-level help without loading
 * commander or any command file.
 *
 * Usage: `loopkit [global flags] <command> [flags]`; `loopkit --help` lists everything.
 *
 * @module
 */
import type { Command, CommanderError, Help } from "commander";
import { ExitCode, LoopkitError } from "../core/errors.ts";
import { parseBooleanEnv } from "../core/config/config.ts";
import { COMMANDS } from "./commands.ts";
import { GLOBAL_OPTIONS, PROGRAM_DESCRIPTION, rootHelp, scanArgv, VERSION } from "./help.ts";
import { lazyImport } from "./lazy.ts";
import { parseFast } from "./fast_path.ts";
import type * as ContextModule from "./context.ts";
import { reportError } from "./report.ts";
import {
  interruptedError,
  isInterrupted,
  requestInterrupt,
  rollbackActive,
  takeInterruptHook,
} from "../core/interrupt.ts";

export { VERSION };

/** What main.ts uses of commander (types only here; the package is imported when a command runs). */
interface Commander {
  Command: typeof Command;
  CommanderError: typeof CommanderError;
  Help: typeof Help;
}
type Program = Command;

/**
 * Builds the command tree with commander. Only the command named by `load` is imported and registered;
 * every other command is a placeholder carrying its `--help` summary (so the root help and "unknown command"
 * errors know them all). `load: "all"` registers every command (tests that inspect the help).
 */
export async function buildProgram(
  opts: { json?: boolean; load?: string | "all" } = {},
): Promise<Program> {
  const { Command, Help } = await lazyImport<Commander>("commander");
  const program = new Command("loopkit")
    .description(PROGRAM_DESCRIPTION)
    .version(VERSION);
  for (const o of GLOBAL_OPTIONS) program.option(o.flags, o.description);
  program.showHelpAfterError().exitOverride();
  const defaultFormat = Help.prototype.formatHelp;
  const defaultOptionDescription = Help.prototype.optionDescription;
  program.configureHelp({
    formatHelp: (
      cmd,
      helper,
    ) => (cmd === program ? rootHelp(COMMANDS) : defaultFormat.call(helper, cmd, helper)),
    // One format for defaults everywhere: "(default: 20)", as the global flags write it; commander would
    // print string defaults quoted ("20") and empty lists as [].
    optionDescription: (option) =>
      defaultOptionDescription.call(new Help(), option)
        .replace(/ ?\(default: \[\]\)/, "")
        .replace(/\(default: "([^"]*)"\)/, "(default: $1)"),
  });
  for (const c of COMMANDS) {
    if (opts.load === "all" || opts.load === c.name) (await c.load())(program);
    else program.command(c.name).description(c.summary);
  }
  if (opts.json) silenceCommander(program);
  return program;
}

/** With `--json`, usage errors are reported once, as the JSON error object on stderr (see {@linkcode main}). */
function silenceCommander(cmd: Program): void {
  cmd.configureOutput({ writeErr: () => {}, outputError: () => {} }).showHelpAfterError(false);
  for (const c of cmd.commands) silenceCommander(c);
}

/** Runs the CLI with `argv` (without the runtime and script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let json: boolean;
  try {
    json = wantsJson(argv);
  } catch (err) {
    return reportError(err, argv.includes("--json"));
  }
  const scan = scanArgv(argv);
  if (scan.help) {
    // No arguments: the help on stderr and exit 2 (a usage error); --help: on stdout, exit 0.
    if (argv.length === 0) {
      await Deno.stderr.write(new TextEncoder().encode(rootHelp(COMMANDS)));
      return ExitCode.Usage;
    }
    await Deno.stdout.write(new TextEncoder().encode(rootHelp(COMMANDS)));
    return ExitCode.Ok;
  }
  const entry = COMMANDS.find((c) => c.name === scan.command);
  if (entry?.fast) {
    // A plain `deposits list …`: no commander, so no Node compatibility layer (cli/fast_path.ts).
    const [fast, { runAction, takeExitCode }] = await Promise.all([
      entry.fast(),
      lazyImport<typeof ContextModule>(new URL("./context.ts", import.meta.url)),
    ]);
    for (const f of fast) {
      const opts = parseFast(argv, f.path, f.options);
      if (opts === undefined) continue;
      takeExitCode();
      await runAction(f.run, opts, []);
      return takeExitCode();
    }
  }
  // Commander, the context and the command's own file load in parallel (one wait, not three).
  const [{ CommanderError }, { takeExitCode }] = await Promise.all([
    lazyImport<Commander>("commander"),
    lazyImport<{ takeExitCode: () => number }>(new URL("./context.ts", import.meta.url)),
    entry?.load().catch(() => undefined),
  ]);
  takeExitCode();
  const program = await buildProgram({ json, load: scan.command });
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
  return takeExitCode();
}

/**
 * `--json` anywhere on the command line, or `LOOPKIT_JSON` true. Also checks `LOOPKIT_DEBUG`.
 * @throws {LoopkitError} exit 2 for a `LOOPKIT_JSON` or `LOOPKIT_DEBUG` that is not a boolean word
 */
function wantsJson(argv: string[]): boolean {
  parseBooleanEnv("LOOPKIT_DEBUG", Deno.env.get("LOOPKIT_DEBUG"));
  const env = parseBooleanEnv("LOOPKIT_JSON", Deno.env.get("LOOPKIT_JSON"));
  return argv.includes("--json") || env === true;
}

/** How long a command inside a rollback section gets to undo its writes after a signal, ms. */
const ROLLBACK_GRACE_MS = 30_000;

/**
 * SIGINT / SIGTERM: outside a rollback section nothing needs undoing, so exit 130 at once; inside one
 * (e.g. `recover` after writing `l402.token`), abort the work so the command rolls back and exits 130
 * itself (core/interrupt.ts). A second signal, or the grace period running out, exits at once.
 */
function onSignal(): void {
  // A command that handles the signal itself (a loop-in initiation unwinds, then exits 130: cli/loopin.ts).
  if (takeInterruptHook()) return;
  if (!isInterrupted() && rollbackActive()) {
    requestInterrupt();
    const t = setTimeout(() => exitInterrupted("the rollback did not finish in time"), ROLLBACK_GRACE_MS);
    Deno.unrefTimer(t);
    return;
  }
  exitInterrupted("nothing half-written is kept");
}

function exitInterrupted(detail: string): never {
  let json = false;
  try {
    json = wantsJson(Deno.args);
  } catch {
    // An invalid LOOPKIT_JSON was already reported; the interruption is reported as text.
  }
  reportError(interruptedError(detail), json);
  Deno.exit(ExitCode.Interrupted);
}

/**
 * The process entry: installs the SIGINT / SIGTERM handling, runs {@linkcode main} on `argv` and exits with its
 * code. `cli/main.ts` run as a program calls it; so does the tests' entry point `tests/cli/_hooked_main.ts`.
 */
export async function runProcess(argv: string[]): Promise<never> {
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const code = await main(argv);
  Deno.exit(code);
}

if (import.meta.main) await runProcess(Deno.args);
