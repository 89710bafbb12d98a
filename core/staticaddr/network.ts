/**
 * Bitcoin networks loopkit runs on and the per-network constants the static address needs.
 *
 * Source of the facts: spec/static-address-and-deposits.md §1 (coin type) and §2.6 (bech32 HRP);
 * base58 version bytes from btcd's chain parameters (only needed for btc-signer's NETWORK shape).
 *
 * @module
 */
import type { BTC_NETWORK } from "@scure/btc-signer/utils.js";
import { ExitCode, LoopkitError } from "../errors.ts";

/** Network names, spelled as lnd and Loop spell them (`~/.loop/<network>/`). `testnet` is testnet3. */
export const NETWORK_NAMES = ["mainnet", "testnet", "testnet4", "signet", "regtest", "simnet"] as const;

/** One of {@linkcode NETWORK_NAMES}. */
export type NetworkName = typeof NETWORK_NAMES[number];

/** Constants of one network. */
export interface NetworkParams {
  /** The network name. */
  readonly name: NetworkName;
  /** Bech32/bech32m human-readable part of segwit addresses (`bc`, `tb`, `bcrt`, `sb`). */
  readonly bech32Hrp: string;
  /**
   * BIP-44 coin type lnd uses in `m/1017'/<coin_type>'/<key_family>'/0/<index>`:
   * 0 on mainnet, 1 everywhere else (spec/static-address-and-deposits.md §1).
   */
  readonly coinType: 0 | 1;
  /** The `NETWORK` object `@scure/btc-signer` takes (HRP and base58 version bytes). */
  readonly btcSigner: Readonly<BTC_NETWORK>;
}

const mainnetBase58 = { pubKeyHash: 0x00, scriptHash: 0x05, wif: 0x80 };
const testBase58 = { pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef };
const simnetBase58 = { pubKeyHash: 0x3f, scriptHash: 0x7b, wif: 0x64 };

function params(
  name: NetworkName,
  bech32Hrp: string,
  coinType: 0 | 1,
  base58: { pubKeyHash: number; scriptHash: number; wif: number },
): NetworkParams {
  return Object.freeze({
    name,
    bech32Hrp,
    coinType,
    btcSigner: Object.freeze({ bech32: bech32Hrp, ...base58 }),
  });
}

/** Constants of every supported network, by name. */
export const NETWORKS: Readonly<Record<NetworkName, NetworkParams>> = Object.freeze({
  mainnet: params("mainnet", "bc", 0, mainnetBase58),
  testnet: params("testnet", "tb", 1, testBase58),
  testnet4: params("testnet4", "tb", 1, testBase58),
  signet: params("signet", "tb", 1, testBase58),
  regtest: params("regtest", "bcrt", 1, testBase58),
  simnet: params("simnet", "sb", 1, simnetBase58),
});

/** True when `name` is exactly one of {@linkcode NETWORK_NAMES} (case-sensitive). */
export function isNetworkName(name: string): name is NetworkName {
  return (NETWORK_NAMES as readonly string[]).includes(name);
}

/**
 * Parses a network name strictly: exact, lower-case, one of {@linkcode NETWORK_NAMES}.
 *
 * @param name user or config input, e.g. `"regtest"`
 * @returns the network name
 * @throws {LoopkitError} code `unknown_network`, exit 2, for any other string (including
 *   `"testnet3"` and `"Mainnet"`)
 *
 * @example
 * ```ts
 * import { parseNetwork } from "./network.ts";
 * parseNetwork("regtest"); // "regtest"
 * ```
 */
export function parseNetwork(name: string): NetworkName {
  if (isNetworkName(name)) return name;
  throw new LoopkitError(
    "unknown_network",
    `network: unknown network ${JSON.stringify(name)}: want one of ${NETWORK_NAMES.join(", ")}`,
    ExitCode.Usage,
  );
}

/**
 * Constants of a network.
 *
 * @param name a network name (validated: see {@linkcode parseNetwork})
 * @throws {LoopkitError} code `unknown_network` for an unknown name
 */
export function networkParams(name: NetworkName): NetworkParams {
  return NETWORKS[parseNetwork(name)];
}
