/**
 * The L402 token store: `l402.token` (paid) and `l402.token.pending` in the network data
 * directory, with Aperture `l402.FileStore` semantics (spec/static-loop-in.md §5.4,
 * spec/backup-and-recovery.md §3.1) and loopkit's stricter write rules (project decision 5):
 *
 * - opening creates the directory (0700) and renames legacy `lsat.token` / `lsat.token.pending`
 *   when the new name is absent (no-clobber: a link, then the old name is removed);
 * - the current token is the paid file if it exists, else the pending file, else none;
 * - every write is atomic and 0600 (`atomicWriteFile`: temp file, fsync, rename, directory fsync);
 * - a pending token (zero preimage) is only written when no token exists;
 * - a paid token is only written when no token exists, or over a pending token with the same
 *   payment hash (the paid file is written first, then the pending file is removed);
 * - a paid token is never overwritten (rewriting identical bytes is a no-op); anything else is
 *   refused with Aperture's wording;
 * - a paid token is only written when its preimage hashes to its payment hash and that hash is
 *   the one in the macaroon identifier (Aperture does not check; a token failing this is useless
 *   and would hide the real one).
 *
 * Permissions: `--allow-read --allow-write` on the directory.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { join } from "node:path";
import { atomicWriteFile } from "../fs/atomic_write.ts";
import { removeStaleTempFiles } from "../fs/temp_files.ts";
import { dataDirUnwritable, ExitCode, isUnwritableError, LoopkitError } from "../errors.ts";
import {
  encodeTokenFile,
  type L402TokenFile,
  PAID_TOKEN_FILE_NAME,
  parseTokenFile,
  PENDING_TOKEN_FILE_NAME,
  TokenFileError,
  type TokenFileFields,
} from "./token_file.ts";
import { equalBytes } from "@noble/curves/utils.js";

/** Legacy (LSAT era) file names, renamed on open (Aperture `NewFileStore`). */
export const LEGACY_TOKEN_FILE_NAMES: Readonly<Record<string, string>> = Object.freeze({
  "lsat.token": PAID_TOKEN_FILE_NAME,
  "lsat.token.pending": PENDING_TOKEN_FILE_NAME,
});

/**
 * Lock file serialising token acquisition between loopkit processes (flock). Its name does not
 * start with `l402.token`, so Loop's `listauth` (which parses every `l402.token*` file) ignores it.
 */
export const TOKEN_LOCK_FILE_NAME = ".loopkit-l402.lock";

/**
 * The hint for a token the user must look at by hand. Aperture's `manualRetryHint` points to Loop's
 * `listauth`, which loopkit does not have; `loopkit l402 show` prints the token and its payment in lnd.
 */
export const MANUAL_RETRY_HINT = "run `loopkit l402 show` to see the pending token and its payment in lnd; " +
  "remove the pending token file only if lnd shows the payment failed or unknown";

/** A token read from the store, with the file it came from. */
export interface StoredToken extends L402TokenFile {
  /** Absolute or relative path of the file the token was read from. */
  path: string;
  /** The exact file bytes. */
  bytes: Uint8Array;
}

function storeError(code: string, message: string, cause?: unknown): LoopkitError {
  return new LoopkitError(code, message, ExitCode.Failure, cause === undefined ? undefined : { cause });
}

function isZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

async function readIfExists(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw storeError("l402_store_io", `Cannot read L402 token file "${path}": ${(e as Error).message}`, e);
  }
}

async function syncDir(dir: string): Promise<void> {
  const f = await Deno.open(dir, { read: true });
  try {
    await f.sync();
  } finally {
    f.close();
  }
}

/**
 * Checks that a paid token proves its payment: preimage non-zero, `SHA-256(preimage)` equal to
 * the file's payment hash, and that hash equal to the macaroon identifier's.
 *
 * @param t the token fields and its decoded identifier payment hash
 * @returns null when consistent, else the reason (sentence fragment)
 */
export function paidTokenProblem(
  t: { paymentHash: Uint8Array; preimage: Uint8Array; identifierPaymentHash: Uint8Array },
): string | null {
  if (isZero(t.preimage)) return "its preimage is all zero (not paid)";
  if (!equalBytes(sha256(t.preimage), t.paymentHash)) {
    return `its preimage does not hash to its payment hash ${bytesToHex(t.paymentHash)}`;
  }
  if (!equalBytes(t.paymentHash, t.identifierPaymentHash)) {
    return `its payment hash ${bytesToHex(t.paymentHash)} is not the macaroon's ${
      bytesToHex(t.identifierPaymentHash)
    }`;
  }
  return null;
}

/**
 * Renames legacy `lsat.token` / `lsat.token.pending` to `l402.token` / `l402.token.pending` when the new
 * name does not exist (Aperture `NewFileStore`, spec/static-loop-in.md §5.4), atomically and without ever
 * replacing a file: a hard link to the new name (fails if it appeared meanwhile), then the old name is
 * removed and the directory fsynced. A missing directory or no legacy file is nothing to do.
 *
 * @param dir the network data directory
 * @returns the new names created (e.g. `["l402.token"]`)
 * @throws {LoopkitError} `l402_store_io` when a stat, link or removal fails for another reason
 */
export async function migrateLegacyTokenFiles(dir: string): Promise<string[]> {
  const migrated: string[] = [];
  for (const [oldName, newName] of Object.entries(LEGACY_TOKEN_FILE_NAMES)) {
    const oldPath = join(dir, oldName);
    const newPath = join(dir, newName);
    try {
      await Deno.lstat(newPath);
      continue; // the new name exists: leave the old file alone, like Aperture
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw storeError("l402_store_io", `Cannot stat "${newPath}": ${(e as Error).message}`, e);
      }
    }
    try {
      await Deno.lstat(oldPath);
    } catch {
      continue;
    }
    try {
      // link + remove instead of rename: never replaces a file that appeared meanwhile.
      await Deno.link(oldPath, newPath);
      await Deno.remove(oldPath);
      migrated.push(newName);
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) continue;
      throw storeError(
        "l402_store_io",
        `Cannot rename legacy L402 token file "${oldPath}" to "${newPath}": ${(e as Error).message}`,
        e,
      );
    }
  }
  if (migrated.length) await syncDir(dir);
  return migrated;
}

/**
 * File-based L402 token store in one network data directory. Create it with
 * {@linkcode L402TokenStore.open}.
 */
export class L402TokenStore {
  /** The network data directory, e.g. `~/.loop/mainnet`. */
  readonly dir: string;
  /** Path of `l402.token`. */
  readonly paidPath: string;
  /** Path of `l402.token.pending`. */
  readonly pendingPath: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.paidPath = join(dir, PAID_TOKEN_FILE_NAME);
    this.pendingPath = join(dir, PENDING_TOKEN_FILE_NAME);
  }

  /**
   * Opens the store: creates `dir` (mode 0700, parents too) when missing and renames legacy
   * `lsat.token*` files whose new name does not exist yet (spec/static-loop-in.md §5.4).
   *
   * @param dir the network data directory
   * @throws {LoopkitError} `l402_store_io` when the directory cannot be created or a rename fails
   */
  static async open(dir: string): Promise<L402TokenStore> {
    try {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      if (isUnwritableError(e)) throw dataDirUnwritable(dir, dir, e);
      throw storeError(
        "l402_store_io",
        `Cannot create L402 token directory "${dir}": ${(e as Error).message}`,
        e,
      );
    }
    const store = new L402TokenStore(dir);
    await migrateLegacyTokenFiles(dir);
    // A token write killed mid-way leaves l402.token(.pending).tmp, a copy of the token: remove it.
    await removeStaleTempFiles(dir).catch(() => {});
    return store;
  }

  async #read(path: string): Promise<StoredToken | null> {
    const bytes = await readIfExists(path);
    if (bytes === null) return null;
    try {
      return { ...parseTokenFile(bytes), path, bytes };
    } catch (e) {
      if (!(e instanceof TokenFileError)) throw e;
      throw storeError("l402_token_invalid", `Cannot parse L402 token file "${path}": ${e.message}`, e);
    }
  }

  /**
   * The current token: `l402.token` if it exists, else `l402.token.pending`, else null.
   *
   * @throws {LoopkitError} `l402_token_invalid` when the file does not parse (file named),
   *   `l402_store_io` when it cannot be read
   */
  async currentToken(): Promise<StoredToken | null> {
    return await this.#read(this.paidPath) ?? await this.#read(this.pendingPath);
  }

  /** The pending file's token, or null when there is none (the paid file is not consulted). */
  async pendingToken(): Promise<StoredToken | null> {
    return await this.#read(this.pendingPath);
  }

  /**
   * Stores a token following the write rules in the module doc.
   *
   * @param fields the token (zero preimage = pending)
   * @returns `"written"`, or `"unchanged"` when the identical paid token is already stored
   * @throws {LoopkitError} `l402_token_exists` (refused replacement, Aperture's wording plus the
   *   file name), `l402_token_mismatch` (paid token whose payment hash differs from the pending
   *   one), `l402_token_invalid` (a paid token that does not prove its payment, or bytes that do
   *   not encode), `l402_store_io`
   */
  async storeToken(fields: TokenFileFields): Promise<"written" | "unchanged"> {
    let bytes: Uint8Array;
    try {
      bytes = encodeTokenFile(fields);
    } catch (e) {
      throw storeError("l402_token_invalid", `Cannot encode L402 token: ${(e as Error).message}`, e);
    }
    const token = parseTokenFile(bytes);
    if (token.paid) {
      const problem = paidTokenProblem({
        paymentHash: token.paymentHash,
        preimage: token.preimage,
        identifierPaymentHash: token.identifier.paymentHash,
      });
      if (problem) throw storeError("l402_token_invalid", `Refusing to store paid L402 token: ${problem}`);
    }
    const current = await this.currentToken();
    if (current === null) {
      await this.#write(token.paid ? this.paidPath : this.pendingPath, bytes);
      return "written";
    }
    if (current.paid) {
      if (equalBytes(current.bytes, bytes)) return "unchanged";
      throw storeError(
        "l402_token_exists",
        `won't replace existing paid token with new token. ${MANUAL_RETRY_HINT} (paid token file "${current.path}")`,
      );
    }
    if (!token.paid) {
      throw storeError(
        "l402_token_exists",
        `won't replace existing paid token with new token. ${MANUAL_RETRY_HINT} (pending token file "${current.path}")`,
      );
    }
    if (!equalBytes(current.paymentHash, token.paymentHash)) {
      throw storeError(
        "l402_token_mismatch",
        `new paid token doesn't match existing pending token (payment hash ${
          bytesToHex(token.paymentHash)
        }, pending file "${current.path}" has ${bytesToHex(current.paymentHash)})`,
      );
    }
    // Paid first, so the pending token survives any failure; then the pending file goes.
    await this.#write(this.paidPath, bytes);
    try {
      await Deno.remove(this.pendingPath);
      await syncDir(this.dir);
    } catch {
      // Best effort, like Aperture: with both files present the paid one wins.
    }
    return "written";
  }

  /**
   * Removes `l402.token.pending`. With `expected`, only when the file still holds exactly those
   * bytes (another process may have replaced it).
   *
   * @param expected the bytes read earlier
   * @returns true when a file was removed
   * @throws {LoopkitError} `l402_store_io` when the removal fails for another reason than absence
   */
  async removePendingToken(expected?: Uint8Array): Promise<boolean> {
    if (expected !== undefined) {
      const now = await readIfExists(this.pendingPath);
      if (now === null || !equalBytes(now, expected)) return false;
    }
    try {
      await Deno.remove(this.pendingPath);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw storeError(
        "l402_store_io",
        `Cannot remove pending L402 token file "${this.pendingPath}": ${(e as Error).message}`,
        e,
      );
    }
    await syncDir(this.dir);
    return true;
  }

  /**
   * Runs `fn` holding an exclusive lock on {@linkcode TOKEN_LOCK_FILE_NAME} in the store
   * directory (flock), so two loopkit processes never acquire a token at the same time.
   *
   * @param fn the critical section
   * @returns what `fn` returns
   * @throws {LoopkitError} `l402_store_io` when the lock file cannot be opened or locked
   */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const path = join(this.dir, TOKEN_LOCK_FILE_NAME);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    } catch (e) {
      throw storeError("l402_store_io", `Cannot open L402 lock file "${path}": ${(e as Error).message}`, e);
    }
    try {
      try {
        await file.lock(true);
      } catch (e) {
        throw storeError("l402_store_io", `Cannot lock L402 lock file "${path}": ${(e as Error).message}`, e);
      }
      return await fn();
    } finally {
      file.close();
    }
  }

  async #write(path: string, bytes: Uint8Array): Promise<void> {
    try {
      await atomicWriteFile(path, bytes);
    } catch (e) {
      if (isUnwritableError(e)) throw dataDirUnwritable(this.dir, path, e);
      throw storeError("l402_store_io", `Cannot write L402 token file "${path}": ${(e as Error).message}`, e);
    }
  }
}
