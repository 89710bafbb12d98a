import { assert, assertEquals, assertNotEquals } from "../../tests/assert.ts";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { nonceAggregate, nonceGen, Session, sortKeys } from "@scure/btc-signer/musig2.js";
import { staticAddress } from "../staticaddr/script.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { RawTx, Transaction } from "@scure/btc-signer";
import {
  buildHtlcTx,
  checkHtlcFeeGuards,
  feeForWeight,
  htlcFeeCapSat,
  htlcTxWeight,
  keySpendSighashes,
  txidOfRaw,
} from "./htlc_tx.ts";
import { verifyInput } from "./_interpreter_testing.ts";
import { assertLoopkitError, txidOf } from "./_testing.ts";

/** Spec §4.3's formula, written out: W = 4 × (8 + varint(N) + 41·N + varint(outs) + 43·outs) + 2 + 66·N. */
function specWeight(n: number, change: boolean): number {
  const varint = (x: number) => (x < 0xfd ? 1 : x <= 0xffff ? 3 : 5);
  const outs = change ? 2 : 1;
  return 4 * (8 + varint(n) + 41 * n + varint(outs) + 43 * outs) + 2 + 66 * n;
}

const P2WSH = Uint8Array.of(0x00, 0x20, ...new Uint8Array(32).fill(0xab));
const P2TR = Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(0xcd));

function deposits(values: bigint[]) {
  return values.map((valueSat, i) => ({ txid: txidOf(0x1000 + i), vout: i % 3, valueSat }));
}

Deno.test("htlcTxWeight is spec §4.3's formula: 444 WU for one deposit, 616 with change", () => {
  assertEquals(specWeight(1, false), 444);
  assertEquals(specWeight(1, true), 616);
  for (const n of [1, 2, 3, 10, 252, 253, 300]) {
    for (const change of [false, true]) {
      assertEquals(htlcTxWeight(n, change), specWeight(n, change), `${n} ${change}`);
    }
  }
  assertLoopkitError(() => htlcTxWeight(0, false), "loopin_invalid_argument", 1);
});

Deno.test("htlcTxWeight equals the measured weight of the signed transaction (64-byte key-path signatures)", () => {
  for (const n of [1, 2, 5, 253]) {
    for (const change of [false, true]) {
      const values = Array.from({ length: n }, () => 100_000n);
      const total = 100_000n * BigInt(n);
      const { tx } = buildHtlcTx({
        deposits: deposits(values),
        swapAmountSat: change ? total - 50_000n : total,
        changeSat: change ? 50_000n : 0n,
        feeRateSatPerKw: 0n,
        htlcPkScript: P2WSH,
        staticPkScript: P2TR,
      });
      const decoded = RawTx.decode(tx);
      const signed = RawTx.encode({
        ...decoded,
        segwitFlag: true,
        witnesses: decoded.inputs.map(() => [new Uint8Array(64)]),
      });
      const measured = 3 * tx.length + signed.length; // BIP-141: weight = 3 × base size + total size
      assertEquals(htlcTxWeight(n, change), measured, `${n} inputs, change ${change}`);
    }
  }
});

Deno.test("feeForWeight floors rate × weight / 1000", () => {
  assertEquals(feeForWeight(253n, 444), (253n * 444n - (253n * 444n) % 1000n) / 1000n);
  assertEquals(feeForWeight(1000n, 616), 616n);
  assertEquals(feeForWeight(2_501n, 1_000), 2_501n);
  assertEquals(feeForWeight(0n, 616), 0n);
  assertEquals(feeForWeight(1n, 999), 0n);
  assertLoopkitError(() => feeForWeight(-1n, 1), "loopin_invalid_argument", 1);
});

Deno.test("buildHtlcTx: version 2, nLockTime 0, snapshot-order inputs with sequence 0, HTLC at 0, change at 1", () => {
  const ds = deposits([300_000n, 200_000n, 50_000n]);
  const rate = 2_500n;
  const change = 50_000n;
  const swap = 550_000n - change;
  const built = buildHtlcTx({
    deposits: ds,
    swapAmountSat: swap,
    changeSat: change,
    feeRateSatPerKw: rate,
    htlcPkScript: P2WSH,
    staticPkScript: P2TR,
  });
  const w = specWeight(3, true);
  const fee = rate * BigInt(w) / 1000n;
  assertEquals(built.weight, w);
  assertEquals(built.feeSat, fee);
  assertEquals(built.htlcValueSat, swap - fee);
  const tx = Transaction.fromRaw(built.tx, { allowUnknownOutputs: true });
  assertEquals(tx.version, 2);
  assertEquals(tx.lockTime, 0);
  assertEquals(tx.inputsLength, 3);
  // Wire layout: after version (4) and input count (1), input i's outpoint is the txid in internal
  // (reversed) order followed by the vout, little-endian; then an empty scriptSig and sequence 0.
  let off = 5;
  for (const d of ds) {
    assertEquals(built.tx.subarray(off, off + 32), hex.decode(d.txid).reverse());
    assertEquals(new DataView(built.tx.buffer, built.tx.byteOffset + off + 32, 4).getUint32(0, true), d.vout);
    assertEquals(built.tx[off + 36], 0);
    assertEquals(new DataView(built.tx.buffer, built.tx.byteOffset + off + 37, 4).getUint32(0, true), 0);
    off += 41;
  }
  assertEquals(tx.outputsLength, 2);
  assertEquals(tx.getOutput(0).amount, swap - fee);
  assertEquals(tx.getOutput(0).script, P2WSH);
  assertEquals(tx.getOutput(1).amount, change);
  assertEquals(tx.getOutput(1).script, P2TR);
  // inputs − outputs = fee
  assertEquals(550_000n - (swap - fee) - change, built.feeSat);
  // txid = reversed double SHA-256 of the witness-less serialization.
  assertEquals(built.txid, hex.encode(sha256(sha256(built.tx)).reverse()));
  assertEquals(txidOfRaw(built.tx), built.txid);
});

Deno.test("buildHtlcTx: no change output when the change is 0", () => {
  const built = buildHtlcTx({
    deposits: deposits([100_000n]),
    swapAmountSat: 100_000n,
    changeSat: 0n,
    feeRateSatPerKw: 1_000n,
    htlcPkScript: P2WSH,
    staticPkScript: P2TR,
  });
  const tx = Transaction.fromRaw(built.tx, { allowUnknownOutputs: true });
  assertEquals(tx.outputsLength, 1);
  assertEquals(built.weight, 444);
  assertEquals(built.feeSat, 444n);
});

Deno.test("buildHtlcTx refuses inconsistent amounts, dust change, a fee above the cap and bad scripts", () => {
  const base = {
    deposits: deposits([100_000n]),
    swapAmountSat: 100_000n,
    changeSat: 0n,
    feeRateSatPerKw: 1_000n,
    htlcPkScript: P2WSH,
    staticPkScript: P2TR,
  };
  assertLoopkitError(
    () => buildHtlcTx({ ...base, swapAmountSat: 99_000n }),
    "htlc_tx_amounts_mismatch",
    1,
    "100000 sat",
  );
  assertLoopkitError(
    () => buildHtlcTx({ ...base, swapAmountSat: 99_900n, changeSat: 100n }),
    "htlc_tx_change_dust",
    1,
  );
  assertLoopkitError(
    () => buildHtlcTx({ ...base, maxFeeSat: 443n }),
    "htlc_tx_fee_too_high",
    1,
    "htlc tx fee 444 sat exceeds max fee 443 sat",
  );
  assertEquals(buildHtlcTx({ ...base, maxFeeSat: 444n }).feeSat, 444n);
  assertLoopkitError(() => buildHtlcTx({ ...base, feeRateSatPerKw: 1_000_000n }), "htlc_tx_fee_too_high", 1);
  assertLoopkitError(() => buildHtlcTx({ ...base, deposits: [] }), "htlc_tx_no_inputs", 1);
  assertLoopkitError(() => buildHtlcTx({ ...base, htlcPkScript: P2TR }), "htlc_tx_script_invalid", 1);
  assertLoopkitError(() => buildHtlcTx({ ...base, staticPkScript: P2WSH }), "htlc_tx_script_invalid", 1);
  assertLoopkitError(
    () => buildHtlcTx({ ...base, deposits: [{ txid: "AB", vout: 0, valueSat: 100_000n }] }),
    "invalid_outpoint",
    2,
  );
});

Deno.test("keySpendSighashes: signatures over them verify in bitcore-lib's taproot interpreter, per input", () => {
  // Key-path outputs to plain x-only keys (a valid P2TR output key is all the check needs).
  const privs = [1, 2, 3].map((i) => sha256(Uint8Array.of(i)));
  const prevouts = privs.map((p, i) => ({
    valueSat: 100_000n * BigInt(i + 1),
    pkScript: Uint8Array.of(0x51, 0x20, ...schnorr.getPublicKey(p)),
  }));
  const total = prevouts.reduce((s, p) => s + p.valueSat, 0n);
  const built = buildHtlcTx({
    deposits: prevouts.map((p, i) => ({ txid: txidOf(0x2000 + i), vout: i, valueSat: p.valueSat })),
    swapAmountSat: total - 1_000n,
    changeSat: 1_000n,
    feeRateSatPerKw: 1_000n,
    htlcPkScript: P2WSH,
    staticPkScript: P2TR,
  });
  const hashes = keySpendSighashes(built.tx, prevouts);
  assertEquals(hashes.length, 3);
  assertEquals(new Set(hashes.map((h) => hex.encode(h))).size, 3);
  const decoded = RawTx.decode(built.tx);
  const signed = RawTx.encode({
    ...decoded,
    segwitFlag: true,
    witnesses: privs.map((p, i) => [schnorr.sign(hashes[i], p)]),
  });
  for (let i = 0; i < 3; i++) {
    assertEquals(
      verifyInput(signed, i, prevouts[i].pkScript, prevouts[i].valueSat, undefined, prevouts),
      null,
      `input ${i}`,
    );
  }
  // A signature over another input's digest fails: each digest commits to its input index.
  const swapped = RawTx.encode({
    ...decoded,
    segwitFlag: true,
    witnesses: privs.map((p, i) => [schnorr.sign(hashes[(i + 1) % 3], p)]),
  });
  assertNotEquals(
    verifyInput(swapped, 0, prevouts[0].pkScript, prevouts[0].valueSat, undefined, prevouts),
    null,
  );
  // The digest commits to every prevout value (BIP-341 sha_amounts).
  const other = keySpendSighashes(
    built.tx,
    prevouts.map((p, i) => (i === 2 ? { ...p, valueSat: p.valueSat + 1n } : p)),
  );
  assertNotEquals(other[0], hashes[0]);
  assertLoopkitError(() => keySpendSighashes(built.tx, prevouts.slice(1)), "sighash_prevouts_mismatch", 1);
  assertLoopkitError(() => keySpendSighashes(Uint8Array.of(1, 2, 3), prevouts), "tx_undecodable", 1);
});

Deno.test("checkHtlcFeeGuards: 20 % standard, 50 % high and extreme, floored (spec §3.7)", () => {
  const A = 100_001n;
  const W = specWeight(1, false);
  // The largest rate whose fee stays within the cap, from the rule: floor(r·W/1000) ≤ floor(A·p/100).
  const maxRate = (pct: bigint) => {
    const cap = A * pct / 100n;
    return ((cap + 1n) * 1000n - 1n) / BigInt(W);
  };
  const rs = maxRate(20n), rb = maxRate(50n);
  assertEquals(htlcFeeCapSat("standard", A), 20_000n);
  assertEquals(htlcFeeCapSat("high", A), 50_000n);
  const fees = checkHtlcFeeGuards({
    swapAmountSat: A,
    weight: W,
    rates: { standard: rs, high: rb, extreme: rb },
  });
  assertEquals(fees.standard, rs * BigInt(W) / 1000n);
  assert(fees.standard <= 20_000n && (rs + 1n) * BigInt(W) / 1000n > 20_000n);
  for (const v of ["standard", "high", "extreme"] as const) {
    const rates = { standard: rs, high: rb, extreme: rb };
    rates[v] += 1n;
    assertLoopkitError(
      () => checkHtlcFeeGuards({ swapAmountSat: A, weight: W, rates }),
      "server_htlc_fee_too_high",
      1,
      "server htlc tx fee is higher than the configured allowed maximum",
      v,
    );
  }
  // A 50 % fee on a 400 sat swap leaves 200 sat: below dust.
  assertLoopkitError(
    () =>
      checkHtlcFeeGuards({
        swapAmountSat: 400n,
        weight: 1000,
        rates: { standard: 0n, high: 200n, extreme: 0n },
      }),
    "server_htlc_output_dust",
    1,
  );
  assertLoopkitError(
    () =>
      checkHtlcFeeGuards({ swapAmountSat: A, weight: W, rates: { standard: -1n, high: 0n, extreme: 0n } }),
    "server_htlc_fee_rate_invalid",
    1,
  );
});

Deno.test("end to end: a MuSig2 signature over each keySpendSighashes digest spends the real static address", () => {
  const clientPriv = sha256(new TextEncoder().encode("static client"));
  const serverPriv = sha256(new TextEncoder().encode("static server"));
  const clientPubkey = secp256k1.getPublicKey(clientPriv, true);
  const serverPubkey = secp256k1.getPublicKey(serverPriv, true);
  const addr = staticAddress({ clientPubkey, serverPubkey, csvExpiry: 14_400, network: "regtest" });
  const values = [700_000n, 300_000n];
  const prevouts = values.map((valueSat) => ({ valueSat, pkScript: addr.pkScript }));
  const built = buildHtlcTx({
    deposits: values.map((valueSat, i) => ({ txid: txidOf(0x3000 + i), vout: i, valueSat })),
    swapAmountSat: 900_000n,
    changeSat: 100_000n,
    feeRateSatPerKw: 2_000n,
    htlcPkScript: P2WSH,
    staticPkScript: addr.pkScript,
  });
  const digests = keySpendSighashes(built.tx, prevouts);
  const keys = sortKeys([clientPubkey, serverPubkey]);
  const sigs = digests.map((msg) => {
    const nc = nonceGen(clientPubkey, clientPriv);
    const ns = nonceGen(serverPubkey, serverPriv);
    const session = new Session(nonceAggregate([nc.public, ns.public]), keys, msg, [addr.tapTweak], [true]);
    const partials = keys.map((k) =>
      hex.encode(k) === hex.encode(clientPubkey)
        ? session.sign(nc.secret, clientPriv)
        : session.sign(ns.secret, serverPriv)
    );
    return session.partialSigAgg(partials);
  });
  const decoded = RawTx.decode(built.tx);
  const signed = RawTx.encode({ ...decoded, segwitFlag: true, witnesses: sigs.map((s) => [s]) });
  for (let i = 0; i < values.length; i++) {
    assertEquals(verifyInput(signed, i, addr.pkScript, values[i], undefined, prevouts), null, `input ${i}`);
  }
  // The change output pays the static address again.
  assertEquals(
    Transaction.fromRaw(built.tx, { allowUnknownOutputs: true }).getOutput(1).script,
    addr.pkScript,
  );
});
