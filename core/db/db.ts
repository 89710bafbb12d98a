/**
 * The loopkit database: a libSQL client (a local `file:` by default, or a `libsql://` / `http(s)://` server),
 * opened with a busy timeout, migrated on open in one transaction, pinned to one network.
 *
 * @module
 */
// Types only: the driver (a native addon) is imported by openDb() on first use, so code that merely
// handles database errors, or a read-only command that finds no database file, never loads it.
import type { Client, InStatement, Transaction } from "@libsql/client";
import { ExitCode, LoopkitError, tempFailure } from "../errors.ts";
import { type Migration, MIGRATIONS } from "./migrations.ts";

/** Default busy timeout: how long a writer waits for another process's lock, in ms. */
export const DEFAULT_BUSY_TIMEOUT_MS = 10_000;

/** Options for {@linkcode openDb}. */
export interface OpenDbOptions {
  /** libSQL URL: `file:/path/loopkit.db`, `libsql://…`, `http(s)://…`, or `:memory:`. */
  url: string;
  /** Network the database belongs to; a database created for another network is refused. */
  network: string;
  /** Busy timeout in ms (default {@linkcode DEFAULT_BUSY_TIMEOUT_MS}). */
  busyTimeoutMs?: number;
  /** Auth token for a remote libSQL server (`LOOPKIT_DB_AUTH_TOKEN`). */
  authToken?: string;
  /** Migrations to apply (tests only; default {@linkcode MIGRATIONS}). */
  migrations?: readonly Migration[];
  /**
   * For commands that only read: never write, not even a migration (so a reader never waits for, or
   * blocks, another process's lock). An empty database (no schema yet) opens with `schemaVersion` 0; an
   * older schema is refused (`db_schema_outdated`), since reading it would need the migration.
   */
  readOnly?: boolean;
}

/** An open, migrated database. */
export interface Db {
  /** The underlying libSQL client (integers come back as `bigint`). */
  client: Client;
  /** The schema version after migration (0: an empty database opened read-only). */
  schemaVersion: number;
  /** True when opened with `readOnly`: {@linkcode Db.write} then throws. */
  readOnly: boolean;
  /** Runs `fn` in one write transaction; commits on success, rolls back on any error. */
  write<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Closes the client. Idempotent. */
  close(): void;
}

/** A `LibsqlError` from `@libsql/client` (by its name and string code, without loading the driver). */
function isLibsqlError(err: unknown): err is Error & { code: string } {
  return err instanceof Error && err.name === "LibsqlError" &&
    typeof (err as { code?: unknown }).code === "string";
}

/**
 * True for SQLite "database is locked/busy" failures, which are temporary (exit 75).
 */
export function isBusyError(err: unknown): boolean {
  if (isLibsqlError(err)) {
    return err.code === "SQLITE_BUSY" || err.code === "SQLITE_LOCKED" ||
      /database is locked/i.test(err.message);
  }
  return err instanceof Error && /SQLITE_BUSY|database is locked/i.test(err.message);
}

/** True for a remote libSQL server that cannot be reached (connection refused, DNS, TLS set-up, fetch). */
export function isUnreachableError(err: unknown): boolean {
  const texts: string[] = [];
  for (let e: unknown = err, i = 0; e && i < 4; e = (e as { cause?: unknown }).cause, i++) {
    texts.push(String((e as Error).message ?? e), String((e as { code?: unknown }).code ?? ""));
  }
  return /fetch failed|ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|connection refused|websocket/i
    .test(texts.join(" "));
}

/** Maps a database failure to a {@linkcode LoopkitError}: busy ⇒ exit 75 `db_busy`, else exit 1 `db_error`. */
export function dbError(err: unknown, what: string): LoopkitError {
  if (err instanceof LoopkitError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  if (isBusyError(err)) {
    return tempFailure(`Database is busy while ${what}: ${detail}; retry later`, "db_busy", err);
  }
  if (isUnreachableError(err)) {
    return tempFailure(
      `Database server unreachable while ${what}: ${detail}; check --db, or retry later`,
      "db_unreachable",
      err,
    );
  }
  return new LoopkitError("db_error", `Database error while ${what}: ${detail}`, ExitCode.Failure, {
    cause: err,
  });
}

async function runWrite<T>(client: Client, fn: (tx: Transaction) => Promise<T>): Promise<T> {
  const tx = await client.transaction("write");
  try {
    const result = await fn(tx);
    await tx.commit();
    return result;
  } catch (err) {
    try {
      await tx.rollback();
    } catch {
      // The transaction may already be closed; the original error matters.
    }
    throw err;
  } finally {
    tx.close();
  }
}

/**
 * Opens the database at `url`: reads its schema version and network without a transaction (a reader takes no
 * write lock), and only when the schema is behind applies the pending migrations in one write transaction
 * (re-checked inside it, so two processes migrating at once apply each migration once). A new database
 * records its network in that transaction. With `readOnly` nothing is ever written.
 *
 * Permissions: `--allow-ffi --allow-read --allow-write --allow-env --allow-sys` for a `file:` URL.
 *
 * @throws {LoopkitError} `db_busy` (exit 75) when another writer holds the lock past the timeout;
 *   `db_unreachable` (exit 75) when a remote libSQL server cannot be reached;
 *   `db_network_mismatch` (exit 2) when the database belongs to another network;
 *   `db_too_new` (exit 2) when the schema is newer than this loopkit; `db_schema_outdated` (exit 2) when a
 *   read-only open finds an older schema; `db_error` (exit 1) otherwise.
 */
export async function openDb(opts: OpenDbOptions): Promise<Db> {
  const migrations = opts.migrations ?? MIGRATIONS;
  // Through a variable: Deno pre-loads the graph of a literal `import("…")` as soon as this module loads.
  const driver = "@libsql/client";
  const { createClient } = await import(driver) as typeof import("@libsql/client");
  let client: Client;
  try {
    client = createClient(
      {
        url: opts.url,
        authToken: opts.authToken,
        intMode: "bigint",
        timeout: opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
      } as Parameters<typeof createClient>[0],
    );
  } catch (err) {
    throw new LoopkitError(
      "config_invalid",
      `Cannot open database --db "${opts.url}": ${(err as Error).message}`,
      ExitCode.Usage,
      { cause: err },
    );
  }
  try {
    if (opts.url.startsWith("file:")) {
      // Rollback-journal mode (SQLite's default), not WAL: a read-only invocation leaves the directory
      // byte-identical (no -wal/-shm files), and the busy timeout serialises writers.
      await client.execute(`PRAGMA busy_timeout = ${opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS}`);
    }
    await client.execute("PRAGMA foreign_keys = ON");
    const latest = latestVersion(migrations);
    const seen = await readSchema(client);
    checkSchema(seen, latest, opts.network);
    let schemaVersion = seen.version;
    if (opts.readOnly) {
      if (seen.version !== 0 && seen.version < latest) {
        throw new LoopkitError(
          "db_schema_outdated",
          `Database ${opts.url} has schema version ${seen.version}, this loopkit reads version ${latest}: ` +
            "run a command that writes (e.g. `loopkit deposits sync`) once to upgrade it",
          ExitCode.Usage,
        );
      }
    } else if (seen.version < latest || (latest >= 1 && seen.network === undefined)) {
      schemaVersion = await runWrite(client, (tx) => migrate(tx, migrations, opts.network));
    }
    const readOnly = opts.readOnly ?? false;
    return {
      client,
      schemaVersion,
      readOnly,
      write: (fn) => {
        if (readOnly) return Promise.reject(new Error(`Database ${opts.url} was opened read-only`));
        return runWrite(client, fn);
      },
      close: () => client.close(),
    };
  } catch (err) {
    client.close();
    throw dbError(err, `opening ${opts.url}`);
  }
}

function latestVersion(migrations: readonly Migration[]): number {
  return migrations.length ? migrations[migrations.length - 1].version : 0;
}

/** Schema version (0 when there is no schema yet) and pinned network, read without a transaction. */
async function readSchema(client: Client): Promise<{ version: number; network?: string }> {
  const tables = await client.execute(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('schema_migrations', 'meta')",
  );
  const names = new Set(tables.rows.map((r) => String(r.name)));
  if (!names.has("schema_migrations")) return { version: 0 };
  const rs = await client.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations");
  const version = Number(rs.rows[0].v);
  if (!names.has("meta")) return { version };
  const net = await client.execute("SELECT value FROM meta WHERE key = 'network'");
  return { version, network: net.rows.length ? String(net.rows[0].value) : undefined };
}

/** Refuses a schema newer than `latest` and a database pinned to another network. */
function checkSchema(seen: { version: number; network?: string }, latest: number, network: string): void {
  if (seen.version > latest) {
    throw new LoopkitError(
      "db_too_new",
      `Database schema version ${seen.version} is newer than this loopkit supports (${latest}): upgrade loopkit`,
      ExitCode.Usage,
    );
  }
  if (seen.network !== undefined && seen.network !== network) {
    throw new LoopkitError(
      "db_network_mismatch",
      `Database belongs to network "${seen.network}", not --network "${network}": use the matching --network or --db`,
      ExitCode.Usage,
    );
  }
}

async function migrate(tx: Transaction, migrations: readonly Migration[], network: string): Promise<number> {
  await tx.execute(
    `CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at TEXT NOT NULL
    )`,
  );
  const rs = await tx.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations");
  const current = Number(rs.rows[0].v);
  const latest = migrations.length ? migrations[migrations.length - 1].version : 0;
  if (current > latest) {
    throw new LoopkitError(
      "db_too_new",
      `Database schema version ${current} is newer than this loopkit supports (${latest}): upgrade loopkit`,
      ExitCode.Usage,
    );
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    for (const sql of m.statements) await tx.execute(sql);
    await tx.execute({
      sql: "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
      args: [m.version, m.name, new Date().toISOString()],
    });
  }
  if (latest >= 1) {
    const net = await tx.execute("SELECT value FROM meta WHERE key = 'network'");
    if (net.rows.length === 0) {
      await tx.execute({ sql: "INSERT INTO meta (key, value) VALUES ('network', ?)", args: [network] });
    } else if (net.rows[0].value !== network) {
      throw new LoopkitError(
        "db_network_mismatch",
        `Database belongs to network "${
          net.rows[0].value
        }", not --network "${network}": use the matching --network or --db`,
        ExitCode.Usage,
      );
    }
  }
  return latest;
}

/** Convenience: runs one statement, mapping failures with {@linkcode dbError}. */
export async function exec(db: Db, stmt: InStatement, what: string) {
  try {
    return await db.client.execute(stmt);
  } catch (err) {
    throw dbError(err, what);
  }
}
