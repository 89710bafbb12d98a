/**
 * Expiry and the timeout sweep. Fixture: tests/fixtures/static-address.json (copy of
 * shared/vectors/static-address.json) for the leaf script and control block.
 */
import { schnorr } from "@noble/curves/secp256k1.js";
import { hex } from "@scure/base";
import { RawTx, Transaction } from "@scure/btc-signer";
import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/assert.ts";
import vectors from "../../tests/fixtures/static-address.json" with { type: "json" };
import { LoopkitError } from "../errors.ts";
import type { StaticAddressRow } from "../db/static_addresses.ts";
import {
  blocksUntilExpiry,
  expirySweepFee,
  type ExpirySweepParams,
  expirySweepWeight,
  isExpired,
  signExpirySweep,
  timeoutSpendInfo,
  txidOf,
} from "./sweep.ts";
import { standInAddress, txidN, WalletStandIn } from "./_testing.ts";

Deno.test("blocksUntilExpiry() is E while unconfirmed and C + E − best once confirmed (Loop's RPC variant)", () => {
  // spec §6 "RPC views" 1: (C = 0, E = 144, best = 500) → 144; (C = 450, E = 144, best = 500) → 94.
  assertEquals(blocksUntilExpiry(0, 144, 500), 144);
  assertEquals(blocksUntilExpiry(450, 144, 500), 94);
  assertEquals(blocksUntilExpiry(450, 144, 594), 0);
  assertEquals(blocksUntilExpiry(450, 144, 600), -6);
});

Deno.test("isExpired(): unconfirmed never expires; confirmed expires at tip C + E, not at C + E − 1", () => {
  assertEquals(isExpired(0, 144, 1000), false); // TestDepositIsExpiredUnconfirmed
  assertEquals(isExpired(0, 1, 1_000_000), false);
  assertEquals(isExpired(100, 144, 243), false);
  assertEquals(isExpired(100, 144, 244), true);
  assertEquals(isExpired(100, 144, 10_000), true);
});

function rowOf(v: (typeof vectors.vectors)[number]): StaticAddressRow {
  return {
    id: 1,
    clientPubkey: hex.decode(v.client_pubkey),
    serverPubkey: hex.decode(v.server_pubkey),
    expiry: v.csv_expiry,
    clientKeyFamily: 42060,
    clientKeyIndex: 4,
    pkScript: hex.decode(v.pk_script),
    protocolVersion: 0,
    initiationHeight: 1,
  };
}

Deno.test("timeoutSpendInfo() gives the vectors' leaf script, control block and pkScript; a row with a wrong pkScript is refused", () => {
  for (const v of vectors.vectors) {
    const s = timeoutSpendInfo(rowOf(v));
    assertEquals(hex.encode(s.leafScript), v.timeout_leaf_script);
    assertEquals(hex.encode(s.controlBlock), v.control_block);
    assertEquals(hex.encode(s.pkScript), v.pk_script);
    assertEquals(s.csvExpiry, v.csv_expiry);
    assertEquals(s.keyLocator, { family: 42060, index: 4 });
  }
  const bad = rowOf(vectors.vectors[0]);
  bad.pkScript = Uint8Array.of(0x51, 0x20, ...new Uint8Array(32));
  assertEquals(assertThrows(() => timeoutSpendInfo(bad), LoopkitError).code, "db_corrupt");
});

function params(v: (typeof vectors.vectors)[number], valueSat = 100_000n): ExpirySweepParams {
  return {
    txid: txidN(0xabc),
    vout: 2,
    valueSat,
    spend: timeoutSpendInfo(rowOf(v)),
    sweepPkScript: Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(9)),
  };
}

Deno.test("expirySweepWeight() is the exact weight: 94-byte stripped tx ×4 plus the 2 + 1 + 65 + (1 + leaf) + 34 witness bytes", () => {
  for (const v of vectors.vectors) {
    const leafLen = v.timeout_leaf_script.length / 2;
    // stripped: version 4 + #in 1 + (outpoint 36 + script len 1 + sequence 4) + #out 1 + (8 + 1 + 34) + locktime 4
    const stripped = 4 + 1 + 41 + 1 + 43 + 4;
    const witness = 2 + 1 + (1 + 64) + (1 + leafLen) + (1 + 33);
    assertEquals(expirySweepWeight(params(v)), stripped * 4 + witness, `E = ${v.csv_expiry}`);
  }
  // Loop's ExpirySpendWeight() constant (518) assumes a 39-byte leaf; a 38-byte leaf (3-byte CSV push) is 517.
  const e14400 = vectors.vectors.find((v) => v.timeout_leaf_script.length / 2 === 38);
  if (e14400) assertEquals(expirySweepWeight(params(e14400)), 517);
});

Deno.test("expirySweepFee(): rate floored at min relay and 253 sat/kw, fee rounded up, 20% cap and dust refused", () => {
  assertEquals(expirySweepFee(100_000n, 517, 2_500n, 253n, "x:0"), {
    feeRateSatPerKw: 2_500n,
    weight: 517,
    feeSat: 1293n, // ceil(2500 × 517 / 1000) = ceil(1292.5)
  });
  assertEquals(expirySweepFee(100_000n, 517, 100n, 300n, "x:0").feeRateSatPerKw, 300n);
  assertEquals(expirySweepFee(100_000n, 517, 100n, 0n, "x:0").feeRateSatPerKw, 253n);
  assertEquals(expirySweepFee(100_000n, 517, 100n, 0n, "x:0").feeSat, 131n); // ceil(130.801) ≥ vsize 130
  // 20% of 10 000 sat = 2 000 sat: 3868 sat/kw × 517 WU = 1999.8 → 2000 is allowed, 3869 → 2001 is not.
  assertEquals(expirySweepFee(10_000n, 517, 3868n, 0n, "x:0").feeSat, 2000n);
  const high = assertThrows(() => expirySweepFee(10_000n, 517, 3869n, 0n, "ab:1"), LoopkitError);
  assertEquals(high.code, "sweep_fee_too_high");
  assert(high.message.includes("ab:1") && high.message.includes("20%"), high.message);
  // 700 sat − 131 sat = 569 ≥ 330 is fine; 450 − 131 = 319 < 330 is dust (and under the 20% cap? no: refused).
  assertEquals(
    assertThrows(() => expirySweepFee(450n, 517, 253n, 0n, "x:0"), LoopkitError).code,
    "sweep_fee_too_high",
  );
});

Deno.test("signExpirySweep() builds v2, locktime 0, nSequence = E, value − fee to the sweep script, signed through SignOutputRaw", async () => {
  for (const v of vectors.vectors) {
    const lnd = new WalletStandIn();
    const row = rowOf(v);
    // The stand-in signs with its own key ring: give the row that key so the signature can verify.
    const own = standInAddress(v.csv_expiry);
    const p: ExpirySweepParams = {
      ...params(v),
      spend: timeoutSpendInfo({ ...row, ...own, id: 1 }),
    };
    const s = await signExpirySweep(lnd, p, 6);
    const raw = RawTx.decode(s.tx);
    assertEquals(raw.version, 2);
    assertEquals(raw.lockTime, 0);
    assertEquals(raw.inputs.length, 1);
    assertEquals(hex.encode(Uint8Array.from(raw.inputs[0].txid)), p.txid); // display order
    assertEquals(raw.inputs[0].index, 2);
    assertEquals(raw.inputs[0].sequence, v.csv_expiry);
    assertEquals(raw.outputs, [{ amount: 100_000n - s.feeSat, script: p.sweepPkScript }]);
    assertEquals(s.feeSat, (2_500n * BigInt(s.weight) + 999n) / 1000n);
    assertEquals(raw.witnesses![0].length, 3);
    assertEquals(raw.witnesses![0][1], p.spend.leafScript);
    assertEquals(raw.witnesses![0][2], p.spend.controlBlock);
    assertEquals(s.txid, txidOf(s.tx));
    // What lnd was asked: the client key's locator, the leaf, the prevout, script-spend, SIGHASH_DEFAULT.
    const call = lnd.signCalls[0];
    assertEquals(call.descs[0].keyDesc.keyLocator, { family: 42060, index: 0 });
    assertEquals(call.descs[0].signMethod, "SIGN_METHOD_TAPROOT_SCRIPT_SPEND");
    assertEquals(call.descs[0].sighash, 0);
    assertEquals(call.descs[0].witnessScript, p.spend.leafScript);
    assertEquals(call.prev, [{ valueSat: 100_000n, pkScript: p.spend.pkScript }]);

    // Independent check: @scure/btc-signer's PSBT finalizer, given the same signature, produces the same bytes.
    const t = new Transaction({ version: 2, lockTime: 0, allowUnknownOutputs: true });
    t.addInput({
      txid: p.txid,
      index: 2,
      sequence: v.csv_expiry,
      witnessUtxo: { script: p.spend.pkScript, amount: 100_000n },
      tapLeafScript: [[{
        version: p.spend.controlBlock[0],
        internalKey: p.spend.controlBlock.subarray(1),
        merklePath: [],
      }, Uint8Array.of(...p.spend.leafScript, 0xc0)]],
    });
    t.addOutput({ script: p.sweepPkScript, amount: 100_000n - s.feeSat });
    const sighash = t.preimageWitnessV1(0, [p.spend.pkScript], 0, [100_000n], -1, p.spend.leafScript, 0xc0);
    assert(schnorr.verify(raw.witnesses![0][0], sighash, own.clientPubkey.subarray(1)));
    // btc-signer's finalizer does not know the CHECKSIGVERIFY/CSV template: place the witness by hand.
    t.updateInput(0, {
      finalScriptWitness: [raw.witnesses![0][0], p.spend.leafScript, p.spend.controlBlock],
    });
    assertEquals(hex.encode(t.extract()), hex.encode(s.tx));
    assertEquals(t.weight, s.weight);
  }
});

Deno.test("signExpirySweep() refuses a signature that does not verify (lnd signed with another key) and a fee above 20%", async () => {
  const v = vectors.vectors[0];
  const own = standInAddress(v.csv_expiry);
  const p: ExpirySweepParams = { ...params(v), spend: timeoutSpendInfo({ ...rowOf(v), ...own, id: 1 }) };
  const lnd = new WalletStandIn();
  lnd.signWithWrongKey = true;
  const err = await assertRejects(() => signExpirySweep(lnd, p, 6), LoopkitError);
  assertEquals(err.code, "sweep_signature_invalid");
  const costly = new WalletStandIn();
  costly.feeRate = 1_000_000n;
  const high = await assertRejects(() => signExpirySweep(costly, p, 6), LoopkitError);
  assertEquals(high.code, "sweep_fee_too_high");
  assertEquals(costly.signCalls.length, 0);
});
