/**
 * Test helpers for the systemd units beside this file: a small reader of unit files (sections, repeated keys in
 * order, comments and blank lines skipped) and systemd's `$VAR` / `${VAR}` expansion of `ExecStart=` lines
 * (systemd.service(5) "Command lines": `${VAR}` is one word, `$VAR` splits on whitespace, an empty `$VAR`
 * adds no word).
 *
 * @module
 */

/** A parsed unit: section → key → values in file order (a key may repeat, e.g. `ExecStart=`). */
export type Unit = Record<string, Record<string, string[]>>;

/** Directory of the unit files. */
export const UNIT_DIR = new URL(".", import.meta.url).pathname;

/** The binary path the units run. */
export const LOOPKIT_BIN = "/usr/local/bin/loopkit";

/** Parses a unit file's text. */
export function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const m = /^\[(.+)\]$/.exec(line);
    if (m) {
      section = m[1];
      unit[section] ??= {};
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0) throw new Error(`unit line without "=": ${line}`);
    const key = line.slice(0, eq).trim();
    (unit[section][key] ??= []).push(line.slice(eq + 1).trim());
  }
  return unit;
}

/** Reads and parses `name` from {@linkcode UNIT_DIR}. */
export async function readUnit(name: string): Promise<Unit> {
  return parseUnit(await Deno.readTextFile(UNIT_DIR + name));
}

/** `Environment=` assignments of a unit (`KEY=value`, optionally quoted), later ones winning. */
export function unitEnvironment(unit: Unit): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of unit.Service?.Environment ?? []) {
    const s = v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
    const eq = s.indexOf("=");
    env[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return env;
}

/** Splits one `ExecStart=` value into argv with systemd's variable expansion from `env`. */
export function expandExec(line: string, env: Record<string, string>): string[] {
  const argv: string[] = [];
  for (const word of line.split(/\s+/).filter(Boolean)) {
    const braced = /^\$\{(\w+)\}$/.exec(word);
    const bare = /^\$(\w+)$/.exec(word);
    if (braced) argv.push(env[braced[1]] ?? "");
    else if (bare) argv.push(...(env[bare[1]] ?? "").split(/\s+/).filter(Boolean));
    else argv.push(word.replace(/\$\{(\w+)\}/g, (_, k) => env[k] ?? ""));
  }
  return argv;
}
