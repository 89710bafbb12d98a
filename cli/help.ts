/**
 * The global flags and the top-level help, without commander: `loopkit --help` (and `loopkit` alone) print
 * this text straight away, and `cli/main.ts` defines the same flags on commander's program and renders its
 * root help with {@linkcode rootHelp}, so both paths print one text. Laid out like commander's help
 * (two-space indent, aligned descriptions wrapped at 80 columns).
 *
 * @module
 */
import type { CommandEntry } from "./commands.ts";

/** Version printed by `--version`. */
export const VERSION = "0.1.0";

/** Description of the program. */
export const PROGRAM_DESCRIPTION =
  "Keep Lightning Loop static-address funds safe and usable without the Loop daemon";

/** One global flag: commander's flag syntax (`--network <name>`) and its help text. */
export interface GlobalOption {
  flags: string;
  description: string;
}

/** The global flags (README "Usage"); each also from `LOOPKIT_<FLAG>` (core/config). */
export const GLOBAL_OPTIONS: readonly GlobalOption[] = [
  {
    flags: "--network <name>",
    description: "mainnet, testnet, testnet4, signet, regtest or simnet (default: mainnet)",
  },
  {
    flags: "--loopdir <dir>",
    description: "Loop base directory; the data dir is <loopdir>/<network> (default: ~/.loop)",
  },
  { flags: "--db <url>", description: "libSQL database URL (default: file:<datadir>/loopkit.db)" },
  { flags: "--rpcserver <host:port>", description: "lnd gRPC address (default: localhost:10009)" },
  { flags: "--lnddir <dir>", description: "lnd base directory (default: ~/.lnd)" },
  { flags: "--tlscertpath <path>", description: "lnd TLS certificate (default: <lnddir>/tls.cert)" },
  {
    flags: "--macaroonpath <path>",
    description: "lnd macaroon (default: <lnddir>/data/chain/bitcoin/<network>/admin.macaroon)",
  },
  { flags: "--json", description: "print stable snake_case JSON on stdout" },
];

/** The global flags that take a value (`--network regtest`), by name: for finding the command word. */
export const VALUE_FLAGS: ReadonlySet<string> = new Set(
  GLOBAL_OPTIONS.filter((o) => o.flags.includes("<")).map((o) => o.flags.split(" ")[0]),
);

const WIDTH = 80;

/** Greedy word wrap at whitespace, like commander's `boxWrap`. */
function wrap(text: string, width: number): string[] {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = "";
  for (const w of words) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else {
      line = line ? `${line} ${w}` : w;
    }
  }
  if (line) lines.push(line);
  return lines;
}

function items(rows: [string, string][], termWidth: number): string[] {
  const out: string[] = [];
  const descWidth = WIDTH - termWidth - 4;
  for (const [term, desc] of rows) {
    const lines = wrap(desc, descWidth);
    out.push(`  ${term.padEnd(termWidth)}  ${lines[0] ?? ""}`.trimEnd());
    for (const l of lines.slice(1)) out.push(`  ${" ".repeat(termWidth)}  ${l}`);
  }
  return out;
}

/** The top-level help text (ends with a newline), listing `commands` in order. */
export function rootHelp(commands: readonly CommandEntry[]): string {
  const options: [string, string][] = [
    ["-V, --version", "output the version number"],
    ...GLOBAL_OPTIONS.map((o): [string, string] => [o.flags, o.description]),
    ["-h, --help", "display help for command"],
  ];
  const cmds: [string, string][] = [
    ...commands.map((c): [string, string] => [c.name, c.summary]),
    ["help [command]", "display help for command"],
  ];
  const termWidth = Math.max(...[...options, ...cmds].map(([t]) => t.length));
  return [
    "Usage: loopkit [options] [command]",
    "",
    ...wrap(PROGRAM_DESCRIPTION, WIDTH),
    "",
    "Options:",
    ...items(options, termWidth),
    "",
    "Commands:",
    ...items(cmds, termWidth),
    "",
  ].join("\n");
}

/**
 * What `argv` asks for before any command file is loaded: the top-level help (`[]`, `--help`, `-h`, `help`,
 * also after global flags), the version, or a command word (the first word that is not a global flag or its
 * value; undefined when there is none).
 */
export function scanArgv(argv: readonly string[]): { help: boolean; version: boolean; command?: string } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") break;
    if (a === "-h" || a === "--help") return { help: true, version: false };
    if (a === "-V" || a === "--version") return { help: false, version: true };
    if (a.startsWith("-")) {
      if (VALUE_FLAGS.has(a)) i++;
      continue;
    }
    if (a === "help") {
      const next = argv.slice(i + 1).find((x) => !x.startsWith("-"));
      return next === undefined
        ? { help: true, version: false }
        : { help: false, version: false, command: next };
    }
    return { help: false, version: false, command: a };
  }
  return { help: argv.length === 0, version: false };
}
