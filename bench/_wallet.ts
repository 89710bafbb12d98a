/**
 * Bench fixtures: a wallet of N UTXOs of which M pay our static address, and a data directory whose
 * database holds that address (client key = the fake lnd's 42060/0, so the fake could sign for it).
 *
 * @module
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { openDb } from "../core/db/db.ts";
import { insertStaticAddress } from "../core/db/static_addresses.ts";
import { staticAddress } from "../core/staticaddr/script.ts";
import type { FakeUtxo } from "../tests/fakelnd/server.ts";

/** CSV expiry of the bench address: far enough that nothing expires during a bench. */
export const BENCH_CSV = 14_400;

/** Deterministic pseudo-random bytes (xorshift), so runs are comparable. */
function prng(seed: number): (n: number) => Uint8Array {
  let x = seed >>> 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
    return out;
  };
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/**
 * `total` wallet UTXOs: `ours` pay `pkScript` (confirmations 0..143, one in eight unconfirmed) and sit in lnd's
 * `imported` account (where ImportTapscript files them; the bench database is written directly, so the fake
 * never saw the import), the rest are P2TR and P2WPKH outputs of the wallet itself (`default` account).
 * Order is shuffled deterministically.
 */
export function benchWallet(total: number, ours: number, pkScript: Uint8Array, tip: number): FakeUtxo[] {
  const rand = prng(0x10ad);
  const utxos: FakeUtxo[] = [];
  for (let i = 0; i < total; i++) {
    const mine = i < ours;
    const confirmations = i % 8 === 0 ? 0 : (i % 144) + 1;
    utxos.push({
      txid: hex(rand(32)),
      vout: i % 3,
      amountSat: 10_000n + BigInt(i),
      pkScript: mine
        ? pkScript
        : i % 2
        ? Uint8Array.of(0x51, 0x20, ...rand(32))
        : Uint8Array.of(0x00, 0x14, ...rand(20)),
      confirmations: Math.min(confirmations, tip),
      account: mine ? "imported" : "default",
    });
  }
  for (let i = utxos.length - 1; i > 0; i--) {
    const j = (rand(4).reduce((a, b) => a * 256 + b, 0) >>> 0) % (i + 1);
    [utxos[i], utxos[j]] = [utxos[j], utxos[i]];
  }
  return utxos;
}

/** The bench static address for a client key; returns its pkScript. */
export function benchAddress(clientPubkey: Uint8Array) {
  const serverPriv = new Uint8Array(32).fill(0x42);
  const serverPubkey = secp256k1.getPublicKey(serverPriv, true);
  const a = staticAddress({ clientPubkey, serverPubkey, csvExpiry: BENCH_CSV, network: "regtest" });
  return {
    row: {
      clientPubkey,
      serverPubkey,
      expiry: BENCH_CSV,
      clientKeyFamily: 42060,
      clientKeyIndex: 0,
      pkScript: a.pkScript,
      protocolVersion: 0,
      initiationHeight: 1,
    },
    pkScript: a.pkScript,
  };
}

/** Writes `<loopdir>/regtest/loopkit.db` holding the address row; returns the data dir. */
export async function benchDataDir(loopdir: string, clientPubkey: Uint8Array): Promise<string> {
  const dataDir = `${loopdir}/regtest`;
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const db = await openDb({ url: `file:${dataDir}/loopkit.db`, network: "regtest" });
  try {
    await db.write((tx) => insertStaticAddress(tx, benchAddress(clientPubkey).row));
  } finally {
    db.close();
  }
  return dataDir;
}

/** min / median / max of samples in ms. */
export function stats(samples: number[]): { n: number; min: number; median: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { n: s.length, min: s[0], median, max: s[s.length - 1] };
}
