/**
 * The subcommands, loaded lazily: `loopkit --help` reads only this table, and a run loads only the file of
 * the command it runs (no gRPC, protobuf or libSQL for help; see bench/README.md "Start-up").
 *
 * Adding a command is one line here: its file exports `registerX(program)` in the usual style, e.g.
 * `{ name: "loopin", summary: "…", load: fromFile("./loopin.ts", "registerLoopin") },`.
 * `summary` is what `loopkit --help` lists; it must equal the description `registerX` gives the command.
 * `deno compile` cannot follow these imports, so deno.json's compile task names each file with `--include`
 * (tests/cli/startup_test.ts checks both).
 *
 * @module
 */
import { lazyImport } from "./lazy.ts";
import type { FastCommand } from "./fast_path.ts";

/** A subcommand file's registration function (`registerBackup(program)`): adds one command to commander's program. */
// deno-lint-ignore no-explicit-any
export type Register = (program: any) => void;

/** A command file's namespace, as far as this table knows it (usage_test.ts loads every entry). */
type Mod = Record<string, Register>;

/** `load` of a command in `cli/<file>` whose registration function is `fn`. */
function fromFile(file: string, fn: string): () => Promise<Register> {
  return async () => {
    const register = (await lazyImport<Mod>(new URL(file, import.meta.url)))[fn];
    if (typeof register !== "function") {
      throw new Error(`cli/${file.replace(/^\.\//, "")} exports no ${fn}()`);
    }
    return register;
  };
}

/** `load` of the commander-free subcommands (cli/fast_path.ts) that `cli/<file>` exports as `FAST_COMMANDS`. */
function fastFrom(file: string): () => Promise<readonly FastCommand[]> {
  return async () => {
    const fast =
      (await lazyImport<{ FAST_COMMANDS?: readonly FastCommand[] }>(new URL(file, import.meta.url)))
        .FAST_COMMANDS;
    if (!Array.isArray(fast)) throw new Error(`cli/${file.replace(/^\.\//, "")} exports no FAST_COMMANDS`);
    return fast;
  };
}

/** One top-level command. */
export interface CommandEntry {
  /** The command word, e.g. `deposits`. */
  name: string;
  /** One-line description for `loopkit --help`. */
  summary: string;
  /** Imports the command's file and returns its registration function. */
  load: () => Promise<Register>;
  /**
   * The subcommands that run without commander on a plain command line (cli/fast_path.ts), e.g.
   * `deposits list`; commander parses everything else.
   */
  fast?: () => Promise<readonly FastCommand[]>;
}

/** Every top-level command, in `--help` order. */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: "backup",
    summary: "Loop-compatible encrypted backups (one per paid L402)",
    load: fromFile("./backup.ts", "registerBackup"),
  },
  {
    name: "deposits",
    summary: "static-address deposits",
    load: fromFile("./deposits.ts", "registerDeposits"),
    fast: fastFrom("./deposits.ts"),
  },
  {
    name: "address",
    summary: "the static address (one per paid L402 token)",
    load: fromFile("./address.ts", "registerAddress"),
  },
  {
    name: "recover",
    summary:
      "restore the L402 token and static addresses from a backup (lost database, data directory or lnd)",
    load: fromFile("./recover.ts", "registerRecover"),
  },
  {
    name: "status",
    summary:
      "one-glance health check: lnd, the static address, deposits and expiry, sweeps, the backup and its " +
      "copies, stale temporary files (exit 0 all well, 1 attention needed, 75 could not tell)",
    load: fromFile("./status.ts", "registerStatus"),
  },
  {
    name: "l402",
    summary: "the L402 token the static address is bound to",
    load: fromFile("./l402.ts", "registerL402"),
  },
  {
    name: "loopin",
    summary:
      "swap static-address deposits for an off-chain payment to this node (quote, initiate and sign in one " +
      "run; `loopin sync` follows it to the end)",
    load: fromFile("./loopin.ts", "registerLoopIn"),
  },
];
