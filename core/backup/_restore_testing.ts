/**
 * Test helpers for the restore code (not part of the public surface): an in-process lnd stand-in
 * with lnd's key derivation (BIP-32, `m/1017'/<coin>'/<family>'/0/<index>`), lnd's `DeriveSharedKey`
 * formula, `ImportTapscript` with "already exists" on repeats, a settable wallet and injectable faults.
 *
 * @module
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import { sha256 } from "@noble/hashes/sha2.js";
import type {
  ConfirmationDetails,
  ImportTapscriptResult,
  KeyDescriptor,
  KeyLocator,
  LndClient,
  LndInfo,
  SpendDetails,
  Utxo,
} from "../../lnd/types.ts";
import { HDKey } from "@scure/bip32";
import { Transaction } from "@scure/btc-signer";
import { FakeKeyRing } from "../../tests/fakelnd/keyring.ts";
import { LndError } from "../../lnd/lnd_error.ts";
import { treeHash } from "../../tests/fs.ts";
import { staticAddress } from "../staticaddr/script.ts";
import type { NetworkName } from "../staticaddr/network.ts";

/** The lnd calls the restore code makes (counted in {@linkcode MemLnd.calls}). */
export type MemLndRpc =
  | "deriveSharedKey"
  | "deriveKey"
  | "deriveNextKey"
  | "importTapscript"
  | "listUnspent"
  | "getInfo"
  | "nextAddr";

/** Call counts per lnd call. */
export type MemLndCalls = Record<MemLndRpc, number>;

/** An in-process lnd for unit tests. */
export class MemLnd implements Pick<LndClient, MemLndRpc | "registerConfirmation" | "registerSpend"> {
  readonly keyRing: FakeKeyRing;
  calls: MemLndCalls = {
    deriveSharedKey: 0,
    deriveKey: 0,
    deriveNextKey: 0,
    importTapscript: 0,
    listUnspent: 0,
    getInfo: 0,
    nextAddr: 0,
  };
  derived: KeyLocator[] = [];
  /** Every import lnd accepted, as hex of the x-only internal key + leaf. */
  imported = new Set<string>();
  utxos: Utxo[] = [];
  height = 700;
  /** Throw this from `importTapscript` (after `importFailAfter` successful calls). */
  importError: Error | null = null;
  importFailAfter = 0;
  /** Throw this from `deriveKey` for these locators ("family/index"). */
  deriveErrors = new Map<string, Error>();
  /** Throw this from `listUnspent`. */
  listError: Error | null = null;
  /** Confirmations by txid for `registerConfirmation`. */
  confirmations = new Map<string, ConfirmationDetails>();
  registrations: { txid: string | null; pkScript: string; heightHint: number; numConfs: number }[] = [];
  /** Spends by outpoint ("txid:vout") for `registerSpend`. */
  spends = new Map<string, SpendDetails>();
  spendRegistrations: { outpoint: string; pkScript: string; heightHint: number }[] = [];
  #addr = 0;
  #keys = new Map<string, Uint8Array>();
  #root: HDKey;
  #families = new Map<number, HDKey>();

  constructor(seedLabel = "memlnd", readonly network: NetworkName = "regtest") {
    const seed = sha256(new TextEncoder().encode(seedLabel));
    this.keyRing = new FakeKeyRing(seed, network);
    this.#root = HDKey.fromMasterSeed(seed);
  }

  deriveSharedKey(ephemeralPubkey: Uint8Array, keyLoc: KeyLocator): Promise<Uint8Array> {
    this.calls.deriveSharedKey++;
    return Promise.resolve(this.keyRing.sharedKey(ephemeralPubkey, keyLoc.family, keyLoc.index));
  }

  deriveKey(keyLoc: KeyLocator): Promise<KeyDescriptor> {
    this.calls.deriveKey++;
    this.derived.push({ ...keyLoc });
    const err = this.deriveErrors.get(`${keyLoc.family}/${keyLoc.index}`);
    if (err) return Promise.reject(err);
    return Promise.resolve({
      rawKeyBytes: this.publicKey(keyLoc.family, keyLoc.index),
      keyLocator: { ...keyLoc },
    });
  }

  /** lnd's public key at (family, index), cached (BIP-32 derivation is slow). */
  publicKey(family: number, index: number): Uint8Array {
    const id = `${family}/${index}`;
    let k = this.#keys.get(id);
    if (!k) {
      // Same path as FakeKeyRing (m/1017'/<coin>'/<family>'/0/<index>), with the family node cached.
      let node = this.#families.get(family);
      if (!node) {
        node = this.#root.derive(`m/1017'/${this.keyRing.coinType}'/${family}'/0`);
        this.#families.set(family, node);
      }
      k = node.deriveChild(index).publicKey!;
      this.#keys.set(id, k);
    }
    return k.slice();
  }

  deriveNextKey(): Promise<KeyDescriptor> {
    this.calls.deriveNextKey++;
    return Promise.reject(new Error("MemLnd: DeriveNextKey must not be called by a restore"));
  }

  importTapscript(internalKeyXOnly: Uint8Array, leafScript: Uint8Array): Promise<ImportTapscriptResult> {
    this.calls.importTapscript++;
    if (this.importError && this.calls.importTapscript > this.importFailAfter) {
      return Promise.reject(this.importError);
    }
    const id = bytesToHex(internalKeyXOnly) + bytesToHex(leafScript);
    if (this.imported.has(id)) return Promise.resolve({ imported: false });
    this.imported.add(id);
    return Promise.resolve({ imported: true });
  }

  listUnspent(): Promise<Utxo[]> {
    this.calls.listUnspent++;
    if (this.listError) return Promise.reject(this.listError);
    return Promise.resolve(this.utxos.map((u) => ({ ...u })));
  }

  getInfo(): Promise<LndInfo> {
    this.calls.getInfo++;
    return Promise.resolve({
      identityPubkey: bytesToHex(this.keyRing.publicKey(6, 0)),
      blockHeight: this.height,
      blockHash: "00".repeat(32),
      chains: [{ chain: "bitcoin", network: this.network }],
      syncedToChain: true,
      version: "memlnd",
    });
  }

  nextAddr(): Promise<string> {
    this.calls.nextAddr++;
    const key = this.keyRing.taprootKey(0, this.#addr++);
    // A P2TR address is not needed by callers that take the pkScript through an adapter; return hex.
    return Promise.resolve(bytesToHex(key));
  }

  registerConfirmation(
    txid: string | null,
    pkScript: Uint8Array,
    numConfs: number,
    heightHint: number,
  ): Promise<ConfirmationDetails | null> {
    this.registrations.push({ txid, pkScript: bytesToHex(pkScript), heightHint, numConfs });
    const conf = txid === null ? undefined : this.confirmations.get(txid);
    if (!conf) return Promise.resolve(null);
    // Like lnd's ConfRequest.MatchesTx: with a txid, the script must also be one of the outputs.
    const tx = Transaction.fromRaw(conf.rawTx, { allowUnknownOutputs: true, disableScriptCheck: true });
    for (let i = 0; i < tx.outputsLength; i++) {
      if (bytesToHex(tx.getOutput(i).script ?? new Uint8Array()) === bytesToHex(pkScript)) {
        return Promise.resolve(conf);
      }
    }
    return Promise.resolve(null);
  }

  registerSpend(
    outpoint: { txid: string; vout: number },
    pkScript: Uint8Array,
    heightHint: number,
  ): Promise<SpendDetails | null> {
    this.spendRegistrations.push({
      outpoint: `${outpoint.txid}:${outpoint.vout}`,
      pkScript: bytesToHex(pkScript),
      heightHint,
    });
    return Promise.resolve(this.spends.get(`${outpoint.txid}:${outpoint.vout}`) ?? null);
  }

  /** The static address of child (family, index) with a server key and expiry. */
  childAddress(family: number, index: number, serverPubkey: Uint8Array, csvExpiry: number) {
    return staticAddress({
      clientPubkey: this.publicKey(family, index),
      serverPubkey,
      csvExpiry,
      network: this.network,
    });
  }
}

/** A wallet UTXO paying `pkScript`. */
export function utxoFor(pkScript: Uint8Array, n: number, confirmations = 3, amountSat = 50_000n): Utxo {
  return {
    txid: bytesToHex(sha256(new TextEncoder().encode(`utxo ${n}`))),
    vout: n % 3,
    amountSat,
    pkScript: pkScript.slice(),
    confirmations,
    address: "",
  };
}

/** An lnd error as the gRPC client raises it (exit 1), or an unreachable lnd (exit 75). */
export function lndFailure(rpc: string, details: string, unreachable = false): LndError {
  return new LndError(rpc, unreachable ? "unavailable" : "unknown", details, {
    code: unreachable ? "lnd_unreachable" : "lnd_rpc",
    exitCode: unreachable ? 75 : 1,
  });
}

/**
 * Names, types, modes and content hashes of every entry below `dir` (no mtimes): equal before and
 * after ⇒ the same files with the same bytes, even if some were created and removed in between.
 */
export const contentHash = (dir: string): Promise<string> => treeHash(dir);
