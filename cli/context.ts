/**
 * Per-invocation context: resolved configuration plus lazily opened lnd connection and database.
 * Nothing is opened until a subcommand asks for it, so a no-op touches neither lnd nor the database.
 *
 * @module
 */
import { type Config, type GlobalFlags, resolveConfig } from "../core/config/config.ts";
import { type Db, openDb } from "../core/db/db.ts";
import type { LndClient, LndInfo } from "../lnd/types.ts";
import { connectLnd } from "../lnd/connect.ts";
import { dataDirUnwritable, isUnwritableError, usageError } from "../core/errors.ts";

/** What a subcommand gets. */
export interface Context {
  config: Config;
  /** Connects to lnd on first use (checks lnd's network against `--network`). */
  lnd(): Promise<{ lnd: LndClient; info: LndInfo }>;
  /** Opens (and migrates) the database on first use; creates the data dir (0700) for a default `file:` URL. */
  db(): Promise<Db>;
  /**
   * For read-only commands: the database if it exists, else null (a local `file:` database that is not
   * there is not created, so a mistyped `--loopdir` leaves nothing behind).
   */
  existingDb(): Promise<Db | null>;
  /** Releases whatever was opened (closes the database cleanly, so SQLite removes its WAL files). */
  close(): Promise<void>;
}

/** Builds the context from the global flags and the process environment. */
export function makeContext(flags: GlobalFlags): Context {
  const env = Deno.env.toObject();
  const home = env.HOME ?? "/";
  const config = resolveConfig(flags, env, home);
  let lndP: Promise<{ lnd: LndClient; info: LndInfo }> | undefined;
  let dbP: Promise<Db> | undefined;
  return {
    config,
    lnd() {
      lndP ??= connectLnd({
        rpcServer: config.rpcServer,
        tlsCertPath: config.tlsCertPath,
        macaroonPath: config.macaroonPath,
        network: config.network,
      });
      return lndP;
    },
    db() {
      dbP ??= (async () => {
        const file = config.dbUrl.startsWith("file:") ? config.dbUrl.slice("file:".length) : undefined;
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
          // The database holds key locators and deposit history: private (0600) from its first byte, like
          // the token and backups. SQLite takes an empty file as a new database.
          await Deno.writeFile(file, new Uint8Array(), { createNew: true, mode: 0o600 }).catch((err) => {
            if (err instanceof Deno.errors.AlreadyExists) return;
            const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) || "/" : ".";
            throw isUnwritableError(err) ? dataDirUnwritable(dir, file, err) : err;
          });
        }
        const db = await openDb({
          url: config.dbUrl,
          network: config.network,
          authToken: env.LOOPKIT_DB_AUTH_TOKEN,
        });
        return db;
      })();
      return dbP;
    },
    async existingDb() {
      if (config.dbUrl.startsWith("file:")) {
        const file = config.dbUrl.slice("file:".length);
        const exists = await Deno.stat(file).then(() => true, () => false);
        if (!exists) return null;
      }
      return await this.db();
    },
    async close() {
      await lndP?.then((c) => c.lnd.close(), () => {});
      await dbP?.then((d) => d.close(), () => {});
    },
  };
}
