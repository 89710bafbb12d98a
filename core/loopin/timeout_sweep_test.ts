import { assert, assertEquals, assertNotEquals } from "../../tests/assert.ts";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { RawTx, Transaction } from "@scure/btc-signer";
import { htlcP2wshPkScript, htlcV2Script } from "./htlc.ts";
import { buildHtlcTx } from "./htlc_tx.ts";
import {
  buildHtlcTimeoutSweep,
  finalizeHtlcTimeoutSweep,
  type HtlcTimeoutSweepParams,
  MIN_RELAY_FEE_RATE_SAT_PER_KW,
  timeoutSweepWeight,
  witnessV0Sighash,
} from "./timeout_sweep.ts";
import { verifyInput } from "./_interpreter_testing.ts";
import { assertLoopkitError, txidOf } from "./_testing.ts";

const senderPriv = sha256(new TextEncoder().encode("sweep sender"));
const senderPubkey = secp256k1.getPublicKey(senderPriv, true);
const receiverPubkey = secp256k1.getPublicKey(sha256(new TextEncoder().encode("sweep receiver")), true);
const swapHash = sha256(new TextEncoder().encode("sweep preimage"));
const STATIC = Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(9));
const SWEEP_TO = Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(4));
const CLTV = 864_350;

const script = htlcV2Script({ senderPubkey, receiverPubkey, swapHash, cltvExpiry: CLTV });
const pk = htlcP2wshPkScript(script);

/** lnd's TxWeightEstimator for one witness input + one P2TR output, with Loop's success-witness size. */
function lndWeight(scriptLen: number): number {
  const stripped = 4 + 1 + 41 + 1 + (8 + 1 + 34) + 4;
  return stripped * 4 + 2 + (1 + 1 + 73 + 1 + 32 + 1 + scriptLen);
}

Deno.test("timeoutSweepWeight is 583 WU for a 2-byte CLTV number and 584 for a 3-byte one (review §5)", () => {
  const s2 = htlcV2Script({ senderPubkey, receiverPubkey, swapHash, cltvExpiry: 30_000 });
  const s3 = htlcV2Script({ senderPubkey, receiverPubkey, swapHash, cltvExpiry: 800_000 });
  assertEquals(lndWeight(s2.length), 583);
  assertEquals(lndWeight(s3.length), 584);
  assertEquals(timeoutSweepWeight(s2), 583);
  assertEquals(timeoutSweepWeight(s3), 584);
});

/** The three HTLC variants of one swap with change, as the server could publish them. */
function variants() {
  const deposits = [{ txid: txidOf(0xaa), vout: 1, valueSat: 600_000n }, {
    txid: txidOf(0xbb),
    vout: 0,
    valueSat: 400_000n,
  }];
  return [1_000n, 10_000n, 40_000n].map((rate) =>
    buildHtlcTx({
      deposits,
      swapAmountSat: 900_000n,
      changeSat: 100_000n,
      feeRateSatPerKw: rate,
      htlcPkScript: pk,
      staticPkScript: STATIC,
    })
  );
}

function params(over: Partial<HtlcTimeoutSweepParams> = {}): HtlcTimeoutSweepParams {
  const v = variants()[0];
  return {
    htlcTxid: v.txid,
    htlcVout: 0,
    htlcValueSat: v.htlcValueSat,
    htlcScript: script,
    htlcPkScript: pk,
    cltvExpiry: CLTV,
    lockTime: CLTV,
    sweepPkScript: SWEEP_TO,
    feeRateSatPerKw: 2_000n,
    ...over,
  };
}

function signAndFinalize(unsigned: Uint8Array, valueSat: bigint): Uint8Array {
  const digest = witnessV0Sighash(unsigned, 0, script, valueSat);
  const sig = secp256k1.sign(digest, senderPriv, { prehash: false, lowS: true, format: "der" });
  return finalizeHtlcTimeoutSweep(unsigned, sig, senderPubkey, script, valueSat);
}

Deno.test("the sweep of whichever variant confirmed spends its output 0 and validates in the interpreter (decision 6, scenario 30)", () => {
  for (const v of variants()) {
    const sweep = buildHtlcTimeoutSweep(params({ htlcTxid: v.txid, htlcValueSat: v.htlcValueSat }));
    const tx = Transaction.fromRaw(sweep.tx, { allowUnknownOutputs: true });
    assertEquals(tx.version, 2);
    assertEquals(tx.lockTime, CLTV);
    assertEquals(tx.inputsLength, 1);
    assertEquals(hex.encode(tx.getInput(0).txid!), v.txid);
    assertEquals(tx.getInput(0).index, 0); // output 0: the HTLC, never the change at 1
    assertEquals(tx.getInput(0).sequence, 1);
    assertEquals(tx.outputsLength, 1);
    assertEquals(tx.getOutput(0).script, SWEEP_TO);
    const fee = 2_000n * BigInt(lndWeight(script.length)) / 1000n;
    assertEquals(sweep.feeSat, fee);
    assertEquals(sweep.outputValueSat, v.htlcValueSat - fee);
    assert(sweep.outputValueSat <= v.htlcValueSat);
    assert(sweep.outputValueSat > 100_000n, "more than the change output");
    const signed = signAndFinalize(sweep.tx, v.htlcValueSat);
    assertEquals(verifyInput(signed, 0, pk, v.htlcValueSat), null);
    // The txid does not change with the witness.
    assertEquals(hex.encode(sha256(sha256(sweep.tx)).reverse()), sweep.txid);
  }
  // A sweep built for one variant is not valid for another's value (BIP-143 commits to it).
  const [a, b] = variants();
  const sweepA = buildHtlcTimeoutSweep(params({ htlcTxid: a.txid, htlcValueSat: a.htlcValueSat }));
  assertNotEquals(verifyInput(signAndFinalize(sweepA.tx, a.htlcValueSat), 0, pk, b.htlcValueSat), null);
});

Deno.test("a later nLockTime is valid too; below the CLTV is refused", () => {
  const sweep = buildHtlcTimeoutSweep(params({ lockTime: CLTV + 10_000 }));
  const p = params();
  assertEquals(verifyInput(signAndFinalize(sweep.tx, p.htlcValueSat), 0, pk, p.htlcValueSat), null);
  assertLoopkitError(
    () => buildHtlcTimeoutSweep(params({ lockTime: CLTV - 1 })),
    "timeout_sweep_locktime_too_early",
    1,
    `${CLTV - 1}`,
    `${CLTV}`,
  );
  assertLoopkitError(
    () => buildHtlcTimeoutSweep(params({ lockTime: 500_000_000 })),
    "timeout_sweep_locktime_too_early",
    1,
  );
});

Deno.test("the fee is capped to keep a 330 sat output; a value that cannot pay the relay minimum is refused (review §5)", () => {
  const w = lndWeight(script.length);
  const minFee = MIN_RELAY_FEE_RATE_SAT_PER_KW * BigInt(w) / 1000n;
  // A fee above the whole value: capped, output exactly 330.
  const small = buildHtlcTimeoutSweep(params({ htlcValueSat: 10_000n, feeRateSatPerKw: 100_000n }));
  assertEquals(small.outputValueSat, 330n);
  assertEquals(small.feeSat, 10_000n - 330n);
  assert(small.feeCapped);
  // Exactly enough for the minimum fee and the dust output.
  const edge = buildHtlcTimeoutSweep(params({ htlcValueSat: 330n + minFee, feeRateSatPerKw: 1n }));
  assertEquals(edge.feeSat, minFee);
  assertEquals(edge.outputValueSat, 330n);
  assertEquals(edge.feeRateSatPerKw, 253n); // raised to lnd's floor
  assertLoopkitError(
    () => buildHtlcTimeoutSweep(params({ htlcValueSat: 329n + minFee })),
    "timeout_sweep_value_too_small",
    1,
    `${329n + minFee} sat`,
  );
  // maxFeeSat caps the fee; below the relay minimum it is refused.
  const capped = buildHtlcTimeoutSweep(params({ feeRateSatPerKw: 50_000n, maxFeeSat: 1_000n }));
  assertEquals(capped.feeSat, 1_000n);
  assert(capped.feeCapped);
  assertLoopkitError(
    () => buildHtlcTimeoutSweep(params({ maxFeeSat: minFee - 1n })),
    "timeout_sweep_max_fee_too_low",
    2,
  );
  assertEquals(buildHtlcTimeoutSweep(params()).feeCapped, false);
});

Deno.test("buildHtlcTimeoutSweep refuses the change output, a foreign pkScript and a CLTV that is not the script's", () => {
  assertLoopkitError(
    () => buildHtlcTimeoutSweep(params({ htlcVout: 1 })),
    "timeout_sweep_wrong_output",
    1,
    "output 1",
  );
  assertLoopkitError(
    () => buildHtlcTimeoutSweep(params({ htlcPkScript: STATIC })),
    "timeout_sweep_script_mismatch",
    1,
  );
  assertLoopkitError(
    () => buildHtlcTimeoutSweep(params({ cltvExpiry: CLTV + 1, lockTime: CLTV + 1 })),
    "timeout_sweep_cltv_mismatch",
    1,
  );
  assertLoopkitError(
    () => buildHtlcTimeoutSweep(params({ sweepPkScript: new Uint8Array(0) })),
    "timeout_sweep_pkscript_invalid",
    1,
  );
  assertLoopkitError(
    () => buildHtlcTimeoutSweep(params({ htlcScript: new Uint8Array(40) })),
    "htlc_script_invalid",
    1,
  );
});

Deno.test("finalizeHtlcTimeoutSweep refuses a signature that does not verify", () => {
  const p = params();
  const sweep = buildHtlcTimeoutSweep(p);
  const digest = witnessV0Sighash(sweep.tx, 0, script, p.htlcValueSat);
  const wrongKeySig = secp256k1.sign(digest, sha256(Uint8Array.of(1)), {
    prehash: false,
    lowS: true,
    format: "der",
  });
  assertLoopkitError(
    () => finalizeHtlcTimeoutSweep(sweep.tx, wrongKeySig, senderPubkey, script, p.htlcValueSat),
    "timeout_sweep_signature_invalid",
    1,
  );
  const goodSig = secp256k1.sign(digest, senderPriv, { prehash: false, lowS: true, format: "der" });
  assertLoopkitError(
    () => finalizeHtlcTimeoutSweep(sweep.tx, goodSig, senderPubkey, script, p.htlcValueSat + 1n),
    "timeout_sweep_signature_invalid",
    1,
  );
  const signed = finalizeHtlcTimeoutSweep(sweep.tx, goodSig, senderPubkey, script, p.htlcValueSat);
  assertEquals(RawTx.decode(signed).witnesses![0].length, 4);
  assertLoopkitError(
    () => finalizeHtlcTimeoutSweep(signed, goodSig, senderPubkey, script),
    "timeout_sweep_tx_invalid",
    1,
  );
});
