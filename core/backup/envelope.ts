/**
 * The encrypted backup envelope: `"loopbak1" ‖ nonce (24) ‖ secretbox(tag 16 ‖ ciphertext)`
 * (spec/backup-and-recovery.md §1.3–§1.5, §4.1), and the lnd-derived key.
 *
 * @module
 */
import { secretbox } from "@noble/ciphers/salsa.js";
import { hexToBytes } from "@noble/hashes/utils.js";
import { LoopkitError } from "../errors.ts";
import type { KeyLocator, LndClient } from "../../lnd/types.ts";
import { BackupInvalidError } from "./types.ts";

/** File magic, ASCII `loopbak1`. */
export const BACKUP_MAGIC: Uint8Array = new TextEncoder().encode("loopbak1");
/** XSalsa20 nonce length. */
export const BACKUP_NONCE_LENGTH = 24;
/** Magic plus nonce; a file shorter than this is `too_short`. */
export const BACKUP_HEADER_LENGTH = 32;
/** Poly1305 tag length, placed before the ciphertext. */
export const SECRETBOX_OVERHEAD = 16;
/** Backup key length (the `DeriveSharedKey` result). */
export const BACKUP_KEY_LENGTH = 32;
/** lndclient `SharedKeyNUMS`, hex: the ephemeral pubkey passed to `DeriveSharedKey`. */
export const SHARED_KEY_NUMS_PUBKEY_HEX =
  "0215b5a3e0ef58b101431e1e513dd017d1018b420bd2e89dcd71f45c031f00469e";
/** {@linkcode SHARED_KEY_NUMS_PUBKEY_HEX} as 33 bytes. */
export const SHARED_KEY_NUMS_PUBKEY: Uint8Array = hexToBytes(SHARED_KEY_NUMS_PUBKEY_HEX);
/** Key locator of lnd's private key used for the backup key: family 42060, index 0. */
export const BACKUP_KEY_LOCATOR: Readonly<KeyLocator> = Object.freeze({ family: 42060, index: 0 });

/**
 * Asks lnd for the backup key: one `DeriveSharedKey(NUMS, {42060, 0})` call (spec §1.5). lnd
 * returns `SHA-256(compressed(k · NUMS))` where `k` is its key at the locator; that 32-byte value
 * *is* the secretbox key, nothing further is derived.
 *
 * @param lnd anything with `deriveSharedKey`
 * @returns the 32-byte key
 * @throws {LoopkitError} code `backup_key_invalid` if lnd returns another length; lnd errors as is
 */
export async function deriveBackupKey(lnd: Pick<LndClient, "deriveSharedKey">): Promise<Uint8Array> {
  return backupKeyFromSharedKey(
    await lnd.deriveSharedKey(SHARED_KEY_NUMS_PUBKEY.slice(), { ...BACKUP_KEY_LOCATOR }),
  );
}

/**
 * The backup key from lnd's `DeriveSharedKey(NUMS, {42060, 0})` response: the response itself
 * (spec §1.5: no further derivation), checked for length.
 *
 * @param sharedKey lnd's `shared_key`
 * @returns a copy of the 32 bytes
 * @throws {LoopkitError} code `backup_key_invalid` when it is not 32 bytes
 */
export function backupKeyFromSharedKey(sharedKey: Uint8Array): Uint8Array {
  if (!(sharedKey instanceof Uint8Array) || sharedKey.length !== BACKUP_KEY_LENGTH) {
    throw new LoopkitError(
      "backup_key_invalid",
      `lnd DeriveSharedKey returned ${sharedKey?.length} bytes, want 32`,
    );
  }
  return sharedKey.slice();
}

function checkKey(key: Uint8Array): void {
  if (key.length !== BACKUP_KEY_LENGTH) throw new RangeError(`Backup key is ${key.length} bytes, want 32`);
}

/**
 * Seals a plaintext into backup file bytes (NaCl secretbox, XSalsa20-Poly1305).
 *
 * @param key 32-byte backup key
 * @param plaintext the payload JSON bytes
 * @param nonce 24-byte nonce; default a fresh one from the CSPRNG (only tests pass one)
 * @returns `magic ‖ nonce ‖ tag ‖ ciphertext`, `48 + plaintext.length` bytes
 * @throws {RangeError} key not 32 bytes or nonce not 24 bytes
 */
export function sealBackup(key: Uint8Array, plaintext: Uint8Array, nonce?: Uint8Array): Uint8Array {
  checkKey(key);
  const n = nonce ?? crypto.getRandomValues(new Uint8Array(BACKUP_NONCE_LENGTH));
  if (n.length !== BACKUP_NONCE_LENGTH) throw new RangeError(`Backup nonce is ${n.length} bytes, want 24`);
  const boxed = secretbox(key, n).seal(plaintext);
  const out = new Uint8Array(BACKUP_HEADER_LENGTH + boxed.length);
  out.set(BACKUP_MAGIC, 0);
  out.set(n, BACKUP_MAGIC.length);
  out.set(boxed, BACKUP_HEADER_LENGTH);
  return out;
}

/**
 * Opens backup file bytes. Checks in Loop's order (spec §4.1): length ≥ 32, magic, secretbox tag.
 *
 * @param key 32-byte backup key
 * @param bytes the whole file
 * @returns the plaintext
 * @throws {BackupInvalidError} `too_short` ("backup file is too short"), `unknown_format`
 *   ("backup file has an unknown format"), `undecryptable` ("unable to decrypt backup file": wrong
 *   key, corrupt data, or 32–47 bytes long)
 * @throws {RangeError} key not 32 bytes
 */
export function openBackup(key: Uint8Array, bytes: Uint8Array): Uint8Array {
  checkKey(key);
  if (bytes.length < BACKUP_HEADER_LENGTH) {
    throw new BackupInvalidError("too_short", "backup file is too short");
  }
  for (let i = 0; i < BACKUP_MAGIC.length; i++) {
    if (bytes[i] !== BACKUP_MAGIC[i]) {
      throw new BackupInvalidError("unknown_format", "backup file has an unknown format");
    }
  }
  const nonce = bytes.slice(BACKUP_MAGIC.length, BACKUP_HEADER_LENGTH);
  const boxed = bytes.slice(BACKUP_HEADER_LENGTH);
  if (boxed.length < SECRETBOX_OVERHEAD) {
    throw new BackupInvalidError("undecryptable", "unable to decrypt backup file");
  }
  try {
    return secretbox(key, nonce).open(boxed);
  } catch (e) {
    throw new BackupInvalidError("undecryptable", "unable to decrypt backup file", { cause: e });
  }
}
