// The local swap server's own scripts against the given static-address vectors
// (tests/fixtures/static-address.json, a copy of shared/vectors/static-address.json) and the spec's
// numbers; the HTLC script against the test client's raw-opcode assembly (a second, byte-level path).
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { assertEquals, assertThrows } from "../assert.ts";
import vectors from "../fixtures/static-address.json" with { type: "json" };
import { btcToSat } from "./chain.ts";
import {
  buildHtlcTx,
  feeForWeight,
  htlcTxWeight,
  htlcV2Script,
  maxRateUnderCap,
  p2wshPkScript,
  parseOutpoint,
  staticAddressKeys,
} from "./scripts.ts";
import { clientHtlcScript, clientHtlcWeight } from "./_test_client.ts";

Deno.test("server scripts: static address keys match the given vectors", () => {
  for (const v of vectors.vectors) {
    const k = staticAddressKeys(hex.decode(v.client_pubkey), hex.decode(v.server_pubkey), v.csv_expiry);
    assertEquals(hex.encode(k.leafScript), v.timeout_leaf_script);
    assertEquals(hex.encode(k.scriptRoot), v.tap_leaf_hash);
    assertEquals(hex.encode(k.internalKeyXOnly), v.internal_key.slice(2));
    assertEquals(hex.encode(k.tapTweak), v.tap_tweak);
    assertEquals(hex.encode(k.outputKeyXOnly), v.output_key.slice(2));
    assertEquals(hex.encode(k.pkScript), v.pk_script);
  }
});

Deno.test("server scripts: V2 HTLC script equals the raw-opcode assembly for CLTV push widths 1–4 bytes", () => {
  const sender = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
  const receiver = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
  const hash = sha256(new Uint8Array(32).fill(9));
  for (const cltv of [17, 127, 128, 255, 256, 32_767, 32_768, 8_388_607, 8_388_608, 5_000_000]) {
    const s = htlcV2Script(sender, receiver, hash, cltv);
    assertEquals(hex.encode(s), hex.encode(clientHtlcScript(sender, receiver, hash, cltv)), `cltv ${cltv}`);
    assertEquals(hex.encode(p2wshPkScript(s)), `0020${hex.encode(sha256(s))}`);
  }
});

Deno.test("server scripts: HTLC weight 444 / 616 WU (spec §4.3), fee floor and the largest rate under a cap", () => {
  assertEquals(htlcTxWeight(1, false), 444);
  assertEquals(htlcTxWeight(1, true), 616);
  for (let n = 1; n <= 5; n++) {
    assertEquals(htlcTxWeight(n, true), clientHtlcWeight(n, true));
    assertEquals(htlcTxWeight(n, false), clientHtlcWeight(n, false));
  }
  assertEquals(feeForWeight(253n, 444), 112n); // floor(112.332)
  for (const [cap, w] of [[20_000n, 444], [1n, 616], [0n, 444], [99_999n, 1_000]] as const) {
    const r = maxRateUnderCap(cap, w);
    assertEquals(feeForWeight(r, w) <= cap, true, `cap ${cap}`);
    assertEquals(feeForWeight(r + 1n, w) > cap, true, `cap ${cap}`);
  }
});

Deno.test("server scripts: HTLC tx layout — version 2, locktime 0, sequence 0, HTLC at 0, change at 1 only when > 0", () => {
  const pk = Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(1));
  const htlc = p2wshPkScript(Uint8Array.of(0x51));
  const txid = `01${"00".repeat(30)}ff`; // display order
  const deposits = [{ outpoint: `${txid}:1`, txid, vout: 1, valueSat: 100_000n, pkScript: pk }];
  const withChange = buildHtlcTx({
    deposits,
    htlcPkScript: htlc,
    htlcValueSat: 60_000n,
    changeSat: 39_000n,
    staticPkScript: pk,
  });
  assertEquals([withChange.version, withChange.lockTime, withChange.outputsLength], [2, 0, 2]);
  assertEquals(withChange.getInput(0).sequence, 0);
  assertEquals(hex.encode(withChange.getOutput(0).script!), hex.encode(htlc));
  assertEquals(withChange.getOutput(1).amount, 39_000n);
  const raw = hex.encode(withChange.unsignedTx);
  // Serialized input: internal-order (reversed) txid, vout 1 LE, empty scriptSig, sequence 0.
  assertEquals(raw.slice(10, 10 + 64 + 8 + 2 + 8), `ff${"00".repeat(30)}01` + "01000000" + "00" + "00000000");
  const noChange = buildHtlcTx({
    deposits,
    htlcPkScript: htlc,
    htlcValueSat: 99_000n,
    changeSat: 0n,
    staticPkScript: pk,
  });
  assertEquals(noChange.outputsLength, 1);
});

Deno.test("server scripts: outpoint parsing is strict; btcd BTC amounts convert exactly", () => {
  assertEquals(parseOutpoint(`${"AB".repeat(32)}:0`), { txid: "ab".repeat(32), vout: 0 });
  for (
    const bad of [
      `${"ab".repeat(32)}:01`,
      `${"ab".repeat(31)}:0`,
      `${"ab".repeat(32)}:-1`,
      `${"ab".repeat(32)}:4294967296`,
      "x",
    ]
  ) {
    assertThrows(() => parseOutpoint(bad));
  }
  assertEquals(btcToSat(0.00012345), 12_345n);
  assertEquals(btcToSat(21_000_000), 2_100_000_000_000_000n);
  assertEquals(btcToSat(0.1 + 0.2), 30_000_000n);
});
