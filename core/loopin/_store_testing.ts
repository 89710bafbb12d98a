/**
 * Test helpers of the loop-in store and sync: a temp database with one static address and deposits, and a
 * new-swap record. Not part of the public surface.
 *
 * @module
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { type Db, openDb } from "../db/db.ts";
import { insertStaticAddress, type StaticAddressRow } from "../db/static_addresses.ts";
import { insertDeposit } from "../deposits/store.ts";
import { standInAddress, standInPrivateKey } from "../deposits/_testing.ts";
import type { NewSwapRecord } from "./store.ts";

/** Display txid number `n`. */
export const txidN = (n: number) => n.toString(16).padStart(64, "0");

/** A temp database with the stand-in static address (id 1) and deposits `txidN(i):0` of the given values. */
export async function tempLoopInDb(
  opts: { amounts?: bigint[]; confirmationHeight?: number; dir?: string; csvExpiry?: number } = {},
): Promise<{
  db: Db;
  dir: string;
  url: string;
  address: StaticAddressRow;
  outpoints: string[];
  [Symbol.asyncDispose](): Promise<void>;
}> {
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "loopkit-loopin-" });
  const url = `file:${dir}/loopkit.db`;
  const db = await openDb({ url, network: "regtest" });
  const a = standInAddress(opts.csvExpiry ?? 2000);
  const amounts = opts.amounts ?? [1_000_000n, 2_000_000n];
  const outpoints: string[] = [];
  const id = await db.write(async (tx) => {
    const id = await insertStaticAddress(tx, a);
    for (let i = 0; i < amounts.length; i++) {
      await insertDeposit(tx, {
        txid: txidN(i + 1),
        vout: 0,
        amountSat: amounts[i],
        confirmationHeight: opts.confirmationHeight ?? 100,
        pkScript: a.pkScript,
        depositId: sha256(new TextEncoder().encode(`deposit ${i}`)),
        timeoutSweepPkScript: new Uint8Array(34).fill(9),
      }, new Date("2026-01-01T00:00:00Z"));
      outpoints.push(`${txidN(i + 1)}:0`);
    }
    return id;
  });
  return {
    db,
    dir,
    url,
    address: { ...a, id },
    outpoints,
    async [Symbol.asyncDispose]() {
      db.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** The client HTLC key of test swaps: the stand-in key (42060, 5). */
export function htlcKey() {
  return {
    rawKeyBytes: secp256k1.getPublicKey(standInPrivateKey(42060, 5), true),
    keyLocator: { family: 42060, index: 5 },
  };
}

/** A new-swap record over `outpoints` with preimage byte `seed`. */
export function newSwap(outpoints: string[], total: bigint, seed = 1, extra: Partial<NewSwapRecord> = {}) {
  const preimage = new Uint8Array(32).fill(seed);
  return {
    swapHash: sha256(preimage),
    preimage,
    htlcKey: htlcKey(),
    depositOutpoints: outpoints,
    selectedAmountSat: 0n,
    swapAmountSat: total,
    totalDepositSat: total,
    quotedSwapFeeSat: 1_000n,
    maxSwapFeeSat: 2_000n,
    paymentTimeoutSeconds: 60,
    label: "",
    initiator: "loopkit-test",
    fast: false,
    lastHop: null,
    initiationHeight: 200,
    initiationTime: new Date("2026-01-02T00:00:00Z"),
    staticAddressId: 1,
    owner: "pid:1",
    ...extra,
  } satisfies NewSwapRecord;
}
