/**
 * Configuration resolution, lncli/loop style: flag > `LOOPKIT_<FLAG>` env var > default.
 *
 * @module
 */
import { usageError } from "../errors.ts";
import { isNetworkName, NETWORK_NAMES, type NetworkName } from "../staticaddr/network.ts";
import { parseDbUrl } from "../db/url.ts";

/** A network loopkit accepts for `--network` (spec/static-address-and-deposits.md §2.6). */
export type Network = NetworkName;

/** The global flags, as given (all optional strings, like a command line). */
export interface GlobalFlags {
  network?: string;
  loopdir?: string;
  db?: string;
  rpcserver?: string;
  lnddir?: string;
  tlscertpath?: string;
  macaroonpath?: string;
  json?: boolean;
}

/** Resolved configuration shared by every subcommand. */
export interface Config {
  /** Bitcoin network, e.g. `regtest`. */
  network: Network;
  /** Loop's base directory (`--loopdir`, default `~/.loop`). */
  loopDir: string;
  /** Network data directory `<loopdir>/<network>`: `l402.token`, backup files, `loopkit.db`. */
  dataDir: string;
  /** libSQL URL of the loopkit database (`file:` by default). */
  dbUrl: string;
  /** The local file `dbUrl` names (what libSQL opens), or null for a remote or in-memory database. */
  dbFile: string | null;
  /** lnd gRPC `host:port`. */
  rpcServer: string;
  /** lnd base directory. */
  lndDir: string;
  /** lnd TLS certificate path. */
  tlsCertPath: string;
  /** lnd macaroon path (admin by default). */
  macaroonPath: string;
  /** `--json` output. */
  json: boolean;
}

/** Flag names that can also come from `LOOPKIT_<FLAG>` env vars. */
const STRING_FLAGS = [
  "network",
  "loopdir",
  "db",
  "rpcserver",
  "lnddir",
  "tlscertpath",
  "macaroonpath",
] as const;

/**
 * Name of the environment variable for a flag: `--tlscertpath` → `LOOPKIT_TLSCERTPATH`,
 * `--copy-to` → `LOOPKIT_COPY_TO`.
 */
export function envVarName(flag: string): string {
  return "LOOPKIT_" + flag.replace(/^-+/, "").replace(/-/g, "_").toUpperCase();
}

const TRUE_WORDS = ["1", "true", "yes", "on"];
const FALSE_WORDS = ["0", "false", "no", "off"];

/**
 * A boolean environment variable (`LOOPKIT_JSON`, `LOOPKIT_DEBUG`): `1`, `true`, `yes`, `on` or `0`, `false`,
 * `no`, `off` (any case); unset or empty is undefined.
 * @throws {LoopkitError} `config_invalid` (exit 2) naming the variable for any other value (`banana`)
 */
export function parseBooleanEnv(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined || value === "") return undefined;
  const v = value.trim().toLowerCase();
  if (TRUE_WORDS.includes(v)) return true;
  if (FALSE_WORDS.includes(v)) return false;
  throw usageError(
    `Invalid ${name} "${value}": expected one of ${[...TRUE_WORDS, ...FALSE_WORDS].join(", ")}`,
    "config_invalid",
  );
}

/**
 * A list of directories from an environment variable (`LOOPKIT_COPY_TO=/mnt/a:/mnt/b`), separated like
 * `PATH` (`:`, `;` on Windows); empty entries are dropped. Unset or empty is `[]`.
 */
export function parsePathListEnv(value: string | undefined): string[] {
  if (!value) return [];
  const sep = Deno.build.os === "windows" ? ";" : ":";
  return value.split(sep).filter((p) => p !== "");
}

/**
 * lnd's chain directory name for a network (`<lnddir>/data/chain/bitcoin/<name>/`).
 * lnd names testnet3 `testnet`.
 */
export function lndNetworkDirName(network: Network): string {
  return network;
}

/** Expands a leading `~` or `~/` with `home`. */
export function expandHome(path: string, home: string): string {
  if (path === "~") return home;
  if (path.startsWith("~/")) return home.replace(/\/+$/, "") + path.slice(1);
  return path;
}

function joinPath(...parts: string[]): string {
  return parts.map((p, i) => (i === 0 ? p.replace(/\/+$/, "") : p.replace(/^\/+|\/+$/g, ""))).join("/");
}

/**
 * Resolves the global configuration.
 *
 * Precedence per flag: explicit flag, then `LOOPKIT_<FLAG>` from `env`, then the default.
 * Defaults: `--network mainnet`, `--loopdir ~/.loop` (data dir `<loopdir>/<network>`, loopd's layout),
 * `--db file:<datadir>/loopkit.db`, `--rpcserver localhost:10009`, `--lnddir ~/.lnd`,
 * `--tlscertpath <lnddir>/tls.cert`, `--macaroonpath <lnddir>/data/chain/bitcoin/<network>/admin.macaroon`.
 *
 * @param flags flags given on the command line
 * @param env environment variables (e.g. `Deno.env.toObject()`)
 * @param home the user's home directory, for `~`
 * @throws {LoopkitError} `usage` (exit 2) for an unknown network or an empty value; `config_invalid` (exit 2)
 *   for a `LOOPKIT_JSON` that is not a boolean word ({@linkcode parseBooleanEnv}),
 *   for a malformed `--rpcserver` or `--db` (see `core/db/url.ts`: a `file:` URL takes no query parameters)
 */
export function resolveConfig(
  flags: GlobalFlags,
  env: Record<string, string | undefined>,
  home: string,
): Config {
  const get = (name: typeof STRING_FLAGS[number]): string | undefined => {
    const fromFlag = flags[name];
    if (fromFlag !== undefined) {
      if (fromFlag === "") throw usageError(`Flag --${name} is empty: give a value or leave it out`);
      return fromFlag;
    }
    const fromEnv = env[envVarName(name)];
    if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
    return undefined;
  };
  const networkRaw = get("network") ?? "mainnet";
  if (!isNetworkName(networkRaw)) {
    throw usageError(
      `Invalid --network "${networkRaw}": expected one of ${NETWORK_NAMES.join(", ")}`,
      "config_invalid",
    );
  }
  const network: Network = networkRaw;
  const loopDir = expandHome(get("loopdir") ?? "~/.loop", home);
  const dataDir = joinPath(loopDir, network);
  // The default URL percent-encodes the characters a URL would read otherwise (`%`, `?`, `#` in --loopdir).
  const dbUrl = get("db") ?? `file:${joinPath(dataDir, "loopkit.db").replace(/[%?#]/g, encodeURIComponent)}`;
  const db = parseDbUrl(dbUrl);
  const dbFile = db.kind === "file" ? db.path : null;
  const lndDir = expandHome(get("lnddir") ?? "~/.lnd", home);
  const rpcServer = get("rpcserver") ?? "localhost:10009";
  if (!/^[^\s:]+:\d{1,5}$/.test(rpcServer) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(rpcServer)) {
    throw usageError(`Invalid --rpcserver "${rpcServer}": expected host:port`, "config_invalid");
  }
  const tlsCertPath = expandHome(get("tlscertpath") ?? joinPath(lndDir, "tls.cert"), home);
  const macaroonPath = expandHome(
    get("macaroonpath") ??
      joinPath(lndDir, "data/chain/bitcoin", lndNetworkDirName(network), "admin.macaroon"),
    home,
  );
  const json = flags.json ?? parseBooleanEnv(envVarName("json"), env[envVarName("json")]) ?? false;
  return { network, loopDir, dataDir, dbUrl, dbFile, rpcServer, lndDir, tlsCertPath, macaroonPath, json };
}
