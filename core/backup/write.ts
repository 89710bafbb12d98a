/**
 * Writing the immutable per-L402 backup (Loop `WriteBackup`, spec/backup-and-recovery.md §5.2,
 * with project decision 5 durability).
 *
 * @module
 */
import { join } from "node:path";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import type { LndClient } from "../../lnd/types.ts";
import { dataDirUnwritable, ExitCode, isUnwritableError, LoopkitError } from "../errors.ts";
import {
  type L402TokenFile,
  PAID_TOKEN_FILE_NAME,
  parseTokenFile,
  PENDING_TOKEN_FILE_NAME,
  TokenFileError,
} from "../l402/token_file.ts";
import { atomicWriteFile } from "../fs/atomic_write.ts";
import { migrateLegacyTokenFiles } from "../l402/store.ts";
import { removeStaleTempFiles } from "../fs/temp_files.ts";
import { deriveBackupKey, sealBackup } from "./envelope.ts";
import { type BackupFileName, backupFileName, parseBackupFileName } from "./file_name.ts";
import { type BackupFs, denoBackupFs } from "../fs/fs.ts";
import { encodeBackupPayload } from "./payload.ts";
import type { BackupAddressParams, BackupPayload, StaticAddressBackup } from "./types.ts";
import { equalBytes } from "@noble/curves/utils.js";
import { BACKUP_FORMAT_VERSION, validateBackupBytes } from "./validate.ts";

/** Key family of multi-address receive keys, stored as `main_key_family`. */
export const STATIC_MULTI_ADDRESS_KEY_FAMILY = 42061;
/** Infix of the name an invalid same-name file is moved to before it is replaced: `<name>.corrupt-<unix ms>`. */
export const CORRUPT_SUFFIX = ".corrupt-";
/** Key family of static-address change keys, stored as `change_key_family`. */
export const STATIC_ADDRESS_CHANGE_KEY_FAMILY = 42062;

const I32_MAX = 2 ** 31 - 1;

/** What {@linkcode writeBackup} needs. */
export interface WriteBackupDeps {
  /** Network data directory holding `l402.token` (e.g. `~/.loop/mainnet`); the backup goes here. */
  dataDir: string;
  /** Network name written into the payload (`mainnet`, `testnet`, `regtest`, `simnet`, `signet`). */
  network: string;
  /** lnd, for the single `DeriveSharedKey` call. */
  lnd: Pick<LndClient, "deriveSharedKey">;
  /** The legacy static address bound to the current L402, or null when there is none yet. */
  staticAddress: () => Promise<BackupAddressParams | null>;
  /** Current chain height (stored as `multi_address_first_height`); must be > 0. */
  currentHeight: () => Promise<number>;
  /** Extra directories that get the identical sealed bytes (same immutability rule per directory). */
  copyTo?: string[];
  /** File-system operations (default real; needs `--allow-read --allow-write`). */
  fs?: BackupFs;
  /** Nonce source for tests; default a fresh CSPRNG nonce. */
  randomNonce?: () => Uint8Array;
  /**
   * Renames legacy `lsat.token*` files to `l402.token*` when no `l402.token*` exists (default
   * `migrateLegacyTokenFiles` of core/l402/store.ts); returns the new names created.
   */
  migrateLegacyToken?: (dataDir: string) => Promise<string[]>;
}

/** Why {@linkcode writeBackup} wrote nothing (Loop returns "" in all of these cases). */
export type WriteBackupSkipReason =
  /** Neither `l402.token` nor `l402.token.pending` exists. */
  | "no_token"
  /** Only `l402.token.pending` exists: a pending token never defines a generation. */
  | "pending_only"
  /** `l402.token` exists but its preimage is all zero. */
  | "token_unpaid"
  /** No static address is bound to the token yet. */
  | "no_static_address"
  /** A valid backup for this token ID and creation time is already in place. */
  | "already_backed_up";

/** Outcome for one `copyTo` directory. */
export interface BackupCopyResult {
  /** The directory as given. */
  dir: string;
  /** Target path inside it. */
  path: string;
  /**
   * `written`, `already_backed_up` (a valid file of this generation with the database's static-address
   * parameters was there), `conflict` (a valid file of this token for *another* static address is there:
   * kept untouched, see `error`), or `failed` (see `error`).
   */
  status: "written" | "already_backed_up" | "conflict" | "failed";
  /** The failure, for `failed`. */
  error?: string;
}

/** Result of {@linkcode writeBackup}. */
export interface WriteBackupResult {
  /** True when the primary backup file was written by this call. */
  written: boolean;
  /** Primary backup path (written now, or the valid one already there). */
  path?: string;
  /** Why nothing was written. */
  reason?: WriteBackupSkipReason;
  /** Token ID of the current paid token. */
  tokenId?: string;
  /** Creation time of the current paid token, Unix ns. */
  createdAtNs?: bigint;
  /**
   * Where same-name files (primary or copies) that failed validation went before being replaced: the
   * `<name>.corrupt-<unix ms>` paths.
   */
  corrupt: string[];
  /** One entry per `copyTo` directory, in order (empty when nothing was to be backed up). */
  copies: BackupCopyResult[];
  /** Stale loopkit temp files (left by a killed run) removed from the data and copy directories. */
  removedTemp: string[];
  /** True when a legacy `lsat.token` was renamed to `l402.token` first (as Loop's token store does). */
  migratedLegacyToken?: boolean;
}

function skip(reason: WriteBackupSkipReason, extra: Partial<WriteBackupResult> = {}): WriteBackupResult {
  return { written: false, reason, corrupt: [], copies: [], removedTemp: [], ...extra };
}

/** Contents of an existing same-name file: null when absent, "unreadable" when present but unreadable. */
async function probe(fs: BackupFs, path: string): Promise<Uint8Array | null | "unreadable"> {
  try {
    return await readOrNull(fs, path);
  } catch {
    return "unreadable";
  }
}

async function readOrNull(fs: BackupFs, path: string): Promise<Uint8Array | null> {
  try {
    return await fs.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function invalidAddress(detail: string): LoopkitError {
  return new LoopkitError("static_address_invalid", `Cannot back up static address: ${detail}`);
}

function checkPubkey(field: string, key: Uint8Array): void {
  if (key.length !== 33) throw invalidAddress(`${field} is ${key.length} bytes, want 33 (compressed)`);
  try {
    secp256k1.Point.fromBytes(key).assertValidity();
  } catch {
    throw invalidAddress(`${field} is not a valid secp256k1 public key`);
  }
}

/** Refuses parameters that would produce a backup Loop's restore rejects (spec §4.4). */
function checkAddress(a: BackupAddressParams): void {
  checkPubkey("client pubkey", a.clientPubkey);
  checkPubkey("server pubkey", a.serverPubkey);
  if (a.protocolVersion !== 0) throw invalidAddress(`protocol version ${a.protocolVersion} is not 0`);
  if (!Number.isInteger(a.clientKeyFamily) || a.clientKeyFamily <= 0 || a.clientKeyFamily > I32_MAX) {
    throw invalidAddress(`client key family ${a.clientKeyFamily} is out of range`);
  }
  if (!Number.isInteger(a.expiry) || a.expiry <= 0 || a.expiry > 0xffffffff) {
    throw invalidAddress(`CSV expiry ${a.expiry} is out of range`);
  }
  if (!Number.isInteger(a.initiationHeight) || a.initiationHeight < 0 || a.initiationHeight > I32_MAX) {
    throw invalidAddress(`initiation height ${a.initiationHeight} is out of range`);
  }
}

/**
 * How a valid backup's static address differs from the database's (client key, server key, CSV expiry,
 * protocol version, client key family: what defines the address); empty when it is the same address.
 */
export function addressDifferences(b: StaticAddressBackup | undefined, a: BackupAddressParams): string[] {
  if (!b) return ["no static address"];
  const d: string[] = [];
  if (!b.clientPubkey || !equalBytes(b.clientPubkey, a.clientPubkey)) d.push("client key");
  if (!b.serverPubkey || !equalBytes(b.serverPubkey, a.serverPubkey)) d.push("server key");
  if (b.expiry !== a.expiry) d.push(`CSV expiry (${b.expiry} in the file, ${a.expiry} in the database)`);
  if (b.protocolVersion !== a.protocolVersion) d.push("protocol version");
  if (b.legacyClientKeyFamily !== a.clientKeyFamily) d.push("client key family");
  return d;
}

/** True when `path` holds a valid backup for exactly this generation (Loop `findValidBackupFileForToken`). */
function isValidFor(bytes: Uint8Array, key: Uint8Array, network: string, name: BackupFileName): boolean {
  return validateBackupBytes(bytes, key, network, name).reason === "ok";
}

/**
 * Writes the encrypted backup of the current paid L402 token and its static address, once per
 * (token ID, creation time). Steps (spec §5.2):
 * 1. read `l402.token` (else `pending_only` / `no_token`); parse it; unpaid → `token_unpaid`;
 * 2. static address (none → `no_static_address`); current height (≤ 0 → error);
 * 3. one `DeriveSharedKey(NUMS, {42060, 0})` call;
 * 4. if `<dataDir>/L402_backup_<created %019d>_<tokenId>.enc` already holds a valid backup of this
 *    generation with the database's static-address parameters → `already_backed_up`; a valid one for
 *    another address → `backup_conflict` (exit 1; a copy: status `conflict`), the file kept; a same-name
 *    file that fails validation does not block and is replaced (reported in `corrupt`);
 * 5. seal with a fresh nonce, check the sealed bytes validate, atomic write (0600, fsync, rename,
 *    directory fsync);
 * 6. place the identical bytes (the existing valid file's when already backed up) in every
 *    `copyTo` directory under the same rule; a copy failure is reported, not thrown.
 *
 * Stricter than Loop: refuses static-address parameters its restore would reject (protocol
 * version ≠ 0, client key family 0, invalid public keys). Like Aperture's store (which Loop opens on
 * start), a legacy `lsat.token` with no `l402.token*` beside it is first renamed to `l402.token`
 * (no-clobber link + remove + directory fsync) and then backed up.
 *
 * @param deps see {@linkcode WriteBackupDeps}
 * @returns what happened; `written: false` with a `reason` for every no-op
 * @throws {LoopkitError} `token_file_invalid` (unparsable or unreadable `l402.token`),
 *   `static_address_invalid`, `backup_height_invalid` (`invalid multi-address first height %d`),
 *   `backup_key_invalid`, `backup_write_failed` (the primary write failed; no partial file);
 *   lnd and dependency errors as is
 */
export async function writeBackup(deps: WriteBackupDeps): Promise<WriteBackupResult> {
  const fs = deps.fs ?? denoBackupFs;
  const tokenPath = join(deps.dataDir, PAID_TOKEN_FILE_NAME);

  let tokenBytes: Uint8Array | null;
  let pendingBytes: Uint8Array | null = null;
  try {
    tokenBytes = await readOrNull(fs, tokenPath);
    if (tokenBytes === null) pendingBytes = await readOrNull(fs, join(deps.dataDir, PENDING_TOKEN_FILE_NAME));
  } catch (e) {
    throw new LoopkitError(
      "token_file_invalid",
      `Cannot read L402 token store in "${deps.dataDir}": ${e}`,
      ExitCode.Failure,
      {
        cause: e,
      },
    );
  }
  let migratedLegacyToken = false;
  if (tokenBytes === null && pendingBytes === null) {
    // Only `lsat.token` (an LSAT-era store): Loop's token store renames it on start and backs it up.
    const migrated = await (deps.migrateLegacyToken ?? migrateLegacyTokenFiles)(deps.dataDir).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return [] as string[];
      throw e;
    });
    if (migrated.length) {
      tokenBytes = await readOrNull(fs, tokenPath).catch(() => null);
      if (tokenBytes === null) {
        pendingBytes = await readOrNull(fs, join(deps.dataDir, PENDING_TOKEN_FILE_NAME));
      }
      migratedLegacyToken = migrated.includes(PAID_TOKEN_FILE_NAME);
    }
  }
  const mig = migratedLegacyToken ? { migratedLegacyToken } : {};
  if (tokenBytes === null) return skip(pendingBytes === null ? "no_token" : "pending_only", mig);

  let token: L402TokenFile;
  try {
    token = parseTokenFile(tokenBytes);
  } catch (e) {
    if (!(e instanceof TokenFileError)) throw e;
    throw new LoopkitError(
      "token_file_invalid",
      `Cannot parse L402 token file "${tokenPath}": ${e.message}`,
      ExitCode.Failure,
      {
        cause: e,
      },
    );
  }
  const ids = { tokenId: token.tokenId, createdAtNs: token.createdAtNs, ...mig };
  if (!token.paid) return skip("token_unpaid", ids);
  if (token.createdAtNs < 0n) {
    throw new LoopkitError(
      "token_file_invalid",
      `Cannot back up L402 token file "${tokenPath}": creation time ${token.createdAtNs} ns is negative`,
    );
  }

  const address = await deps.staticAddress();
  if (address === null) return skip("no_static_address", ids);
  // Temp files a killed run left (a stale token or backup copy): removed under each directory's lock.
  const removedTemp: string[] = [];
  for (const dir of [deps.dataDir, ...(deps.copyTo ?? [])]) {
    removedTemp.push(...await removeStaleTempFiles(dir, fs).catch(() => [] as string[]));
  }
  checkAddress(address);
  const height = await deps.currentHeight();
  if (!Number.isInteger(height) || height <= 0 || height > I32_MAX) {
    throw new LoopkitError("backup_height_invalid", `invalid multi-address first height ${height}`);
  }

  const payload: BackupPayload = {
    version: BACKUP_FORMAT_VERSION,
    network: deps.network,
    l402TokenId: token.tokenId,
    l402TokenCreatedAtNs: token.createdAtNs,
    staticAddress: {
      protocolVersion: address.protocolVersion,
      clientPubkey: address.clientPubkey.slice(),
      serverPubkey: address.serverPubkey.slice(),
      expiry: address.expiry,
      legacyClientKeyFamily: address.clientKeyFamily,
      mainKeyFamily: STATIC_MULTI_ADDRESS_KEY_FAMILY,
      changeKeyFamily: STATIC_ADDRESS_CHANGE_KEY_FAMILY,
      legacyFirstHeight: address.initiationHeight,
      multiAddressFirstHeight: height,
    },
    // The raw file bytes, never re-serialized (Aperture compatibility, spec §2.3).
    tokenFiles: [{ name: PAID_TOKEN_FILE_NAME, data: tokenBytes }],
  };
  const plaintext = encodeBackupPayload(payload);

  const key = await deriveBackupKey(deps.lnd);

  const fileName = backupFileName(token.createdAtNs, token.tokenId);
  const name = parseBackupFileName(fileName) as BackupFileName;
  const target = join(deps.dataDir, fileName);
  const corrupt: string[] = [];
  // The sealed bytes of this generation: the valid file already in place, else a fresh seal.
  let sealed: Uint8Array = sealBackup(key, plaintext, deps.randomNonce?.());
  if (!isValidFor(sealed, key, deps.network, name)) {
    // Cannot happen unless an input slipped past the checks above: never write such a file.
    const why = validateBackupBytes(sealed, key, deps.network, name).message;
    throw new LoopkitError("backup_write_failed", `Refusing to write backup "${target}": ${why}`);
  }

  /**
   * Decides under the directory lock (so concurrent writers cannot both write): a valid file of this
   * generation already there → keep it (and copy *its* bytes elsewhere); an invalid one (corrupt, or sealed
   * by another lnd seed) → moved aside to `<name>.corrupt-<unix ms>` (nothing is ever deleted; beyond Loop,
   * which overwrites it), reported, and replaced.
   */
  const decide = (path: string, isPrimary: boolean) => async (): Promise<boolean> => {
    const there = await probe(fs, path);
    if (there === null) return true;
    if (there === "unreadable") {
      throw new LoopkitError(
        "backup_write_failed",
        `Cannot write backup file "${path}": something unreadable is in the way (a directory, or no read ` +
          `permission); move it away`,
      );
    }
    const v = validateBackupBytes(there, key, deps.network, name);
    if (v.reason === "ok") {
      const diff = addressDifferences(v.payload?.staticAddress, address);
      if (diff.length) {
        // The same token, another address: this file may be the only record of the address the funds
        // are at. Never replaced, never called "backed up".
        throw new LoopkitError(
          "backup_conflict",
          `"${path}" is a valid backup of L402 token ${token.tokenId} but for another static address ` +
            `(differs in ${diff.join(", ")}): the database's address is not the one this token's backup ` +
            "names. Kept untouched. If the database was rebuilt after a loss, restore the backed-up address " +
            `with \`loopkit recover --backup-file "${path}"\` into an empty data directory`,
          ExitCode.Failure,
        );
      }
      if (isPrimary) sealed = there;
      return false;
    }
    const aside = `${path}${CORRUPT_SUFFIX}${Date.now()}`;
    await fs.rename(path, aside);
    corrupt.push(aside);
    return true;
  };

  let written: boolean;
  try {
    written = await atomicWriteFile(target, sealed, fs, { shouldWrite: decide(target, true) });
  } catch (e) {
    if (e instanceof LoopkitError) throw e;
    // A directory we may not write is a set-up problem (exit 2), not a failed operation.
    if (isUnwritableError(e)) throw dataDirUnwritable(deps.dataDir, target, e);
    throw new LoopkitError(
      "backup_write_failed",
      `Cannot write backup file "${target}": ${e}`,
      ExitCode.Failure,
      {
        cause: e,
      },
    );
  }

  const copies: BackupCopyResult[] = [];
  for (const dir of deps.copyTo ?? []) {
    const path = join(dir, fileName);
    try {
      const wrote = await atomicWriteFile(path, sealed, fs, { shouldWrite: decide(path, false) });
      copies.push({ dir, path, status: wrote ? "written" : "already_backed_up" });
    } catch (e) {
      const conflict = e instanceof LoopkitError && e.code === "backup_conflict";
      copies.push({
        dir,
        path,
        status: conflict ? "conflict" : "failed",
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }

  return {
    written,
    path: target,
    ...(written ? {} : { reason: "already_backed_up" as const }),
    ...ids,
    corrupt,
    copies,
    removedTemp,
  };
}
