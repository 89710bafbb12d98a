/**
 * Per-invocation context: resolved configuration plus lazily opened lnd connection and database.
 * Nothing is opened until a subcommand asks for it, so a no-op touches neither lnd nor the database, and
 * nothing is loaded either: the gRPC client and the libSQL driver are imported on first use, so an offline
 * command never loads gRPC (bench/README.md "Start-up").
 *
 * @module
 */
import type { Command } from "commander";
import { type Config, type GlobalFlags, resolveConfig } from "../core/config/config.ts";
import type * as DbModule from "../core/db/db.ts";
import type { Db } from "../core/db/db.ts";
import type * as ConnectModule from "../lnd/connect.ts";
import type { LndClient, LndInfo } from "../lnd/types.ts";
import { dataDirUnwritable, ExitCode, isUnwritableError, LoopkitError, usageError } from "../core/errors.ts";
import { reportError } from "./output.ts";
import { lazyImport } from "./lazy.ts";

/** What a subcommand gets. */
export interface Context {
  config: Config;
  /** Connects to lnd on first use (checks lnd's network against `--network`). */
  lnd(): Promise<{ lnd: LndClient; info: LndInfo }>;
  /**
   * For commands that write: opens the database on first use, migrating it when its schema is behind;
   * creates the data dir (0700) and the file (0600) for a `file:` URL.
   */
  db(): Promise<Db>;
  /**
   * For commands that only read: the database if it exists, else null (a local `file:` database that is not
   * there is not created, so a mistyped `--loopdir` leaves nothing behind). Opened read-only: no migration,
   * no write lock (core/db `readOnly`); an empty file counts as no database.
   */
  existingDb(): Promise<Db | null>;
  /** Releases whatever was opened (closes the database cleanly, so SQLite removes its WAL files). */
  close(): Promise<void>;
}

/**
 * Whether the database file exists; refuses a path that is a directory (SQLite would fail with "unable to
 * open database file", code 14).
 * @throws {LoopkitError} `config_invalid` (exit 2) naming `--db`; the stat error when the path is unreadable
 */
async function dbFileExists(file: string): Promise<boolean> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
  if (st.isDirectory) {
    throw usageError(
      `The database "${file}" (--db / --loopdir) is a directory, not a database file: give the file's path`,
      "config_invalid",
    );
  }
  return true;
}

/** Builds the context from the global flags and the process environment. */
export function makeContext(flags: GlobalFlags): Context {
  const env = Deno.env.toObject();
  const home = env.HOME ?? "/";
  const config = resolveConfig(flags, env, home);
  let lndP: Promise<{ lnd: LndClient; info: LndInfo }> | undefined;
  let dbP: Promise<Db> | undefined;
  let roP: Promise<Db | null> | undefined;
  return {
    config,
    lnd() {
      lndP ??= lazyImport<typeof ConnectModule>(new URL("../lnd/connect.ts", import.meta.url))
        .then(({ connectLnd }) =>
          connectLnd({
            rpcServer: config.rpcServer,
            tlsCertPath: config.tlsCertPath,
            macaroonPath: config.macaroonPath,
            network: config.network,
          })
        );
      return lndP;
    },
    db() {
      dbP ??= (async () => {
        const file = config.dbFile ?? undefined;
        if (file !== undefined) {
          const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) || "/" : ".";
          try {
            await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
          } catch (err) {
            if (isUnwritableError(err)) throw dataDirUnwritable(dir, dir, err);
            throw usageError(
              `Cannot create the data directory "${dir}" (--loopdir / --db): ${(err as Error).message}`,
              "data_dir_unusable",
            );
          }
        }
        if (file !== undefined) {
          await dbFileExists(file);
          // The database holds key locators and deposit history: private (0600) from its first byte, like
          // the token and backups. SQLite takes an empty file as a new database.
          await Deno.writeFile(file, new Uint8Array(), { createNew: true, mode: 0o600 }).catch((err) => {
            if (err instanceof Deno.errors.AlreadyExists) return;
            const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) || "/" : ".";
            throw isUnwritableError(err) ? dataDirUnwritable(dir, file, err) : err;
          });
        }
        const { openDb } = await lazyImport<typeof DbModule>(
          new URL("../core/db/db.ts", import.meta.url),
        );
        const db = await openDb({
          url: config.dbUrl,
          network: config.network,
          authToken: env.LOOPKIT_DB_AUTH_TOKEN,
        });
        return db;
      })();
      return dbP;
    },
    existingDb() {
      if (dbP) return dbP;
      roP ??= (async () => {
        if (config.dbFile !== null) {
          let exists: boolean;
          try {
            exists = await dbFileExists(config.dbFile);
          } catch (err) {
            if (err instanceof LoopkitError) throw err;
            throw usageError(
              `Cannot use the database file "${config.dbFile}" (--loopdir / --db): ${(err as Error).message}`,
              "data_dir_unusable",
            );
          }
          if (!exists) return null;
        }
        const { openDb } = await lazyImport<typeof DbModule>(
          new URL("../core/db/db.ts", import.meta.url),
        );
        // Read-only: no migration, no write transaction, so a reader never waits for another process's lock.
        const db = await openDb({
          url: config.dbUrl,
          network: config.network,
          authToken: env.LOOPKIT_DB_AUTH_TOKEN,
          readOnly: true,
        });
        if (db.schemaVersion === 0) {
          db.close(); // an empty file: no schema, so nothing stored yet
          return null;
        }
        return db;
      })();
      return roP;
    },
    async close() {
      await lndP?.then((c) => c.lnd.close(), () => {});
      await dbP?.then((d) => d.close(), () => {});
      await roP?.then((d) => d?.close(), () => {});
    },
  };
}

/** A subcommand body: returns the exit code. */
export type Action<O> = (ctx: Context, opts: O, args: string[]) => Promise<number>;

/** Exit code of the last subcommand body run through {@linkcode action}. */
let lastExitCode: number = ExitCode.Ok;

/** Exit code of the last action, and resets it to 0 (read by `cli/main.ts` after parsing). */
export function takeExitCode(): number {
  const code = lastExitCode;
  lastExitCode = ExitCode.Ok;
  return code;
}

/**
 * Wraps a subcommand body for commander's `.action()`: runs it through {@linkcode runAction} with the
 * command's flags and the global ones (`optsWithGlobals()`).
 */
export function action<O>(body: Action<O>): (...params: unknown[]) => Promise<void> {
  return (...params: unknown[]) => {
    const cmd = params[params.length - 1] as Command;
    return runAction(body, cmd.optsWithGlobals() as GlobalFlags & O, params.slice(0, -2).flat() as string[]);
  };
}

/**
 * Runs a subcommand body: builds the context from the global flags in `all`, maps errors to exit codes
 * (README "Exit codes") and always releases lnd and the database. The code is read back with
 * {@linkcode takeExitCode}. Used by {@linkcode action} and by the commander-free path (cli/fast_path.ts).
 * @param all the command's flags and the global ones, as commander's `optsWithGlobals()` gives them
 * @param args the command's positional arguments
 */
export async function runAction<O>(body: Action<O>, all: GlobalFlags & O, args: string[]): Promise<void> {
  let ctx: Context | undefined;
  try {
    ctx = makeContext(all);
    lastExitCode = await body(ctx, all, args);
  } catch (err) {
    lastExitCode = reportError(err, ctx?.config.json ?? Boolean(all.json));
  } finally {
    await ctx?.close();
  }
}
