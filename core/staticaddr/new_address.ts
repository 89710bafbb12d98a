/**
 * Static-address creation (`address new`), one generation per paid L402 token
 * (spec/static-address-and-deposits.md §3.2, §3.4, §2.8).
 *
 * Safety beyond the reference:
 * - at most one creation runs at a time: a claim row in `meta` is taken in a write transaction first
 *   (a second invocation exits 75 `address_creation_in_progress`). The claim names its holder (pid,
 *   start time, host): a claim of a process on this host that no longer runs (`kill -9`) is taken over at
 *   once; one from another host, or without a holder, is stale after 10 minutes;
 * - the L402 token is paid *before* a client key is derived, and a derived-but-unused client key is kept in
 *   `meta` and reused on the next attempt, so failed attempts never push the real key past the 0..20 window
 *   that recovery scans (spec/backup-and-recovery.md §0, "legacy client-key scan limit");
 * - the tapscript is imported into lnd before the row is inserted, and the row is inserted in one transaction
 *   with the release of the claim.
 *
 * @module
 */
import type { Transaction } from "@libsql/client";
import type { KeyDescriptor, LndClient } from "../../lnd/types.ts";
import { type Db, dbError } from "../db/db.ts";
import {
  getLegacyStaticAddress,
  insertStaticAddress,
  type StaticAddressRow,
} from "../db/static_addresses.ts";
import { ExitCode, LoopkitError } from "../errors.ts";
import { interruptedError, interruptible, throwIfInterrupted, withRollback } from "../interrupt.ts";
import type { NetworkName } from "./network.ts";
import {
  type ServerAddressParamsMessage,
  STATIC_ADDRESS_PROTOCOL_V0,
  type StaticAddress,
  staticAddress,
  validateClientPubkey,
  validateServerAddressParams,
} from "./script.ts";
import { equalBytes } from "@noble/curves/utils.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";

/** Key family of the legacy (V0) static-address client key (spec §1). */
export const STATIC_ADDRESS_KEY_FAMILY = 42060;

/**
 * How long a creation claim is honoured before another invocation may take over, in ms, when its holder's
 * liveness cannot be checked (another host sharing a remote database, or a claim without a pid).
 */
export const CREATION_CLAIM_TTL_MS = 10 * 60 * 1000;

/**
 * The invocation holding a creation claim: its pid, and where its creation lock lives
 * (`<hostname>:<lock file path>`). While it runs it holds that OS file lock (flock, released by the kernel
 * when the process dies, `kill -9` included), so whoever gets the same lock knows the holder is gone.
 */
export interface ClaimHolder {
  pid: number;
  /** `<hostname>:<absolute lock file path>`; "" when unknown (then only the TTL frees the claim). */
  lock: string;
}

/** The creation lock file in the data directory (not `l402.token*`: Loop's `listauth` ignores it). */
export const CREATION_LOCK_FILE_NAME = ".loopkit-address.lock";

/** A held creation lock ({@linkcode NewAddressDeps.creationLock}). */
export interface CreationLock {
  /** Identity recorded in the claim (see {@linkcode ClaimHolder.lock}). */
  lock: string;
  /** Releases the OS lock. */
  release(): void;
}

/** Claim value: `<id>@<ISO time>@<pid>@<lock>` (older claims: `<id>@<ISO time>`). */
function encodeClaim(id: string, at: Date, h: ClaimHolder): string {
  return `${id}@${at.toISOString()}@${h.pid}@${h.lock}`;
}

function decodeClaim(v: string): { at: number; holder: ClaimHolder | null } {
  const [, at, pid, ...lock] = v.split("@");
  const holder = pid !== undefined && /^[0-9]+$/.test(pid)
    ? { pid: Number(pid), lock: lock.join("@") }
    : null;
  return { at: Date.parse(at), holder };
}

/**
 * Takes the exclusive OS lock (flock) on `path`, waiting at most `waitMs`: a process that holds it is
 * alive (the kernel drops a dead process's locks). The file is created 0600 when missing.
 *
 * @returns the held lock, or null when another live process holds it after `waitMs`
 * @throws the file system's error when the lock file cannot be opened
 */
export async function takeCreationLock(path: string, waitMs = 2000): Promise<CreationLock | null> {
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  let host = "";
  try {
    host = Deno.hostname();
  } catch { /* without --allow-sys the lock path alone identifies it */ }
  const locked = file.lock(true).then(() => true, () => false);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((r) => timer = setTimeout(() => r(false), waitMs));
  const got = await Promise.race([locked, timeout]);
  clearTimeout(timer);
  if (!got) {
    // The command exits 75 now; should the request still succeed first, release it at once.
    locked.then(() => file.close()).catch(() => {});
    return null;
  }
  return { lock: `${host}:${path}`, release: () => file.close() };
}
/** What creation needs from the swap server. */
export interface AddressServer {
  /** Makes sure a paid L402 token exists (pays one if needed). */
  ensurePaidToken(): Promise<void>;
  /** `StaticAddressServer.ServerNewAddress(protocol_version = V0, client_key)`; returns the raw `params`. */
  serverNewAddress(clientPubkey: Uint8Array): Promise<ServerAddressParamsMessage | null | undefined>;
}

/** Dependencies of {@linkcode ensureStaticAddress}. */
export interface NewAddressDeps {
  db: Db;
  lnd: Pick<LndClient, "deriveNextKey" | "importTapscript" | "getInfo">;
  server: AddressServer;
  network: NetworkName;
  /**
   * Path of a backup of the current L402 generation already on disk, or null. When the database has no
   * address but such a backup exists, the address must come back through `recover`, never be created anew
   * (a second address would be paid into while the backup names the first).
   */
  generationBackup?: () => Promise<string | null>;
  /**
   * Token ID (hex) of the paid `l402.token` in the data directory, or null when there is none (or it is
   * not paid). A paid token this database did not acquire is refused: see {@linkcode ensureStaticAddress}.
   */
  paidTokenId?: () => Promise<string | null>;
  /** Where the token lives, for messages (`<dataDir>/l402.token`). */
  tokenPath?: string;
  /** Clock (claims and staleness). */
  now?: () => Date;
  /**
   * Takes this data directory's creation lock (the CLI: {@linkcode takeCreationLock} on
   * `<dataDir>/.loopkit-address.lock`); null when another live process holds it. Without it, claims are
   * freed by the TTL only.
   */
  creationLock?: () => Promise<CreationLock | null>;
}

/** Result of {@linkcode ensureStaticAddress}. */
export interface EnsureAddressResult {
  /** True when this run created the address; false when it already existed. */
  created: boolean;
  row: StaticAddressRow;
  address: StaticAddress;
  /** Human warnings (a client key index past Loop's restore window). */
  warnings: string[];
}

/**
 * Highest client key index Loop's own restore finds (`backupKeyScanLimit`, spec/backup-and-recovery.md
 * §0): Loop searches 42060/0..20 only.
 */
export const LOOP_CLIENT_KEY_SCAN_LIMIT = 20;

/**
 * Warnings about a stored address: a client key index past {@linkcode LOOP_CLIENT_KEY_SCAN_LIMIT} is
 * restorable by loopkit's `recover` (default `--key-scan-limit` 1 000) but not by Loop's own restore.
 */
export function addressWarnings(row: StaticAddressRow): string[] {
  if (row.clientKeyIndex <= LOOP_CLIENT_KEY_SCAN_LIMIT) return [];
  return [
    `the client key is lnd's key ${row.clientKeyFamily}/${row.clientKeyIndex}, past index ` +
    `${LOOP_CLIENT_KEY_SCAN_LIMIT}: Loop's own restore searches ${row.clientKeyFamily}/0..` +
    `${LOOP_CLIENT_KEY_SCAN_LIMIT} only and would not find it; its backup restores with \`loopkit recover\` ` +
    `(--key-scan-limit ≥ ${row.clientKeyIndex}, the default is 1000)`,
  ];
}

const CLAIM_KEY = "address_creation_claim";
const PENDING_KEY = "address_pending_client_key";
/** Token ID of the paid L402 token this database's address creation uses (set once it is paid). */
const TOKEN_KEY = "address_l402_token_id";
/** Set when a creation began without a paid token: the token that appears next was acquired by it. */
const ACQUIRING_KEY = "address_l402_acquiring";

/** Recomputes the address of a stored row (the address string is never stored, spec §3.1). */
export function addressOfRow(row: StaticAddressRow, network: NetworkName): StaticAddress {
  const a = staticAddress({
    clientPubkey: row.clientPubkey,
    serverPubkey: row.serverPubkey,
    csvExpiry: row.expiry,
    network,
  });
  if (!equalBytes(a.pkScript, row.pkScript)) {
    throw new LoopkitError(
      "db_corrupt",
      `Stored static address ${row.id} has a pkScript that does not match its keys and expiry`,
      ExitCode.Failure,
    );
  }
  return a;
}

async function getMeta(tx: Transaction, key: string): Promise<string | null> {
  const rs = await tx.execute({ sql: "SELECT value FROM meta WHERE key = ?", args: [key] });
  return rs.rows.length ? String(rs.rows[0].value) : null;
}

async function setMeta(tx: Transaction, key: string, value: string): Promise<void> {
  await tx.execute({
    sql: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    args: [key, value],
  });
}

/**
 * Returns the static address, creating it when none exists (spec §3.2). An existing address is
 * re-imported into lnd (idempotent, "already exists" is success) and returned; no server call is made.
 *
 * @throws {LoopkitError} `address_creation_in_progress` (exit 75) when another invocation holds the claim;
 *   `invalid_static_address` when the server's answer fails spec §3.4 (nothing stored, nothing imported);
 *   lnd / server / database errors as they come (exit 75 for unreachable / busy)
 */
export async function ensureStaticAddress(deps: NewAddressDeps): Promise<EnsureAddressResult> {
  const existing = await getLegacyStaticAddress(deps.db);
  if (existing) {
    const address = addressOfRow(existing, deps.network);
    await deps.lnd.importTapscript(address.internalKeyXOnly, address.timeoutLeafScript);
    return { created: false, row: existing, address, warnings: addressWarnings(existing) };
  }

  const backup = await deps.generationBackup?.();
  if (backup) {
    throw new LoopkitError(
      "recover_first",
      `The database has no static address but a backup of this L402 generation exists ("${backup}"): ` +
        "run `loopkit recover` to restore that address instead of creating a second one",
      ExitCode.Failure,
    );
  }

  // Claim the creation, or find that another invocation finished it meanwhile.
  const claimId = bytesToHex(crypto.getRandomValues(new Uint8Array(16)));
  const lock = deps.creationLock ? await deps.creationLock() : undefined;
  if (lock === null) {
    throw new LoopkitError(
      "address_creation_in_progress",
      "Another loopkit invocation is creating the static address (it holds the data directory's creation " +
        "lock); retry in a moment",
      ExitCode.TempFail,
    );
  }
  try {
    return await createHoldingLock(deps, claimId, lock);
  } finally {
    lock?.release();
  }
}

async function createHoldingLock(
  deps: NewAddressDeps,
  claimId: string,
  lock: CreationLock | undefined,
): Promise<EnsureAddressResult> {
  const now = deps.now ?? (() => new Date());
  const self: ClaimHolder = { pid: Deno.pid, lock: lock?.lock ?? "" };
  const tokenId = (await deps.paidTokenId?.()) ?? null;
  const raced = await write(deps.db, "claiming address creation", async (tx) => {
    const row = await getLegacyStaticAddress(tx);
    if (row) return row;
    await checkTokenAcquiredHere(tx, tokenId, deps.tokenPath);
    const claim = await getMeta(tx, CLAIM_KEY);
    if (claim) {
      const { at, holder } = decodeClaim(claim);
      // A holder that used the lock this run now holds is gone (its kill -9 released the lock): its claim
      // is free at once. One of another host or data directory (a shared remote database), or an
      // old-format claim, is honoured for the TTL.
      const gone = holder !== null && holder.lock !== "" && holder.lock === self.lock;
      if (!gone && now().getTime() - at < CREATION_CLAIM_TTL_MS) {
        throw new LoopkitError(
          "address_creation_in_progress",
          `Another loopkit invocation${
            holder ? ` (pid ${holder.pid}, lock ${holder.lock || "?"})` : ""
          } is ` +
            "creating the static address; retry in a moment",
          ExitCode.TempFail,
        );
      }
    }
    await setMeta(tx, CLAIM_KEY, encodeClaim(claimId, now(), self));
    return null;
  });
  if (raced) {
    return {
      created: false,
      row: raced,
      address: addressOfRow(raced, deps.network),
      warnings: addressWarnings(raced),
    };
  }

  // A rollback section: SIGINT/SIGTERM aborts the waits (payment, server, lnd) and releases the claim
  // before the command exits 130 (core/interrupt.ts). The pending token and the client key stay recorded.
  return await withRollback(async () => {
    try {
      await interruptible(deps.server.ensurePaidToken());
      const paidId = (await deps.paidTokenId?.()) ?? null;
      if (paidId !== null && paidId !== tokenId) {
        await write(deps.db, "recording the L402 token", (tx) => setMeta(tx, TOKEN_KEY, paidId));
      }
      const key = await pendingOrNextClientKey(deps);
      const params = validateServerAddressParams(
        await interruptible(deps.server.serverNewAddress(key.rawKeyBytes)),
      );
      const address = staticAddress({
        clientPubkey: key.rawKeyBytes,
        serverPubkey: params.serverPubkey,
        csvExpiry: params.csvExpiry,
        network: deps.network,
      });
      const height = (await interruptible(deps.lnd.getInfo())).blockHeight;
      // Import before the row exists: a failed import leaves nothing behind (spec §3.2 step 6).
      await interruptible(deps.lnd.importTapscript(address.internalKeyXOnly, address.timeoutLeafScript));
      throwIfInterrupted();
      const row = await write(deps.db, "storing the static address", async (tx) => {
        if (await getLegacyStaticAddress(tx)) {
          throw new LoopkitError(
            "address_creation_conflict",
            "Another loopkit invocation stored a static address while this one was creating one; nothing stored",
            ExitCode.Failure,
          );
        }
        await insertStaticAddress(tx, {
          clientPubkey: key.rawKeyBytes,
          serverPubkey: params.serverPubkey,
          expiry: params.csvExpiry,
          clientKeyFamily: key.keyLocator.family,
          clientKeyIndex: key.keyLocator.index,
          pkScript: address.pkScript,
          protocolVersion: STATIC_ADDRESS_PROTOCOL_V0,
          initiationHeight: height,
        });
        await tx.execute({
          sql: "DELETE FROM meta WHERE key IN (?, ?, ?)",
          args: [CLAIM_KEY, PENDING_KEY, ACQUIRING_KEY],
        });
        return (await getLegacyStaticAddress(tx))!;
      });
      return { created: true, row, address, warnings: addressWarnings(row) };
    } catch (err) {
      await releaseClaim(deps.db, claimId).catch(() => {});
      if (err instanceof LoopkitError && err.code === "interrupted") {
        throw interruptedError(
          "no address was stored, the creation claim is released; a paid or pending L402 token and the derived " +
            "client key are kept for the next run",
        );
      }
      throw err;
    }
  }, "the static address was stored; run `loopkit backup write`");
}

/**
 * Refuses a paid L402 token this database did not acquire (issue: a second static address for the same
 * token). A token is this database's when its ID is recorded (`address_l402_token_id`), or when an
 * earlier creation recorded here was under way (a claim, a pending client key, or the "acquiring" mark
 * set before paying): that one is bound now and the creation resumes. Anything else — the database was
 * lost with the backup off-site, or the token was copied in (e.g. from loopd) — already has an address at
 * the server, bound to the token; a new one would be a second address under the same token.
 * Without a paid token the "acquiring" mark is set, in the same transaction as the claim.
 *
 * @throws {LoopkitError} `l402_token_not_ours` (exit 1) naming the token and `recover --backup-file`
 */
async function checkTokenAcquiredHere(tx: Transaction, tokenId: string | null, tokenPath?: string) {
  if (tokenId === null) {
    await setMeta(tx, ACQUIRING_KEY, "1");
    return;
  }
  const bound = await getMeta(tx, TOKEN_KEY);
  if (bound === tokenId) return;
  const recorded = (await getMeta(tx, ACQUIRING_KEY)) ?? (await getMeta(tx, CLAIM_KEY)) ??
    (await getMeta(tx, PENDING_KEY));
  if (bound === null && recorded !== null) {
    await setMeta(tx, TOKEN_KEY, tokenId);
    return;
  }
  throw new LoopkitError(
    "l402_token_not_ours",
    `The paid L402 token ${tokenId}${tokenPath ? ` ("${tokenPath}")` : ""} was not acquired by this ` +
      "database (no address, claim or creation recorded for it): the database was lost, or the token was " +
      "copied in. The swap server already bound a static address to this token; creating another would " +
      "give the token a second address. Restore the first one from its backup: " +
      "`loopkit recover --backup-file <the off-site L402_backup_*.enc>`",
    ExitCode.Failure,
  );
}

async function releaseClaim(db: Db, claimId: string): Promise<void> {
  await db.write(async (tx) => {
    const claim = await getMeta(tx, CLAIM_KEY);
    if (claim?.startsWith(`${claimId}@`)) {
      await tx.execute({ sql: "DELETE FROM meta WHERE key = ?", args: [CLAIM_KEY] });
    }
  });
}

/** The client key left by an earlier failed attempt, else the next one from lnd (stored before use). */
async function pendingOrNextClientKey(deps: NewAddressDeps): Promise<KeyDescriptor> {
  const pending = await write(deps.db, "reading the pending client key", (tx) => getMeta(tx, PENDING_KEY));
  if (pending) {
    const [family, index, pub] = pending.split(":");
    const key = {
      rawKeyBytes: hexToBytes(pub),
      keyLocator: { family: Number(family), index: Number(index) },
    };
    validateClientPubkey(key.rawKeyBytes);
    return key;
  }
  const key = await interruptible(deps.lnd.deriveNextKey(STATIC_ADDRESS_KEY_FAMILY));
  validateClientPubkey(key.rawKeyBytes);
  if (key.keyLocator.family !== STATIC_ADDRESS_KEY_FAMILY) {
    throw new LoopkitError(
      "lnd_bad_answer",
      `lnd DeriveNextKey returned family ${key.keyLocator.family}, expected ${STATIC_ADDRESS_KEY_FAMILY}`,
    );
  }
  await write(deps.db, "remembering the client key", (tx) =>
    setMeta(
      tx,
      PENDING_KEY,
      `${key.keyLocator.family}:${key.keyLocator.index}:${bytesToHex(key.rawKeyBytes)}`,
    ));
  return key;
}

async function write<T>(db: Db, what: string, fn: (tx: Transaction) => Promise<T>): Promise<T> {
  try {
    return await db.write(fn);
  } catch (err) {
    throw err instanceof LoopkitError ? err : dbError(err, what);
  }
}
