/**
 * Test fixture: a consistent swap recovery record built the way initiate.ts builds one (real HTLC script and
 * transactions from buildHtlcTx), through {@linkcode swapRecordOf}.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { staticAddress } from "../staticaddr/script.ts";
import { txidFromBytes } from "../staticaddr/outpoint.ts";
import { HTLC_VARIANTS, type HtlcVariant } from "./types.ts";
import { htlcP2wshPkScript, htlcV2Script } from "./htlc.ts";
import { buildHtlcTx, type HtlcTx } from "./htlc_tx.ts";
import { type LoopInSwapRecord, type SwapRecordAddress, swapRecordOf } from "./swap_record.ts";

/** A 33-byte public key from a one-byte seed. */
export const pub = (seed: number): Uint8Array => secp256k1.getPublicKey(new Uint8Array(32).fill(seed), true);

/** The sample's static address (client key 42060/0, seeds 1 and 2, CSV 14 400, regtest). */
export const SAMPLE_ADDRESS = staticAddress({
  clientPubkey: pub(1),
  serverPubkey: pub(2),
  csvExpiry: 14_400,
  network: "regtest",
});

/**
 * A record with `values.length` deposits (`seed` varies the preimage and funding txids), swap amount
 * Σ values − `changeSat`.
 */
export function sampleSwapRecord(
  opts: {
    seed?: number;
    values?: bigint[];
    changeSat?: bigint;
    staticAddressId?: number;
    /** The static address the deposits pay (default the sample's, key 42060/0). */
    address?: SwapRecordAddress;
    /** The preimage (default derived from `seed`): another swap over the same deposits. */
    preimage?: Uint8Array;
    /** The client HTLC key (default locator 42060/5 with the seed-3 pubkey). */
    htlcKey?: { keyLocator: { family: number; index: number }; rawKeyBytes: Uint8Array };
  } = {},
): LoopInSwapRecord {
  const seed = opts.seed ?? 7;
  const values = opts.values ?? [300_000n, 200_000n];
  const changeSat = opts.changeSat ?? 100_000n;
  const address: SwapRecordAddress = opts.address ?? {
    id: opts.staticAddressId ?? 1,
    pkScript: SAMPLE_ADDRESS.pkScript,
    clientPubkey: pub(1),
    serverPubkey: pub(2),
    expiry: 14_400,
    clientKeyFamily: 42060,
    clientKeyIndex: 0,
  };
  const preimage = opts.preimage ?? sha256(Uint8Array.of(seed, 0x70));
  const swapHash = sha256(preimage);
  const htlcKey = opts.htlcKey ?? { keyLocator: { family: 42060, index: 5 }, rawKeyBytes: pub(3) };
  const serverKey = pub(4);
  const htlcExpiry = 1_900;
  const total = values.reduce((s, v) => s + v, 0n);
  const swapAmountSat = total - changeSat;
  const deposits = values.map((v, i) => ({
    txid: txidFromBytes(sha256(Uint8Array.of(seed, i))),
    vout: i,
    amountSat: v,
    pkScript: address.pkScript,
    confirmationHeight: i === 0 ? 800 : 0,
    timeoutSweepPkScript: Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(0x11 + i)),
  }));
  const htlcPkScript = htlcP2wshPkScript(htlcV2Script({
    senderPubkey: htlcKey.rawKeyBytes,
    receiverPubkey: serverKey,
    swapHash,
    cltvExpiry: htlcExpiry,
  }));
  const feeRates: Record<HtlcVariant, bigint> = { standard: 1_000n, high: 5_000n, extreme: 20_000n };
  const htlcTxs = {} as Record<HtlcVariant, HtlcTx>;
  for (const v of HTLC_VARIANTS) {
    htlcTxs[v] = buildHtlcTx({
      deposits: deposits.map((d) => ({ txid: d.txid, vout: d.vout, valueSat: d.amountSat })),
      swapAmountSat,
      changeSat,
      feeRateSatPerKw: feeRates[v],
      htlcPkScript,
      staticPkScript: address.pkScript,
    });
  }
  return swapRecordOf({
    network: "regtest",
    swapHash,
    preimage,
    htlcKey,
    quote: {
      deposits,
      address,
      selectedAmountSat: swapAmountSat,
      swapAmountSat,
      totalDepositSat: total,
      changeSat,
      swapFeeSat: 1_234n,
      tipHeight: 900,
    },
    maxSwapFeeSat: 2_000n,
    paymentTimeoutSeconds: 60,
    fast: false,
    label: "sample",
    initiator: "loopkit-cli",
    lastHop: null,
    initiationTime: new Date("2026-12-02T12:00:00.000Z"),
    htlcServerPubkey: serverKey,
    htlcExpiry,
    feeRates,
    htlcTxs,
    timeoutSweepPkScript: Uint8Array.of(0x00, 0x14, ...new Uint8Array(20).fill(0x22)),
    swapInvoice: "lnbcrt1sampleinvoice",
  });
}
