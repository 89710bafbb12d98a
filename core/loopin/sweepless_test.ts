import { assertEquals, assertNotEquals } from "../../tests/assert.ts";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { RawTx, Transaction } from "@scure/btc-signer";
import {
  expectedSweeplessChange,
  prevoutInfoFromWire,
  sweeplessPsbtTxid,
  type SweeplessSweepRequest,
  validateSweeplessSweep,
} from "./sweepless.ts";
import { verifyInput } from "./_interpreter_testing.ts";
import { assertLoopkitError, op, txidOf } from "./_testing.ts";

const priv = (n: number) => sha256(Uint8Array.of(n, 42));
/** Our deposits pay plain key-path P2TR scripts here, so the test can sign over the returned sighashes. */
const p2tr = (n: number) => Uint8Array.of(0x51, 0x20, ...schnorr.getPublicKey(priv(n)));
const STATIC = p2tr(1);
const SERVER_OUT = Uint8Array.of(0x00, 0x14, ...new Uint8Array(20).fill(8));
const nonce = (n: number) =>
  Uint8Array.of(
    ...secp256k1.getPublicKey(priv(n + 100), true),
    ...secp256k1.getPublicKey(priv(n + 200), true),
  );

const d1 = { outpoint: op(1, 0), valueSat: 300_000n, priv: priv(11), pkScript: p2tr(11) };
const d2 = { outpoint: op(2, 1), valueSat: 200_000n, priv: priv(12), pkScript: p2tr(12) };
const serverInput = { outpoint: op(3, 5), valueSat: 1_000_000n, pkScript: SERVER_OUT };

/** The sweep: our two deposits and one server input; change 100 000 back to the static address. */
function psbt(
  opts: {
    inputs?: { outpoint: string; valueSat: bigint; pkScript: Uint8Array }[];
    change?: { value: bigint; script: Uint8Array } | null;
  } = {},
) {
  const tx = new Transaction({
    allowUnknownOutputs: true,
    allowUnknownInputs: true,
    disableScriptCheck: true,
  });
  for (const i of opts.inputs ?? [serverInput, d1, d2]) {
    const [txid, vout] = i.outpoint.split(":");
    tx.addInput({ txid, index: Number(vout), witnessUtxo: { script: i.pkScript, amount: i.valueSat } });
  }
  tx.addOutput({ script: SERVER_OUT, amount: 1_390_000n });
  const change = opts.change === undefined ? { value: 100_000n, script: STATIC } : opts.change;
  if (change !== null) tx.addOutput({ script: change.script, amount: change.value });
  return tx.toPSBT();
}

/** BIP-174 v0 serialization with only the unsigned transaction: `psbt 0xff`, {0x00: tx}, 0x00, empty maps. */
function rawPsbt(unsignedTx: Uint8Array, inputs: number, outputs: number): Uint8Array {
  const len = unsignedTx.length;
  const varint = len < 0xfd ? [len] : [0xfd, len & 0xff, len >> 8];
  return Uint8Array.of(
    0x70,
    0x73,
    0x62,
    0x74,
    0xff,
    0x01,
    0x00,
    ...varint,
    ...unsignedTx,
    0x00,
    ...new Uint8Array(inputs + outputs),
  );
}

const prevout = (i: { outpoint: string; valueSat: bigint; pkScript: Uint8Array }) => {
  const [txid, vout] = i.outpoint.split(":");
  return { txid, vout: Number(vout), valueSat: i.valueSat, pkScript: i.pkScript };
};

function request(over: Partial<SweeplessSweepRequest> = {}): SweeplessSweepRequest {
  return {
    psbt: psbt(),
    swapHash: new Uint8Array(32).fill(9),
    swapOutpoints: [d1.outpoint, d2.outpoint],
    changeExpectedSat: 100_000n,
    staticPkScript: STATIC,
    depositToNonces: new Map([[d2.outpoint, nonce(2)], [d1.outpoint, nonce(1)]]),
    // The server's order need not be the input order.
    prevoutInfo: [prevout(d2), prevout(serverInput), prevout(d1)],
    ourDeposits: new Map<string, { valueSat: bigint; pkScript: Uint8Array }>([
      [d1.outpoint, d1],
      [d2.outpoint, d2],
      [op(50), { valueSat: 1n, pkScript: STATIC }],
    ]),
    ...over,
  };
}

Deno.test("a good sweep request yields one task per deposit, by input index, with sighashes that verify", () => {
  const v = validateSweeplessSweep(request());
  assertEquals(v.toSign.map((t) => [t.outpoint, t.inputIndex]), [[d1.outpoint, 1], [d2.outpoint, 2]]);
  assertEquals(v.toSign[0].serverNonce, nonce(1));
  assertEquals(v.txid, hex.encode(sha256(sha256(v.unsignedTx)).reverse()));
  assertEquals(sweeplessPsbtTxid(request().psbt), v.txid);
  // Sign our inputs over the returned digests; bitcore's taproot interpreter checks them (input order prevouts).
  const decoded = RawTx.decode(v.unsignedTx);
  const all = [serverInput, d1, d2].map((i) => ({ pkScript: i.pkScript, valueSat: i.valueSat }));
  const witnesses = [[new Uint8Array(64)], [schnorr.sign(v.toSign[0].sighash, d1.priv)], [
    schnorr.sign(v.toSign[1].sighash, d2.priv),
  ]];
  const signed = RawTx.encode({ ...decoded, segwitFlag: true, witnesses });
  assertEquals(verifyInput(signed, 1, d1.pkScript, d1.valueSat, undefined, all), null);
  assertEquals(verifyInput(signed, 2, d2.pkScript, d2.valueSat, undefined, all), null);
  assertNotEquals(verifyInput(signed, 0, serverInput.pkScript, serverInput.valueSat, undefined, all), null);
});

Deno.test("the PSBT, the swap hash and duplicate inputs", () => {
  assertLoopkitError(
    () => validateSweeplessSweep(request({ psbt: Uint8Array.of(1, 2, 3) })),
    "sweepless_psbt_invalid",
    1,
  );
  assertLoopkitError(
    () => validateSweeplessSweep(request({ swapHash: new Uint8Array(31) })),
    "sweepless_swap_hash_invalid",
    1,
  );
  // A hand-made PSBT v0 (BIP-174: magic, global unsigned tx, empty input and output maps) whose
  // transaction spends d1 twice.
  const unsigned = RawTx.encode({
    version: 2,
    segwitFlag: false,
    inputs: [d1, d1].map((d) => ({
      txid: hex.decode(d.outpoint.split(":")[0]),
      index: Number(d.outpoint.split(":")[1]),
      finalScriptSig: new Uint8Array(),
      sequence: 0,
    })),
    outputs: [{ amount: 1_000n, script: SERVER_OUT }],
    lockTime: 0,
  });
  const dup = rawPsbt(unsigned, 2, 1);
  assertEquals(
    Transaction.fromPSBT(dup, { allowUnknownOutputs: true, disableScriptCheck: true }).inputsLength,
    2,
  );
  assertLoopkitError(
    () => validateSweeplessSweep(request({ psbt: dup, prevoutInfo: [prevout(d1), prevout(d1)] })),
    "sweepless_duplicate_input",
    1,
  );
});

Deno.test("prevout_info: count, coverage, and our own deposits' value and pkScript", () => {
  assertLoopkitError(
    () => validateSweeplessSweep(request({ prevoutInfo: [prevout(d1), prevout(d2)] })),
    "sweepless_prevout_count",
    1,
    "3 inputs",
    "2 entries",
  );
  assertLoopkitError(
    () =>
      validateSweeplessSweep(
        request({ prevoutInfo: [prevout(d1), prevout(d2), prevout({ ...serverInput, outpoint: op(4) })] }),
      ),
    "sweepless_prevout_mismatch",
    1,
    serverInput.outpoint,
  );
  assertLoopkitError(
    () => validateSweeplessSweep(request({ prevoutInfo: [prevout(d1), prevout(d1), prevout(d2)] })),
    "sweepless_prevout_mismatch",
    1,
    "twice",
  );
  assertLoopkitError(
    () =>
      validateSweeplessSweep(
        request({
          prevoutInfo: [prevout({ ...d1, valueSat: d1.valueSat + 1n }), prevout(serverInput), prevout(d2)],
        }),
      ),
    "sweepless_prevout_mismatch",
    1,
    `our deposit ${d1.outpoint}`,
  );
  assertLoopkitError(
    () =>
      validateSweeplessSweep(
        request({
          prevoutInfo: [prevout(d1), prevout(serverInput), prevout({ ...d2, pkScript: SERVER_OUT })],
        }),
      ),
    "sweepless_prevout_mismatch",
    1,
    d2.outpoint,
  );
});

Deno.test("change: exact value to the static pkScript (scenario 38: missing, wrong address, wrong amount)", () => {
  assertLoopkitError(
    () => validateSweeplessSweep(request({ psbt: psbt({ change: null }) })),
    "sweepless_change_missing",
    1,
    "couldn't find expected change of 100000 satoshis sent to our static address",
  );
  assertLoopkitError(
    () =>
      validateSweeplessSweep(request({ psbt: psbt({ change: { value: 100_000n, script: SERVER_OUT } }) })),
    "sweepless_change_missing",
    1,
  );
  assertLoopkitError(
    () => validateSweeplessSweep(request({ psbt: psbt({ change: { value: 99_999n, script: STATIC } }) })),
    "sweepless_change_missing",
    1,
  );
  // No change expected: a sweep without a change output is fine.
  validateSweeplessSweep(request({ psbt: psbt({ change: null }), changeExpectedSat: 0n }));
});

Deno.test("deposit_to_nonces: in the snapshot, in the sweep, ours, and valid nonces (scenario 34)", () => {
  const withNonces = (m: [string, Uint8Array][]) => request({ depositToNonces: new Map(m) });
  assertLoopkitError(() => validateSweeplessSweep(withNonces([])), "sweepless_no_deposits", 1);
  assertLoopkitError(
    () => validateSweeplessSweep(withNonces([[serverInput.outpoint, nonce(3)]])),
    "sweepless_deposit_not_in_swap",
    1,
    "deposit outpoint not part of loop-in",
  );
  assertLoopkitError(
    () =>
      validateSweeplessSweep(
        request({
          swapOutpoints: [d1.outpoint, d2.outpoint, op(50)],
          depositToNonces: new Map([[op(50), nonce(5)]]),
        }),
      ),
    "sweepless_deposit_not_in_tx",
    1,
    `deposit outpoint ${op(50)} not part of sweep tx`,
  );
  assertLoopkitError(
    () =>
      validateSweeplessSweep(
        request({
          ourDeposits: new Map([[d2.outpoint, d2]]),
          prevoutInfo: [prevout(d1), prevout(serverInput), prevout(d2)],
        }),
      ),
    "sweepless_deposit_unknown",
    1,
    d1.outpoint,
  );
  assertLoopkitError(
    () => validateSweeplessSweep(withNonces([[d1.outpoint, nonce(1).slice(1)]])),
    "sweepless_nonce_invalid",
    1,
    `invalid server nonce for deposit ${d1.outpoint}`,
  );
  assertLoopkitError(
    () => validateSweeplessSweep(withNonces([[d1.outpoint, Uint8Array.of(0x02, ...new Uint8Array(65))]])),
    "sweepless_nonce_invalid",
    1,
  );
  // Only the listed deposits are signed.
  assertEquals(validateSweeplessSweep(withNonces([[d2.outpoint, nonce(2)]])).toSign.map((t) => t.outpoint), [
    d2.outpoint,
  ]);
});

Deno.test("expectedSweeplessChange sums total − selected over the distinct swaps of our inputs (scenario 38)", () => {
  const swaps = new Map([
    ["a", { totalSat: 1_000_000n, selectedSat: 0n }], // all: no change
    ["b", { totalSat: 1_000_000n, selectedSat: 600_000n }], // change 400 000
    ["c", { totalSat: 500_000n, selectedSat: 100_000n }], // change 400 000 (identical)
    ["d", { totalSat: 800_000n, selectedSat: 800_000n }], // selected = total: no change
    ["e", { totalSat: 900_000n, selectedSat: 850_000n }], // change 50 000
  ]);
  const map = new Map<string, string | null>([
    [op(1), "a"],
    [op(2), "b"],
    [op(3), "b"],
    [op(4), "c"],
    [op(5), "d"],
    [op(6), "e"],
    [op(7), null],
  ]);
  const change = (ops: string[]) =>
    expectedSweeplessChange({ inputOutpoints: ops, depositSwapHash: map, swaps });
  /** The rule, written out per swap. */
  const rule = (ids: string[]) =>
    [...new Set(ids)].map((h) => swaps.get(h)!).reduce((s, x) => {
      const c = x.totalSat - x.selectedSat;
      return c > 0n && c < x.totalSat ? s + c : s;
    }, 0n);
  assertEquals(change([op(1)]), 0n); // none expected
  assertEquals(change([op(2), op(3)]), rule(["b"])); // one swap, two deposits: counted once
  assertEquals(change([op(2), op(6)]), rule(["b", "e"])); // different changes
  assertEquals(change([op(2), op(4)]), rule(["b", "c"])); // identical changes are summed
  assertEquals(change([op(2), op(4)]), 800_000n);
  assertEquals(change([op(1), op(2), op(5), op(6)]), rule(["a", "b", "d", "e"])); // mixed with and without
  assertEquals(change([op(99), op(2)]), rule(["b"])); // foreign inputs are ignored
  assertLoopkitError(() => change([op(7)]), "sweepless_deposit_unmapped", 1, op(7));
  assertLoopkitError(
    () => expectedSweeplessChange({ inputOutpoints: [op(1)], depositSwapHash: map, swaps: new Map() }),
    "sweepless_swap_unknown",
    1,
  );
});

Deno.test("prevoutInfoFromWire reverses txid_bytes (internal order) to display hex", () => {
  const internal = hex.decode(txidOf(0x1234)).reverse();
  const [p] = prevoutInfoFromWire([{ value: 5n, pkScript: STATIC, txidBytes: internal, outputIndex: 3 }]);
  assertEquals(p, { valueSat: 5n, pkScript: STATIC, txid: txidOf(0x1234), vout: 3 });
  assertLoopkitError(
    () =>
      prevoutInfoFromWire([{ value: 5n, pkScript: STATIC, txidBytes: new Uint8Array(31), outputIndex: 3 }]),
    "sweepless_prevout_mismatch",
    1,
    "prevout_info[0]",
  );
});
