/**
 * Shapes shared by the backup modules: the decrypted payload (spec/backup-and-recovery.md §2), the
 * static-address parameters the database layer hands to `writeBackup`, and the validation reasons
 * `backup verify` reports.
 *
 * @module
 */
import { ExitCode, LoopkitError } from "../errors.ts";

/**
 * The static address a backup binds to its L402 token (Loop's legacy "V0" address row).
 * Produced by the database layer; consumed by {@linkcode writeBackup}.
 */
export interface BackupAddressParams {
  /** 33-byte compressed client public key (lnd key at `clientKeyFamily`/`clientKeyIndex`). */
  clientPubkey: Uint8Array;
  /** 33-byte compressed server public key bound to the L402. */
  serverPubkey: Uint8Array;
  /** CSV expiry of the timeout leaf, in blocks. */
  expiry: number;
  /** Static-address protocol version; only 0 is valid. */
  protocolVersion: number;
  /** Key family of the client key (42060 for the legacy address). */
  clientKeyFamily: number;
  /** Key index of the client key (not stored in the backup; restore scans for it). */
  clientKeyIndex: number;
  /** Block height at which the address was created (the row's initiation height). */
  initiationHeight: number;
  /** P2TR pkScript of the address (not stored in the backup). */
  pkScript?: Uint8Array;
}

/** `static_address` object of the payload (spec §2.2). JSON names in the field docs. */
export interface StaticAddressBackup {
  /** `protocol_version` (uint32). */
  protocolVersion: number;
  /** `client_pubkey` (bytes, omitted when absent or empty). */
  clientPubkey?: Uint8Array;
  /** `server_pubkey` (bytes; `null` when absent, as Go writes a nil slice). */
  serverPubkey: Uint8Array | null;
  /** `expiry` (uint32), CSV blocks. */
  expiry: number;
  /** `legacy_client_key_family` (int32, omitted when 0). */
  legacyClientKeyFamily: number;
  /** `main_key_family` (int32), always 42061 when Loop writes it. */
  mainKeyFamily: number;
  /** `change_key_family` (int32), always 42062 when Loop writes it. */
  changeKeyFamily: number;
  /** `legacy_first_height` (int32, omitted when 0): initiation height of the legacy address. */
  legacyFirstHeight: number;
  /** `multi_address_first_height` (int32, omitted when 0): chain height when the backup was written. */
  multiAddressFirstHeight: number;
}

/** One `token_files[]` entry (spec §2.3). */
export interface TokenFileEntry {
  /** `name`: the token store file name; only `l402.token` is valid. */
  name: string;
  /** `data`: raw file bytes; `null` when the JSON value is `null` or the key is missing. */
  data: Uint8Array | null;
}

/** The decrypted backup payload, version 1 (spec §2.1). */
export interface BackupPayload {
  /** `version` (uint32); 1 is the only supported value. */
  version: number;
  /** `network`: `mainnet`, `testnet`, `regtest`, `simnet` or `signet`. */
  network: string;
  /** `l402_token_id`: 64 lower-case hex characters. */
  l402TokenId: string;
  /** `l402_token_created_at` (int64): token creation time in Unix nanoseconds. */
  l402TokenCreatedAtNs: bigint;
  /** `static_address`; undefined when absent or `null`. */
  staticAddress?: StaticAddressBackup;
  /** `token_files`; empty when absent, `null` or `[]` (then omitted on encode). */
  tokenFiles: TokenFileEntry[];
}

/**
 * Why a backup file is (not) usable. Stable snake_case strings rendered by `backup verify`.
 *
 * - `ok`: passes the envelope and generation checks (spec §4.2, §4.3)
 * - `unreadable`: the file cannot be read (missing, permission, a directory)
 * - `too_short`, `unknown_format`, `undecryptable`: §4.1 envelope failures
 * - `bad_payload`: the plaintext is not a valid payload, or lacks its network or token ID
 * - `unsupported_version`: payload version ≠ 1
 * - `network_mismatch`: payload network ≠ the expected network
 * - `name_mismatch`: file-name token ID or timestamp ≠ payload, a file name that only Go's lax
 *   parser accepts (non-canonical timestamp, upper-case hex), or an explicitly given path whose
 *   base name is not a backup file name (`invalid backup file path "…"`)
 * - `token_invalid`: the embedded `l402.token` does not parse, or its token ID / creation time
 *   differ from the payload's
 * - `token_unpaid`: the embedded token's preimage is all zero
 * - `incomplete_generation`: no token data, no static address, duplicate token data, or an
 *   unexpected token file name
 * - `not_restorable`: valid, but a restore-time check fails (spec §4.4: protocol version, server key,
 *   client key, key family, the client key not derivable by this lnd in the scan range, the pkScript);
 *   only `backup verify` with lnd reports it (`checkRestorable`)
 */
export type BackupReason =
  | "ok"
  | "unreadable"
  | "too_short"
  | "unknown_format"
  | "undecryptable"
  | "bad_payload"
  | "unsupported_version"
  | "network_mismatch"
  | "name_mismatch"
  | "token_invalid"
  | "token_unpaid"
  | "incomplete_generation"
  | "not_restorable";

/** Every {@linkcode BackupReason} except `ok`. */
export type BackupFailureReason = Exclude<BackupReason, "ok">;

/** All reasons, in a stable order (for help texts and exhaustive tests). */
export const BACKUP_REASONS: readonly BackupReason[] = [
  "ok",
  "unreadable",
  "too_short",
  "unknown_format",
  "undecryptable",
  "bad_payload",
  "unsupported_version",
  "network_mismatch",
  "name_mismatch",
  "token_invalid",
  "token_unpaid",
  "incomplete_generation",
  "not_restorable",
];

/**
 * A backup file (or payload) failed validation. `code` is the {@linkcode BackupFailureReason};
 * the exit code is {@linkcode ExitCode.VerifyFailed}. The message keeps Loop's Go wording where
 * Loop has one (spec §4.1–§4.3), so substring matches against Loop's tests hold.
 */
export class BackupInvalidError extends LoopkitError {
  /** Same as `code`, typed. */
  readonly reason: BackupFailureReason;
  constructor(reason: BackupFailureReason, message: string, options?: ErrorOptions) {
    super(reason, message, ExitCode.VerifyFailed, options);
    this.name = "BackupInvalidError";
    this.reason = reason;
  }
}
