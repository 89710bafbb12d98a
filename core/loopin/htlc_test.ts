import { assert, assertEquals, assertNotEquals } from "../../tests/assert.ts";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { ripemd160 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { RawTx, Transaction } from "@scure/btc-signer";
import {
  hash160,
  htlcP2wshPkScript,
  htlcSuccessWitness,
  htlcTimeoutWitness,
  htlcV2Script,
  parseHtlcV2Script,
} from "./htlc.ts";
import { verifyInput } from "./_interpreter_testing.ts";
import { assertLoopkitError } from "./_testing.ts";

// Keys from fixed scalars so the test is reproducible.
const senderPriv = sha256(new TextEncoder().encode("loopkit htlc sender"));
const receiverPriv = sha256(new TextEncoder().encode("loopkit htlc receiver"));
const senderPubkey = secp256k1.getPublicKey(senderPriv, true);
const receiverPubkey = secp256k1.getPublicKey(receiverPriv, true);
const preimage = sha256(new TextEncoder().encode("loopkit preimage"));
const swapHash = sha256(preimage);

/** Opcode values from BIP-62 / Bitcoin Core's script.h. */
const OPS: Record<string, number> = {
  OP_0: 0x00,
  OP_1: 0x51,
  OP_NOTIF: 0x64,
  OP_ELSE: 0x67,
  OP_ENDIF: 0x68,
  OP_DUP: 0x76,
  OP_EQUALVERIFY: 0x88,
  OP_SIZE: 0x82,
  OP_HASH160: 0xa9,
  OP_CHECKSIG: 0xac,
  OP_CHECKSIGVERIFY: 0xad,
  OP_CHECKLOCKTIMEVERIFY: 0xb1,
  OP_CHECKSEQUENCEVERIFY: 0xb2,
};

/** Minimal CScriptNum push (BIP-62 rule 3/4), written independently of the code under test. */
function numPush(n: number): number[] {
  if (n >= 1 && n <= 16) return [0x50 + n];
  const le: number[] = [];
  let v = n;
  while (v > 0) {
    le.push(v & 0xff);
    v = Math.floor(v / 256);
  }
  if (le[le.length - 1] & 0x80) le.push(0);
  return [le.length, ...le];
}

/** Assembles the spec §4.2 listing: opcode names, byte arrays (data pushes) and numbers (script numbers). */
function asm(items: (string | Uint8Array | { num: number })[]): Uint8Array {
  const out: number[] = [];
  for (const it of items) {
    if (typeof it === "string") out.push(OPS[it]);
    else if (it instanceof Uint8Array) out.push(it.length, ...it);
    else out.push(...numPush(it.num));
  }
  return Uint8Array.from(out);
}

function specScript(cltv: number): Uint8Array {
  return asm([
    receiverPubkey,
    "OP_CHECKSIG",
    "OP_NOTIF",
    "OP_DUP",
    "OP_HASH160",
    ripemd160(sha256(senderPubkey)),
    "OP_EQUALVERIFY",
    "OP_CHECKSIGVERIFY",
    { num: cltv },
    "OP_CHECKLOCKTIMEVERIFY",
    "OP_ELSE",
    "OP_SIZE",
    Uint8Array.of(0x20), // "<0x20 pushed as 1-byte data>"
    "OP_EQUALVERIFY",
    "OP_HASH160",
    ripemd160(swapHash),
    "OP_EQUALVERIFY",
    "OP_1",
    "OP_CHECKSEQUENCEVERIFY",
    "OP_ENDIF",
  ]);
}

Deno.test("htlcV2Script is spec §4.2 opcode by opcode, for CLTVs of every push length", () => {
  for (
    const cltv of [1, 16, 17, 127, 128, 255, 256, 32_767, 32_768, 863_350, 8_388_607, 8_388_608, 499_999_999]
  ) {
    const script = htlcV2Script({ senderPubkey, receiverPubkey, swapHash, cltvExpiry: cltv });
    assertEquals(script, specScript(cltv), `cltv ${cltv}`);
    const parsed = parseHtlcV2Script(script);
    assertEquals(parsed.cltvExpiry, cltv);
    assertEquals(parsed.receiverPubkey, receiverPubkey);
    assertEquals(parsed.senderPubkeyHash, hash160(senderPubkey));
    assertEquals(parsed.swapHashRipemd160, ripemd160(swapHash));
  }
  // RIPEMD160(swap hash) is HASH160(preimage): the success branch checks the preimage.
  assertEquals(ripemd160(swapHash), hash160(preimage));
});

Deno.test("htlcP2wshPkScript is OP_0 <SHA256(script)>", () => {
  const script = htlcV2Script({ senderPubkey, receiverPubkey, swapHash, cltvExpiry: 900_000 });
  assertEquals(htlcP2wshPkScript(script), Uint8Array.of(0x00, 0x20, ...sha256(script)));
});

Deno.test("htlcV2Script refuses bad keys, hashes and CLTVs", () => {
  const ok = { senderPubkey, receiverPubkey, swapHash, cltvExpiry: 900_000 };
  assertLoopkitError(
    () => htlcV2Script({ ...ok, senderPubkey: senderPubkey.slice(1) }),
    "htlc_key_invalid",
    1,
    "sender",
  );
  assertLoopkitError(
    () => htlcV2Script({ ...ok, receiverPubkey: Uint8Array.of(2, ...new Uint8Array(32)) }),
    "htlc_key_invalid",
    1,
    "receiver",
  );
  assertLoopkitError(
    () => htlcV2Script({ ...ok, swapHash: new Uint8Array(31) }),
    "htlc_swap_hash_invalid",
    1,
  );
  for (const c of [0, -1, 1.5, 500_000_000]) {
    assertLoopkitError(() => htlcV2Script({ ...ok, cltvExpiry: c }), "htlc_cltv_invalid", 1);
  }
});

Deno.test("parseHtlcV2Script refuses any other script", () => {
  const script = htlcV2Script({ senderPubkey, receiverPubkey, swapHash, cltvExpiry: 900_000 });
  for (let i = 0; i < script.length; i++) {
    // Flipping an opcode or a length byte breaks the layout; flipping a key/hash byte changes only data.
    const changed = Uint8Array.from(script);
    changed[i] ^= 0x01;
    try {
      const p = parseHtlcV2Script(changed);
      // Accepted only when the flip hit a data byte (key, hash) or the CLTV value.
      assert(
        (i >= 1 && i < 34) || (i >= 39 && i < 59) || (i >= 62 && i < 65) || i >= script.length - 24,
        `byte ${i} accepted`,
      );
      assertNotEquals(p, parseHtlcV2Script(script));
    } catch (e) {
      assertEquals((e as { code?: string }).code, "htlc_script_invalid");
    }
  }
  // A non-minimal CLTV push (02 05 00 for 5) is refused.
  const five = htlcV2Script({ senderPubkey, receiverPubkey, swapHash, cltvExpiry: 5 });
  const nonMinimal = Uint8Array.from([...five.subarray(0, 61), 0x02, 0x05, 0x00, ...five.subarray(62)]);
  assertLoopkitError(() => parseHtlcV2Script(nonMinimal), "htlc_script_invalid", 1);
  assertLoopkitError(() => parseHtlcV2Script(new Uint8Array(10)), "htlc_script_invalid", 1);
});

/** A spend of output 0 of a made-up funding tx paying the HTLC, signed with SIGHASH_ALL over BIP-143. */
function spend(opts: {
  script: Uint8Array;
  valueSat: bigint;
  lockTime: number;
  sequence: number;
  witness: (sighash: Uint8Array) => Uint8Array[];
}): Uint8Array {
  const unsigned = {
    version: 2,
    inputs: [{
      txid: Uint8Array.from(Array(32).fill(0).map((_, i) => i + 1)),
      index: 0,
      finalScriptSig: new Uint8Array(),
      sequence: opts.sequence,
    }],
    outputs: [{
      amount: opts.valueSat - 1_000n,
      script: Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(7)),
    }],
    lockTime: opts.lockTime,
  };
  const tx = Transaction.fromRaw(RawTx.encode({ ...unsigned, segwitFlag: false }), {
    allowUnknownOutputs: true,
  });
  // BIP-143: scriptCode of a P2WSH input is the witness script.
  const sighash = tx.preimageWitnessV0(0, opts.script, 0x01, opts.valueSat);
  return RawTx.encode({ ...unsigned, segwitFlag: true, witnesses: [opts.witness(sighash)] });
}

const sign = (priv: Uint8Array, msg: Uint8Array) =>
  secp256k1.sign(msg, priv, { prehash: false, lowS: true, format: "der" });

Deno.test("success and timeout witnesses validate in bitcore-lib's script interpreter (scenario 70)", () => {
  const cltv = 900_000;
  const script = htlcV2Script({ senderPubkey, receiverPubkey, swapHash, cltvExpiry: cltv });
  const pk = htlcP2wshPkScript(script);
  const value = 250_000n;
  const success = (seq: number, pre = preimage, key = receiverPriv) =>
    spend({
      script,
      valueSat: value,
      lockTime: 0,
      sequence: seq,
      witness: (h) => {
        const w = htlcSuccessWitness(preimage, sign(key, h), script);
        w[0] = pre;
        return w;
      },
    });
  const timeout = (lockTime: number, seq: number, key = senderPriv) =>
    spend({
      script,
      valueSat: value,
      lockTime,
      sequence: seq,
      witness: (h) => htlcTimeoutWitness(sign(key, h), senderPubkey, script),
    });

  assertEquals(verifyInput(success(1), 0, pk, value), null);
  assertEquals(verifyInput(timeout(cltv, 1), 0, pk, value), null);
  assertEquals(verifyInput(timeout(cltv + 5_000, 0xffff_fffe), 0, pk, value), null);
  // The checks fail where the script says they must.
  assertNotEquals(verifyInput(success(0), 0, pk, value), null); // OP_1 CSV needs sequence ≥ 1
  assertNotEquals(verifyInput(success(1, new Uint8Array(32)), 0, pk, value), null); // wrong preimage
  assertNotEquals(verifyInput(success(1, preimage, senderPriv), 0, pk, value), null); // wrong key on success
  assertNotEquals(verifyInput(timeout(cltv - 1, 1), 0, pk, value), null); // before the CLTV
  assertNotEquals(verifyInput(timeout(cltv, 0xffff_ffff), 0, pk, value), null); // final sequence disables CLTV
  assertNotEquals(verifyInput(timeout(cltv, 1, receiverPriv), 0, pk, value), null); // wrong key on timeout
  assertNotEquals(verifyInput(success(1), 0, pk, value + 1n), null); // BIP-143 commits to the value
  // An extra witness item leaves two elements on the stack: not clean.
  const extra = spend({
    script,
    valueSat: value,
    lockTime: cltv,
    sequence: 1,
    witness: (h) => [Uint8Array.of(1), ...htlcTimeoutWitness(sign(senderPriv, h), senderPubkey, script)],
  });
  assertNotEquals(verifyInput(extra, 0, pk, value), null);
});

Deno.test("the witnesses are spec §4.2's stacks and take DER or compact signatures", () => {
  const script = htlcV2Script({ senderPubkey, receiverPubkey, swapHash, cltvExpiry: 700 });
  const msg = sha256(Uint8Array.of(1));
  const der = sign(senderPriv, msg);
  const compact = secp256k1.sign(msg, senderPriv, { prehash: false, lowS: true });
  const w = htlcTimeoutWitness(der, senderPubkey, script);
  assertEquals(w, [Uint8Array.of(...der, 0x01), senderPubkey, new Uint8Array(0), script]);
  assertEquals(htlcTimeoutWitness(compact, senderPubkey, script), w);
  const rder = sign(receiverPriv, msg);
  assertEquals(htlcSuccessWitness(preimage, rder, script), [preimage, Uint8Array.of(...rder, 0x01), script]);
  assertLoopkitError(() => htlcTimeoutWitness(der, receiverPubkey, script), "htlc_key_mismatch", 1);
  // With the SIGHASH_ALL byte already appended (DER or compact): the same witness, not a second 0x01.
  assertEquals(htlcTimeoutWitness(Uint8Array.of(...der, 0x01), senderPubkey, script), w);
  assertEquals(htlcTimeoutWitness(Uint8Array.of(...compact, 0x01), senderPubkey, script), w);
  // Any other hash type, or garbage, is refused.
  assertLoopkitError(
    () => htlcTimeoutWitness(Uint8Array.of(...der, 0x81), senderPubkey, script),
    "htlc_signature_invalid",
    1,
  );
  assertLoopkitError(
    () => htlcTimeoutWitness(new Uint8Array(70), senderPubkey, script),
    "htlc_signature_invalid",
    1,
  );
  assertLoopkitError(() => htlcSuccessWitness(new Uint8Array(32), rder, script), "htlc_preimage_invalid", 1);
  assertLoopkitError(() => htlcSuccessWitness(preimage.slice(1), rder, script), "htlc_preimage_invalid", 1);
  // A high-S signature is refused (not standard).
  const sig = secp256k1.Signature.fromBytes(compact, "compact");
  const high = new secp256k1.Signature(sig.r, secp256k1.Point.Fn.ORDER - sig.s).toBytes("der");
  assertLoopkitError(
    () => htlcTimeoutWitness(high, senderPubkey, script),
    "htlc_signature_invalid",
    1,
    "high S",
  );
});
