/**
 * The typed lnd surface loopkit uses. Core code depends on this interface only;
 * `lnd/grpc_client.ts` implements it over gRPC, unit tests implement it in-process.
 *
 * Conventions: byte fields are `Uint8Array`; 64-bit amounts and heights that can
 * exceed 2^53 are `bigint`; txids are display hex (byte-reversed) strings.
 *
 * @module
 */

/** lnd key locator (`signrpc.KeyLocator`). */
export interface KeyLocator {
  /** Key family, e.g. 42060 (spec/static-address-and-deposits.md §1). */
  family: number;
  /** Child index inside the family. */
  index: number;
}

/** A derived key: 33-byte compressed public key plus its locator. */
export interface KeyDescriptor {
  /** 33-byte compressed secp256k1 public key. */
  rawKeyBytes: Uint8Array;
  /** Where lnd derived it. */
  keyLocator: KeyLocator;
}

/** Subset of `lnrpc.GetInfoResponse` loopkit reads. */
export interface LndInfo {
  /** Node identity, 33-byte compressed pubkey as hex. */
  identityPubkey: string;
  /** Best block height lnd knows. */
  blockHeight: number;
  /** Best block hash (display hex). */
  blockHash: string;
  /** Chains lnd runs on, e.g. `[{chain: "bitcoin", network: "regtest"}]`. */
  chains: { chain: string; network: string }[];
  /** True when lnd's wallet is synced to the chain. */
  syncedToChain: boolean;
  /** lnd version string. */
  version: string;
}

/** A wallet UTXO (`lnrpc.Utxo`). */
export interface Utxo {
  /** Outpoint txid, display hex. */
  txid: string;
  /** Outpoint output index. */
  vout: number;
  /** Value in sat. */
  amountSat: bigint;
  /** Output pkScript. */
  pkScript: Uint8Array;
  /** Confirmations; 0 while in the mempool. */
  confirmations: number;
  /** Address string lnd reports (may be empty for imported scripts). */
  address: string;
}

/**
 * What loopkit needs from lnd. Grows with each capability; every method maps to
 * exactly one lnd RPC, named in its doc.
 */
export interface LndClient {
  /** `lnrpc.Lightning/GetInfo`. */
  getInfo(): Promise<LndInfo>;
  /**
   * `signrpc.Signer/DeriveSharedKey`: SHA-256 of the compressed ECDH point
   * `k(keyLoc) · ephemeralPubkey` (spec/backup-and-recovery.md §1.5).
   * @param ephemeralPubkey 33-byte compressed point
   * @param keyLoc locator of lnd's private key
   * @returns 32-byte shared key
   */
  deriveSharedKey(ephemeralPubkey: Uint8Array, keyLoc: KeyLocator): Promise<Uint8Array>;
  /** `walletrpc.WalletKit/DeriveKey`: read-only derivation at a locator. */
  deriveKey(keyLoc: KeyLocator): Promise<KeyDescriptor>;
  /** `walletrpc.WalletKit/DeriveNextKey`: next unused key of a family (advances lnd's counter). */
  deriveNextKey(family: number): Promise<KeyDescriptor>;
  /** Closes the underlying channels. Idempotent. */
  close(): void;
}
