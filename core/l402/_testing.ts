/**
 * Test helpers for core/l402 and the modules built on it (not part of the public surface): Loop's token
 * fixture, spec backup-and-recovery.md §8.
 *
 * @module
 */
import { encodeL402Identifier } from "./identifier.ts";
import { encodeMacaroonV2, mintMacaroon } from "./macaroon.ts";
import type { TokenFileFields } from "./token_file.ts";

/** 32 bytes: `seed` followed by 31 zero bytes (Loop's fixture convention, spec §8). */
export function seeded(seed: number): Uint8Array {
  const b = new Uint8Array(32);
  b[0] = seed;
  return b;
}

/**
 * Loop's token fixture with `seed` (spec §8): payment hash, token ID and preimage (when `paid`, else 32 zero
 * bytes) all `seeded(seed)`; the macaroon minted with root key "loop-recovery-test-root-key" at location
 * "loop.test"; `seed`·1000 msat paid and `seed`·10 msat routing fee.
 */
export function loopTokenFixture(seed: number, paid: boolean, createdAtNs: bigint): TokenFileFields {
  const identifier = encodeL402Identifier({ version: 0, paymentHash: seeded(seed), tokenId: seeded(seed) });
  const mac = mintMacaroon(new TextEncoder().encode("loop-recovery-test-root-key"), identifier, "loop.test");
  return {
    macaroonBytes: encodeMacaroonV2(mac),
    paymentHash: seeded(seed),
    preimage: paid ? seeded(seed) : new Uint8Array(32),
    amountPaidMsat: BigInt(seed * 1000),
    routingFeePaidMsat: BigInt(seed * 10),
    createdAtNs,
  };
}
