/**
 * The commander-free path for a few read-only leaf commands (`deposits list`, `deposits summary`): commander
 * imports `node:fs`, `node:child_process` and `node:process`, and loading those starts Deno's Node
 * compatibility layer, which costs more than the rest of such a command (bench/README.md "Start-up").
 *
 * This is not a second parser with its own rules: {@linkcode parseFast} accepts only the plain command lines
 * whose meaning under commander is certain (the command's words in order, known `--long` flags, a value
 * after a flag that takes one, global flags anywhere) and returns what commander's `optsWithGlobals()`
 * would give for them. Anything else — `--help`, `-h`, `--`, an unknown flag, a missing value, a value that
 * starts with `-`, an extra word, a short flag — returns undefined and the command line goes to commander,
 * which prints its usual help and errors. `cli/fast_path_test.ts` compares both on generated command lines.
 *
 * A command's flags are declared once ({@linkcode FlagSpec}) and registered on commander from the same table
 * ({@linkcode addFlags}), so the help text and the fast path cannot drift apart.
 *
 * @module
 */
import { GLOBAL_OPTIONS } from "./help.ts";
import type { Action } from "./context.ts";

/** One `--long` flag of a command, as commander declares it. */
export interface FlagSpec {
  /** Commander's flag syntax: `--all` (boolean) or `--state <state>` (takes a value). */
  flags: string;
  /** The help text. */
  description: string;
  /** The flag may be given several times; its value is the list of values (default `[]`). */
  repeatable?: boolean;
}

/** A leaf command runnable without commander (e.g. `deposits list`). */
export interface FastCommand {
  /** The command words, e.g. `["deposits", "list"]`. */
  path: readonly string[];
  /** Its own flags (the global ones are {@linkcode GLOBAL_OPTIONS}). */
  options: readonly FlagSpec[];
  /** The body commander's `.action(action(run))` runs. */
  // deno-lint-ignore no-explicit-any
  run: Action<any>;
}

/** `value` appended to `previous`: commander's argument parser for a repeatable flag. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Minimal view of a commander `Command` (no import of commander here). */
interface OptionTarget {
  option(
    flags: string,
    description: string,
    parse?: (v: string, p: string[]) => string[],
    dflt?: string[],
  ): this;
}

/** Registers `flags` on a commander command, in order (repeatable ones with {@linkcode collect} and `[]`). */
export function addFlags<C extends OptionTarget>(cmd: C, flags: readonly FlagSpec[]): C {
  for (const f of flags) {
    if (f.repeatable) cmd.option(f.flags, f.description, collect, []);
    else cmd.option(f.flags, f.description);
  }
  return cmd;
}

interface Flag {
  /** commander's attribute name: `--sweep-conf-target` → `sweepConfTarget`. */
  key: string;
  takesValue: boolean;
  repeatable: boolean;
}

/**
 * The flags of `specs` by their `--name`, or undefined when one is of a form the fast path does not handle
 * (a short alias, an optional or variadic value, a `--no-` negation): such a command always goes to commander.
 */
function flagTable(specs: readonly FlagSpec[]): Map<string, Flag> | undefined {
  const table = new Map<string, Flag>();
  for (const s of specs) {
    const m = /^(--[a-z][a-z0-9-]*)(?: <[^<>\s.]+>)?$/.exec(s.flags);
    if (!m || m[1].startsWith("--no-")) return undefined;
    const key = m[1].slice(2).replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    table.set(m[1], { key, takesValue: s.flags.includes("<"), repeatable: s.repeatable === true });
  }
  return table;
}

/**
 * Parses `argv` (without the runtime and script) for the leaf command `path` with its flags `options`, the
 * way commander would, or declines.
 *
 * Accepted: the words of `path` in order and nothing else that is not a flag; global flags
 * ({@linkcode GLOBAL_OPTIONS}) anywhere; the command's own flags after its last word; `--flag value` and
 * `--flag=value` for a flag that takes a value (the last one given wins, a repeatable one collects), `--flag`
 * for a boolean one.
 *
 * @returns commander's `optsWithGlobals()` for `argv` (camelCase keys; booleans `true`; repeatable flags a
 *   list, `[]` when absent; absent flags absent), or undefined when `argv` is not such a plain command line
 *   (commander must parse it: help, errors, anything unusual)
 */
export function parseFast(
  argv: readonly string[],
  path: readonly string[],
  options: readonly FlagSpec[],
): Record<string, unknown> | undefined {
  const globals = flagTable(GLOBAL_OPTIONS);
  const own = flagTable(options);
  if (!globals || !own || [...own.keys()].some((k) => globals.has(k))) return undefined;
  const opts: Record<string, unknown> = {};
  for (const f of own.values()) if (f.repeatable) opts[f.key] = [];
  let words = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("-")) {
      if (arg !== path[words]) return undefined; // another command, an argument, `help`: commander's
      words++;
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const flag = globals.get(name) ?? (words === path.length ? own.get(name) : undefined);
    if (!flag) return undefined; // `--`, -h, --help, -V, unknown, a flag before its command's word
    if (!flag.takesValue) {
      if (eq >= 0) return undefined; // `--json=true`: commander refuses it
      opts[flag.key] = true;
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === "" || value.startsWith("-")) return undefined;
    opts[flag.key] = flag.repeatable ? [...opts[flag.key] as string[], value] : value;
  }
  return words === path.length ? opts : undefined;
}
