/**
 * Test-only bridge to a second, independent Bitcoin script interpreter: bitcore-lib's
 * `Script.Interpreter` (P2WSH with BIP-143 sighashes, CLTV, CSV and the standardness flags).
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import bitcore from "bitcore-lib";
import { Buffer } from "node:buffer";
import { hex } from "@scure/base";

const lib = bitcore as any;
const I = lib.Script.Interpreter;

/**
 * Consensus plus the standardness rules a relaying node applies to segwit v0 spends. Not
 * `SCRIPT_VERIFY_CLEANSTACK`: bitcore applies it to the (empty) scriptSig stack of a native witness
 * spend and fails every P2WSH input with it; the witness script's own clean-stack rule (exactly one true
 * element left, consensus for witness v0) is enforced by bitcore's `executeWitnessScript` regardless.
 */
export const STANDARD_FLAGS = I.SCRIPT_VERIFY_P2SH | I.SCRIPT_VERIFY_WITNESS |
  I.SCRIPT_VERIFY_CHECKLOCKTIMEVERIFY |
  I.SCRIPT_VERIFY_CHECKSEQUENCEVERIFY | I.SCRIPT_VERIFY_STRICTENC | I.SCRIPT_VERIFY_DERSIG |
  I.SCRIPT_VERIFY_LOW_S | I.SCRIPT_VERIFY_NULLDUMMY | I.SCRIPT_VERIFY_MINIMALDATA |
  I.SCRIPT_VERIFY_MINIMALIF | I.SCRIPT_VERIFY_NULLFAIL |
  I.SCRIPT_VERIFY_WITNESS_PUBKEYTYPE | I.SCRIPT_VERIFY_DISCOURAGE_UPGRADABLE_NOPS | I.SCRIPT_VERIFY_TAPROOT;

/**
 * Runs input `inputIndex` of `rawTx` (serialized with witnesses) against `prevPkScript` worth
 * `valueSat` (for a taproot input also give `allPrevouts`, one per input). Returns `null` when valid, else bitcore's error string (e.g. `SCRIPT_ERR_UNSATISFIED_LOCKTIME`).
 */
export function verifyInput(
  rawTx: Uint8Array,
  inputIndex: number,
  prevPkScript: Uint8Array,
  valueSat: bigint,
  flags: number = STANDARD_FLAGS,
  allPrevouts?: readonly { pkScript: Uint8Array; valueSat: bigint }[],
): string | null {
  const tx = new lib.Transaction(hex.encode(rawTx));
  // BIP-341 sighashes commit to every input's previous output: bitcore reads them from `input.output`.
  allPrevouts?.forEach((p, i) => {
    tx.inputs[i].output = new lib.Transaction.Output({
      script: new lib.Script(Buffer.from(p.pkScript)),
      satoshis: Number(p.valueSat),
    });
  });
  const witness = tx.inputs[inputIndex].getWitnesses() as Buffer[];
  const interp = new I();
  const ok = interp.verify(
    new lib.Script(""),
    new lib.Script(Buffer.from(prevPkScript)),
    tx,
    inputIndex,
    flags,
    witness,
    Number(valueSat),
  );
  return ok ? null : String(interp.errstr);
}
