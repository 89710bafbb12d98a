/**
 * `--db` URLs: which database, and for a local file, which path. libSQL's own parser (RFC 3986, relative
 * `file:` paths allowed, percent-decoded path) decides what file it opens; this one agrees with it on the path,
 * so the CLI checks, creates and stats exactly that file.
 *
 * @module
 */
import { usageError } from "../errors.ts";

/** A parsed `--db` URL. */
export type DbLocation =
  /** A local SQLite file: `path` is what libSQL opens (percent-decoded, relative to the working directory). */
  | { kind: "file"; url: string; path: string }
  /** `:memory:` (tests). */
  | { kind: "memory"; url: string }
  /** A libSQL server (`libsql:`, `http(s):`, `ws(s):`). */
  | { kind: "remote"; url: string };

const FILE_RE = /^file:(?:\/\/(?<authority>[^/?#]*))?(?<path>[^?#]*)(?<rest>[?#].*)?$/su;
const REMOTE_SCHEMES = ["libsql", "http", "https", "ws", "wss"];

/**
 * Parses a `--db` value.
 *
 * `file:` URLs: `file:relative.db`, `file:/abs.db`, `file:///abs.db` or `file://localhost/abs.db`; the path is
 * percent-decoded (`%20` is a space). Query parameters and fragments (`?mode=ro`) are refused, never taken as
 * part of the file name: loopkit opens the database read-only by itself when a command only reads.
 *
 * @throws {LoopkitError} `config_invalid` (exit 2) naming `--db`: an unknown scheme, a `file:` URL with a host,
 *   a query or fragment, an empty path, or a malformed percent escape
 */
export function parseDbUrl(url: string): DbLocation {
  const bad = (why: string) => usageError(`Invalid --db "${url}": ${why}`, "config_invalid");
  if (url === ":memory:") return { kind: "memory", url };
  const scheme = /^([A-Za-z][A-Za-z0-9.+-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw bad("expected a URL such as file:/path/loopkit.db, libsql://host or https://host");
  }
  if (REMOTE_SCHEMES.includes(scheme)) return { kind: "remote", url };
  if (scheme !== "file") {
    throw bad(`unsupported scheme "${scheme}:" (file:, libsql:, http:, https:, ws: or wss:)`);
  }
  const m = FILE_RE.exec(url);
  if (!m?.groups) throw bad("not a file: URL");
  const { authority, path: rawPath, rest } = m.groups;
  if (rest !== undefined) {
    throw bad(
      `a file: database takes no query parameters or fragment ("${rest}"); give the path only (loopkit ` +
        "opens the database read-only by itself for commands that only read)",
    );
  }
  if (authority !== undefined && authority !== "" && authority.toLowerCase() !== "localhost") {
    throw bad(
      `a file: URL has no host ("${authority}"); use file:/absolute/path.db or file:///absolute/path.db`,
    );
  }
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw bad("malformed percent escape in the path");
  }
  if (path === "") throw bad("the file path is empty");
  if (path.includes("\0")) throw bad("the file path contains a NUL byte");
  return { kind: "file", url, path };
}
