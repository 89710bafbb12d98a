import { assertEquals } from "../../tests/assert.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { RawTx } from "@scure/btc-signer";
import { depositAvailability } from "./availability.ts";
import { assertLoopkitError, txidOf } from "./_testing.ts";

const P2TR = Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(3));

/** A transaction spending `spends` (display-hex outpoints) with `outputs` outputs; its txid computed by hand. */
function tx(spends: string[], outputs: number, salt = 0): { raw: Uint8Array; txid: string } {
  const inputs = (spends.length > 0 ? spends : [`${txidOf(0xfff0 + salt)}:0`]).map((s) => {
    const [t, v] = s.split(":");
    return { txid: hex.decode(t), index: Number(v), finalScriptSig: new Uint8Array(), sequence: 0xffff_fffd };
  });
  const raw = RawTx.encode({
    version: 2,
    segwitFlag: false,
    inputs,
    outputs: Array.from({ length: outputs }, (_, i) => ({ amount: 10_000n + BigInt(i), script: P2TR })),
    lockTime: 0,
  });
  return { raw, txid: hex.encode(sha256(sha256(raw)).reverse()) };
}

Deno.test("live outputs are available; an index past the outputs and an unknown txid are missing (scenario 40)", () => {
  const a = tx([], 2, 1);
  const b = tx([], 1, 2);
  const wanted = [`${a.txid}:0`, `${a.txid}:1`, `${a.txid}:2`, `${b.txid}:0`, `${txidOf(77)}:0`];
  const got = depositAvailability(wanted, [{ rawTx: a.raw, previousOutpoints: [] }, {
    rawTx: b.raw,
    previousOutpoints: [],
  }]);
  assertEquals(got.available, [`${a.txid}:0`, `${a.txid}:1`, `${b.txid}:0`]);
  assertEquals(got.missing, [`${a.txid}:2`, `${txidOf(77)}:0`]);
});

Deno.test("a wallet-known spend removes the outpoint, whichever comes first, by previous_outpoints or by inputs", () => {
  const dep = tx([], 2, 3);
  const op0 = `${dep.txid}:0`, op1 = `${dep.txid}:1`;
  // previous_outpoints only (the raw spend spends something else).
  const spenderA = tx([], 1, 4);
  // The raw inputs only (previous_outpoints left empty).
  const spenderB = tx([op1], 1);
  for (const order of [0, 1]) {
    const list = [
      { rawTx: dep.raw, previousOutpoints: [] },
      { rawTx: spenderA.raw, previousOutpoints: [op0] },
      { rawTx: spenderB.raw, previousOutpoints: [] },
    ];
    if (order === 1) list.reverse();
    const got = depositAvailability([op0, op1], list);
    assertEquals(got.available, []);
    assertEquals(got.missing, [op0, op1]);
  }
  // Without the spenders both are available.
  assertEquals(depositAvailability([op0, op1], [{ rawTx: dep.raw, previousOutpoints: [] }]).available, [
    op0,
    op1,
  ]);
});

Deno.test("an entry whose raw transaction does not decode fails the whole check", () => {
  const dep = tx([], 1, 5);
  for (const bad of [new Uint8Array(0), Uint8Array.of(1, 2, 3), dep.raw.subarray(0, dep.raw.length - 2)]) {
    assertLoopkitError(
      () =>
        depositAvailability([`${dep.txid}:0`], [{ rawTx: dep.raw, previousOutpoints: [] }, {
          rawTx: bad,
          previousOutpoints: [],
        }]),
      "wallet_tx_undecodable",
      1,
      "entry 1",
    );
  }
  assertLoopkitError(() => depositAvailability(["zz:0"], []), "invalid_outpoint", 2);
  assertEquals(depositAvailability([], []), { available: [], missing: [] });
});
