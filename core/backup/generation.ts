/**
 * The generation's backup as the commands need it: `backup write`, and the backup `address new` writes right
 * after creating (or returning) the static address (spec/backup-and-recovery.md §5.2). Moved here from the
 * CLI so that `cli/address.ts` and `cli/backup.ts` both call core and only render the result.
 *
 * @module
 */
import { equalBytes } from "@noble/curves/utils.js";
import type { LndClient } from "../../lnd/types.ts";
import { ExitCode, LoopkitError } from "../errors.ts";
import type { BackupAddressParams } from "./types.ts";
import { writeBackup, type WriteBackupResult } from "./write.ts";

/** The lnd calls a generation backup makes: `DeriveSharedKey` (the key), `DeriveKey` (the check), `GetInfo`. */
export type GenerationBackupLnd = Pick<LndClient, "deriveSharedKey" | "deriveKey" | "getInfo">;

/** What {@linkcode writeGenerationBackup} needs. Both functions are called only when needed. */
export interface GenerationBackupDeps {
  /** Network data directory holding `l402.token`; the backup goes here. */
  dataDir: string;
  /** Network name written into the payload. */
  network: string;
  /** Extra directories that get the identical file (`--copy-to`). */
  copyTo?: string[];
  /** lnd, connected on first use (a no-op never connects). */
  lnd: () => Promise<GenerationBackupLnd>;
  /** The legacy static-address row (a `StaticAddressRow` fits), or null when there is none yet. */
  staticAddress: () => Promise<BackupAddressParams | null>;
}

/**
 * Writes the generation's backup for the current paid L402 token and the legacy static address
 * (spec/backup-and-recovery.md §5.2), after checking that lnd holds the address's client key.
 *
 * No paid token or no address: a no-op result without contacting lnd.
 *
 * @returns {@linkcode writeBackup}'s result
 * @throws {LoopkitError} `wrong_lnd` (exit 2) from {@linkcode assertLndHoldsClientKey}; lnd and file-system
 *   failures from {@linkcode writeBackup}
 */
export async function writeGenerationBackup(deps: GenerationBackupDeps): Promise<WriteBackupResult> {
  let lndP: Promise<GenerationBackupLnd> | undefined;
  const lnd = () => (lndP ??= deps.lnd());
  return await writeBackup({
    dataDir: deps.dataDir,
    network: deps.network,
    copyTo: deps.copyTo ?? [],
    lnd: { deriveSharedKey: async (p, loc) => (await lnd()).deriveSharedKey(p, loc) },
    staticAddress: async (): Promise<BackupAddressParams | null> => {
      const row = await deps.staticAddress();
      if (row) await assertLndHoldsClientKey(await lnd(), row);
      return row && {
        clientPubkey: row.clientPubkey,
        serverPubkey: row.serverPubkey,
        expiry: row.expiry,
        protocolVersion: row.protocolVersion,
        clientKeyFamily: row.clientKeyFamily,
        clientKeyIndex: row.clientKeyIndex,
        initiationHeight: row.initiationHeight,
        pkScript: row.pkScript,
      };
    },
    currentHeight: async () => (await (await lnd()).getInfo()).blockHeight,
  });
}

/** Outcome of the backup written after `address new`: the result, or why it failed (the address exists). */
export type BackupAfterAddress =
  | { ok: true; backup: WriteBackupResult }
  | { ok: false; error: string };

/**
 * The backup right after `address new` created or returned the address: a failure here does not undo the
 * address (it is stored and registered), so it is returned, not thrown; the caller reports exit 4 and asks
 * for `loopkit backup write` (README "Exit codes").
 */
export async function writeBackupAfterAddress(deps: GenerationBackupDeps): Promise<BackupAfterAddress> {
  try {
    return { ok: true, backup: await writeGenerationBackup(deps) };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Refuses an lnd that does not hold the static address's client key (a different seed than the node that
 * created it): a backup sealed by that lnd would be useless to the real node. `DeriveKey` is read-only.
 * @throws {LoopkitError} `wrong_lnd` (exit 2)
 */
export async function assertLndHoldsClientKey(
  lnd: Pick<LndClient, "deriveKey">,
  row: Pick<BackupAddressParams, "clientKeyFamily" | "clientKeyIndex" | "clientPubkey">,
): Promise<void> {
  const key = await lnd.deriveKey({ family: row.clientKeyFamily, index: row.clientKeyIndex });
  if (!equalBytes(key.rawKeyBytes, row.clientPubkey)) {
    throw new LoopkitError(
      "wrong_lnd",
      `lnd at --rpcserver does not hold the static address's client key (family ${row.clientKeyFamily}, ` +
        `index ${row.clientKeyIndex}): it is not the node that created this address; point --rpcserver, ` +
        `--tlscertpath and --macaroonpath at that node`,
      ExitCode.Usage,
    );
  }
}
