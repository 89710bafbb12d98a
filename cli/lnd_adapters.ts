/**
 * Small adapters from the lnd client to the interfaces core packages take.
 *
 * @module
 */
import { Address, OutScript } from "@scure/btc-signer";
import type { LndClient } from "../lnd/types.ts";
import { type NetworkName, NETWORKS } from "../core/staticaddr/network.ts";
import type { SyncLnd } from "../core/deposits/sync.ts";
import { LoopkitError } from "../core/errors.ts";

/**
 * Decodes an address lnd returned into its pkScript.
 * @throws {LoopkitError} `lnd_bad_answer` when the address is not valid for `network`
 */
export function pkScriptOfAddress(address: string, network: NetworkName): Uint8Array {
  try {
    return OutScript.encode(Address(NETWORKS[network].btcSigner).decode(address));
  } catch (err) {
    throw new LoopkitError(
      "lnd_bad_answer",
      `lnd returned address "${address}" that is not valid on ${network}: ${(err as Error).message}`,
    );
  }
}

/** The lnd surface `deposits sync` needs (wallet view, sweep signing and publishing), with NextAddr decoded to a pkScript. */
export function syncLnd(lnd: LndClient, network: NetworkName): SyncLnd {
  return {
    getInfo: () => lnd.getInfo(),
    listUnspent: (min, max, opts) => lnd.listUnspent(min, max, opts),
    nextSweepPkScript: async () => pkScriptOfAddress(await lnd.nextAddr(), network),
    estimateFeeSatPerKw: (confTarget) => lnd.estimateFeeSatPerKw(confTarget),
    minRelayFeeSatPerKw: () => lnd.minRelayFeeSatPerKw(),
    signOutputRaw: (tx, descs, prev) => lnd.signOutputRaw(tx, descs, prev),
    publishTransaction: (tx, label) => lnd.publishTransaction(tx, label),
    registerConfirmation: (txid, pkScript, numConfs, heightHint, opts) =>
      lnd.registerConfirmation(txid, pkScript, numConfs, heightHint, opts),
    registerSpend: (outpoint, pkScript, heightHint, opts) =>
      lnd.registerSpend(outpoint, pkScript, heightHint, opts),
  };
}
