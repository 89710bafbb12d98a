/**
 * Backup validation as pure functions returning a typed reason (spec/backup-and-recovery.md
 * §4.1–§4.3). Every Go error maps to exactly one {@linkcode BackupReason}; the message keeps
 * Loop's wording:
 *
 * | Loop error (Go format) | reason |
 * |---|---|
 * | `backup file is too short` | `too_short` |
 * | `backup file has an unknown format` | `unknown_format` |
 * | `unable to decrypt backup file` | `undecryptable` |
 * | JSON decoder error | `bad_payload` |
 * | `unsupported backup version %d` | `unsupported_version` |
 * | `backup file is missing a network` | `bad_payload` |
 * | `backup file is missing an L402 token ID` | `bad_payload` |
 * | `backup file network %s does not match daemon network %s` | `network_mismatch` |
 * | `backup file token ID %s does not match payload token ID %s` | `name_mismatch` |
 * | `backup file timestamp %d does not match payload L402 creation time %d` | `name_mismatch` |
 * | `backup file is missing paid L402 token data` | `incomplete_generation` |
 * | `backup file is missing static address parameters` | `incomplete_generation` |
 * | `unexpected token file name %q` | `incomplete_generation` |
 * | `backup contains duplicate paid L402 token data` | `incomplete_generation` |
 * | `backup L402 token is not paid` | `token_unpaid` |
 * | other token-file errors of §3.6 | `token_invalid` |
 * | `backup L402 token ID %s does not match payload token ID %s` | `token_invalid` |
 * | `backup L402 token creation time %d does not match payload creation time %d` | `token_invalid` |
 *
 * loopkit additions: a file name only Go's lax parser accepts → `name_mismatch` (checked where
 * Loop compares the name, i.e. after the envelope check).
 *
 * @module
 */
import {
  type L402TokenFile,
  PAID_TOKEN_FILE_NAME,
  parseTokenFile,
  TokenFileError,
} from "../l402/token_file.ts";
import { openBackup } from "./envelope.ts";
import type { BackupFileName, MalformedBackupFileName } from "./file_name.ts";
import { decodeBackupPayload } from "./payload.ts";
import { BackupInvalidError, type BackupPayload, type BackupReason } from "./types.ts";

/** The format version this implementation reads and writes. */
export const BACKUP_FORMAT_VERSION = 1;

/** Outcome of one check. */
export interface Verdict {
  /** `ok` or why the backup is unusable. */
  reason: BackupReason;
  /** Loop's wording for failures; `backup file is valid` for `ok`. */
  message: string;
}

/** {@linkcode Verdict} of a passing check. */
export const VALID: Readonly<Verdict> = Object.freeze({ reason: "ok", message: "backup file is valid" });

function fail(reason: Exclude<BackupReason, "ok">, message: string): Verdict {
  return { reason, message };
}

/** Go `%q` for the strings that occur here (close to `strconv.Quote`). */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + '"';
}

/**
 * Envelope check (Loop `validateNetwork`, spec §4.2); the first failing rule wins.
 *
 * @param p decoded payload
 * @param network the expected network (the daemon's)
 */
export function checkEnvelope(p: BackupPayload, network: string): Verdict {
  if (p.version !== BACKUP_FORMAT_VERSION) {
    return fail("unsupported_version", `unsupported backup version ${p.version}`);
  }
  if (p.network === "") return fail("bad_payload", "backup file is missing a network");
  if (p.l402TokenId === "") return fail("bad_payload", "backup file is missing an L402 token ID");
  if (p.network !== network) {
    return fail(
      "network_mismatch",
      `backup file network ${p.network} does not match daemon network ${network}`,
    );
  }
  return VALID;
}

/** Result of {@linkcode checkGeneration}: the verdict and, when parsed, the embedded token. */
export interface GenerationVerdict extends Verdict {
  /** The parsed embedded `l402.token`, when it parsed. */
  token?: L402TokenFile;
}

/**
 * Generation check (Loop `validateRecoverableGeneration`, spec §4.3) with the file-name details.
 *
 * @param p decoded payload (already through {@linkcode checkEnvelope})
 * @param name the parsed file name; a malformed one fails with `name_mismatch`
 */
export function checkGeneration(
  p: BackupPayload,
  name: BackupFileName | MalformedBackupFileName,
): GenerationVerdict {
  if (!name.ok) return fail("name_mismatch", name.message);
  if (p.l402TokenId !== name.tokenId) {
    return fail(
      "name_mismatch",
      `backup file token ID ${name.tokenId} does not match payload token ID ${p.l402TokenId}`,
    );
  }
  if (p.l402TokenCreatedAtNs !== name.createdAtNs) {
    return fail(
      "name_mismatch",
      `backup file timestamp ${name.createdAtNs} does not match payload L402 creation time ${p.l402TokenCreatedAtNs}`,
    );
  }
  if (p.tokenFiles.length === 0) {
    return fail("incomplete_generation", "backup file is missing paid L402 token data");
  }
  if (p.staticAddress === undefined) {
    return fail("incomplete_generation", "backup file is missing static address parameters");
  }
  let data: Uint8Array | null = null;
  for (const entry of p.tokenFiles) {
    if (entry.name !== PAID_TOKEN_FILE_NAME) {
      return fail("incomplete_generation", `unexpected token file name ${goQuote(entry.name)}`);
    }
    if (data !== null) return fail("incomplete_generation", "backup contains duplicate paid L402 token data");
    data = entry.data;
  }
  if (data === null) return fail("incomplete_generation", "backup file is missing paid L402 token data");
  let token: L402TokenFile;
  try {
    token = parseTokenFile(data, { requirePaid: true });
  } catch (e) {
    if (!(e instanceof TokenFileError)) throw e;
    return fail(e.code === "not_paid" ? "token_unpaid" : "token_invalid", e.message);
  }
  if (token.tokenId !== p.l402TokenId) {
    return {
      ...fail(
        "token_invalid",
        `backup L402 token ID ${token.tokenId} does not match payload token ID ${p.l402TokenId}`,
      ),
      token,
    };
  }
  if (token.createdAtNs !== p.l402TokenCreatedAtNs) {
    return {
      ...fail(
        "token_invalid",
        `backup L402 token creation time ${token.createdAtNs} does not match payload creation time ${p.l402TokenCreatedAtNs}`,
      ),
      token,
    };
  }
  return { ...VALID, token };
}

/** Result of {@linkcode validateBackupBytes}. */
export interface BackupValidation extends Verdict {
  /** The decoded payload, when decryption and decoding succeeded (also for later failures). */
  payload?: BackupPayload;
  /** The parsed embedded token, when it parsed. */
  token?: L402TokenFile;
}

/**
 * Full check of one backup file's bytes, in Loop's order: decrypt (§4.1), decode, envelope
 * (§4.2), generation with the file-name details (§4.3). Never throws for bad input.
 *
 * @param bytes the file contents
 * @param key 32-byte backup key
 * @param network expected network
 * @param name the parsed file name of this file
 * @returns the verdict plus whatever was decoded
 * @throws {RangeError} only for a key that is not 32 bytes (a caller bug)
 */
export function validateBackupBytes(
  bytes: Uint8Array,
  key: Uint8Array,
  network: string,
  name: BackupFileName | MalformedBackupFileName,
): BackupValidation {
  let payload: BackupPayload;
  try {
    payload = decodeBackupPayload(openBackup(key, bytes));
  } catch (e) {
    if (e instanceof BackupInvalidError) return fail(e.reason, e.message);
    throw e;
  }
  const env = checkEnvelope(payload, network);
  if (env.reason !== "ok") return { ...env, payload };
  const gen = checkGeneration(payload, name);
  return { reason: gen.reason, message: gen.message, payload, ...(gen.token ? { token: gen.token } : {}) };
}
