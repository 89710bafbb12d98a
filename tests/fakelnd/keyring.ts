/**
 * The fake lnd's key ring: lnd's derivation scheme on a BIP-32 seed.
 *
 * - key locator (family f, index i) → `m/1017'/<coin>'/<f>'/0/<i>`, coin 0 on mainnet, 1 on every
 *   other network (spec/static-address-and-deposits.md §1);
 * - node identity key = locator (6, 0) (lnd `keychain.KeyFamilyNodeKey`);
 * - `DeriveSharedKey` = SHA-256 of the 33-byte compressed point `k · P`
 *   (spec/backup-and-recovery.md §1.5), not the x-coordinate shortcut Loop's mock uses.
 *
 * @module
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { HDKey } from "@scure/bip32";

/** lnd's node-identity key family. */
export const NODE_KEY_FAMILY = 6;

/**
 * lnd's `DeriveSharedKey` formula: SHA-256 of the 33-byte compressed point `k · P`
 * (spec/backup-and-recovery.md §1.5).
 * @param privateKey 32-byte scalar k
 * @param publicKey 33-byte compressed point P
 * @throws {Error} when `publicKey` is not a valid point or `privateKey` is out of range
 */
export function lndSharedKey(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return sha256(secp256k1.getSharedSecret(privateKey, publicKey, true));
}

/** BIP-32 key ring with lnd's paths. */
export class FakeKeyRing {
  readonly #root: HDKey;
  /** 0 on mainnet, 1 otherwise. */
  readonly coinType: number;

  /**
   * @param seed BIP-32 seed (16..64 bytes)
   * @param network lnd network name; decides the coin type
   */
  constructor(seed: Uint8Array, network: string) {
    this.#root = HDKey.fromMasterSeed(seed);
    this.coinType = network === "mainnet" ? 0 : 1;
  }

  /** Derivation path of a key locator. */
  path(family: number, index: number): string {
    return `m/1017'/${this.coinType}'/${family}'/0/${index}`;
  }

  /** Branch nodes `m/1017'/<coin>'/<family>'/0` already derived (a key search asks thousands of children). */
  #branches = new Map<number, HDKey>();

  /** 32-byte private key at a locator. */
  privateKey(family: number, index: number): Uint8Array {
    let branch = this.#branches.get(family);
    if (!branch) {
      branch = this.#root.derive(`m/1017'/${this.coinType}'/${family}'/0`);
      this.#branches.set(family, branch);
    }
    const k = branch.deriveChild(index).privateKey;
    if (!k) throw new Error("fakelnd: derivation produced no private key");
    return k;
  }

  /** 33-byte compressed public key at a locator. */
  publicKey(family: number, index: number): Uint8Array {
    return secp256k1.getPublicKey(this.privateKey(family, index), true);
  }

  /**
   * lnd's ECDH: SHA-256(compressed(k(family, index) · ephemeral)).
   * @throws {Error} when `ephemeralPubkey` is not a valid point
   */
  sharedKey(ephemeralPubkey: Uint8Array, family: number, index: number): Uint8Array {
    return lndSharedKey(this.privateKey(family, index), ephemeralPubkey);
  }

  /** BIP-86 key of the default account, `m/86'/<coin>'/0'/<change>/<index>`, x-only. */
  taprootKey(change: number, index: number): Uint8Array {
    const pub = this.#root.derive(`m/86'/${this.coinType}'/0'/${change}/${index}`).publicKey;
    if (!pub) throw new Error("fakelnd: derivation produced no public key");
    return pub.slice(1);
  }
}
