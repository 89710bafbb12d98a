import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bech32, hex } from "@scure/base";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { encodeInvoice, recoverInvoicePayee } from "../../tests/swapserver/lightning.ts";
import { LoopkitError } from "../errors.ts";
import { decodeInvoice, INVOICE_NETWORK_PREFIX, MAX_INVOICE_LENGTH } from "./bolt11.ts";

// BOLT #11 "Examples" section ("Please send $3 for a cup of coffee to the same peer, within one
// minute"), signed with the spec's example key.
const SPEC_INVOICE =
  "lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwz" +
  "qfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu9qrsgquk0rl77nj30yxdy8j9vdx85fkpmdla2087ne0x" +
  "h8nhedh8w27kyke0lp53ut353s06fv3qfegext0eh0ymjpf39tuven09sam30g4vgpfna3rh";
const SPEC_PRIVKEY = hex.decode("e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734");
const SPEC_NODE_ID = "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad";
const SPEC_HASH = "0001020304050607080900010203040506070809000102030405060708090102";

function code(fn: () => unknown): string {
  return assertThrows(fn, LoopkitError).code;
}

Deno.test("decodeInvoice() reads amount, payment hash and times of the BOLT 11 spec example", () => {
  const inv = decodeInvoice(SPEC_INVOICE, "mainnet");
  assertEquals(inv.amountMsat, 2500n * 100_000n); // 2500u = 2500 × 10^-6 BTC = 250,000 sat
  assertEquals(hex.encode(inv.paymentHash), SPEC_HASH);
  assertEquals(inv.timestampSec, 1496314658);
  assertEquals(inv.expirySec, 60);
});

Deno.test("encodeInvoice() reproduces the BOLT 11 spec example byte for byte (RFC 6979 signature)", () => {
  assertEquals(hex.encode(secp256k1.getPublicKey(SPEC_PRIVKEY, true)), SPEC_NODE_ID);
  const encoded = encodeInvoice({
    network: "mainnet",
    amountMsat: 250_000_000n,
    paymentHash: hex.decode(SPEC_HASH),
    paymentSecret: new Uint8Array(32).fill(0x11),
    description: "1 cup coffee",
    timestampSec: 1496314658,
    expirySec: 60,
    featureBits: [8, 14],
    fieldOrder: ["s", "p", "d", "x", "9"],
    nodeKey: SPEC_PRIVKEY,
  });
  assertEquals(encoded, SPEC_INVOICE);
  assertEquals(hex.encode(recoverInvoicePayee(SPEC_INVOICE)), SPEC_NODE_ID);
});

Deno.test("decodeInvoice() accepts each network's own prefix and rejects every other network's", () => {
  const key = secp256k1.utils.randomSecretKey();
  const paymentHash = sha256(new Uint8Array([1]));
  for (const [net, prefix] of Object.entries(INVOICE_NETWORK_PREFIX)) {
    const inv = encodeInvoice({ network: net as never, amountMsat: 10_000n, paymentHash, nodeKey: key });
    assert(inv.startsWith(`ln${prefix}100n1`), inv.slice(0, 12));
    assertEquals(decodeInvoice(inv, net as never).amountMsat, 10_000n);
    for (const [other, otherPrefix] of Object.entries(INVOICE_NETWORK_PREFIX)) {
      if (otherPrefix === prefix) continue;
      assertEquals(code(() => decodeInvoice(inv, other as never)), "invoice_invalid", `${net} as ${other}`);
    }
  }
});

Deno.test("decodeInvoice() reads every amount multiplier exactly", () => {
  const key = secp256k1.utils.randomSecretKey();
  const paymentHash = sha256(new Uint8Array([2]));
  for (
    const msat of [1n, 7n, 100n, 12_300n, 100_000n, 1_000_000n, 100_000_000n, 21_000_000n * 100_000_000_000n]
  ) {
    const inv = encodeInvoice({ network: "regtest", amountMsat: msat, paymentHash, nodeKey: key });
    assertEquals(decodeInvoice(inv, "regtest").amountMsat, msat, inv.slice(0, 20));
  }
});

Deno.test("decodeInvoice() returns null amount for an amount-less invoice", () => {
  const inv = encodeInvoice({ network: "regtest", paymentHash: new Uint8Array(32), nodeKey: SPEC_PRIVKEY });
  assert(inv.startsWith("lnbcrt1"));
  assertEquals(decodeInvoice(inv, "regtest").amountMsat, null);
});

Deno.test("decodeInvoice() rejects a bad checksum, a duplicate or short payment hash, and an over-long invoice", () => {
  const flipped = SPEC_INVOICE.slice(0, -1) + (SPEC_INVOICE.endsWith("q") ? "p" : "q");
  assertEquals(code(() => decodeInvoice(flipped, "mainnet")), "invoice_invalid");

  const base = {
    network: "regtest" as const,
    amountMsat: 1000n,
    paymentHash: new Uint8Array(32),
    nodeKey: SPEC_PRIVKEY,
  };
  const dup = encodeInvoice({
    ...base,
    extraFields: [{ tag: 1, words: bech32.toWords(new Uint8Array(32).fill(9)) }],
  });
  assertThrows(() => decodeInvoice(dup, "regtest"), LoopkitError, "2 payment hash fields");
  const short = encodeInvoice({
    ...base,
    fieldOrder: ["s", "d"],
    extraFields: [{ tag: 1, words: bech32.toWords(new Uint8Array(31)) }],
  });
  assertThrows(() => decodeInvoice(short, "regtest"), LoopkitError, "not 32 bytes");
  const none = encodeInvoice({ ...base, fieldOrder: ["s", "d"] });
  assertThrows(() => decodeInvoice(none, "regtest"), LoopkitError, "no payment hash");

  assertThrows(() => decodeInvoice("lnbc" + "q".repeat(MAX_INVOICE_LENGTH), "mainnet"), LoopkitError, "7089");
  assertThrows(() => decodeInvoice("", "mainnet"), LoopkitError, "empty");
});
