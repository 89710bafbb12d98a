import { assertEquals, assertThrows } from "../tests/assert.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import { lndService } from "./rpc.ts";
import { decodeListUnspent, WireError } from "./utxo_wire.ts";

/** protobufjs (through proto-loader, lnd's own walletkit.proto) is the reference encoder and decoder. */
const method = (lndService("walletrpc.WalletKit") as unknown as {
  service: {
    ListUnspent: {
      responseSerialize(v: object): Uint8Array;
      responseDeserialize(b: Uint8Array): { utxos: Record<string, unknown>[] };
    };
  };
}).service.ListUnspent;

const OUR = Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(0xab));
const OTHER = Uint8Array.of(0x00, 0x14, ...new Uint8Array(20).fill(0x01));

function wallet(n: number) {
  const utxos = [];
  for (let i = 0; i < n; i++) {
    const txid = bytesToHex(crypto.getRandomValues(new Uint8Array(32)));
    const script = i % 3 === 0 ? OUR : i % 3 === 1 ? OTHER : crypto.getRandomValues(new Uint8Array(34));
    utxos.push({
      address_type: i % 4,
      address: i % 5 ? `bcrt1q${i}` : "",
      amount_sat: String(2_100_000_000_000_000 - i),
      pk_script: bytesToHex(script),
      outpoint: {
        txid_bytes: Uint8Array.from(txid.match(/../g)!.reverse(), (x) => parseInt(x, 16)),
        txid_str: txid,
        output_index: i * 7919,
      },
      confirmations: String(i % 7),
    });
  }
  return utxos;
}

/** What the decoder must return for one entry, from protobufjs's decode of the same bytes. */
function expected(u: Record<string, unknown>) {
  const op = u.outpoint as { txid_str: string; output_index: number };
  return {
    txid: op.txid_str,
    vout: op.output_index,
    amountSat: BigInt(u.amount_sat as string),
    pkScript: Uint8Array.from((u.pk_script as string).match(/../g) ?? [], (x) => parseInt(x, 16)),
    confirmations: Math.max(0, Number(u.confirmations)),
    address: u.address as string,
  };
}

Deno.test("decodeListUnspent() equals protobufjs's decode of lnd's message, all entries and filtered to our pkScripts", () => {
  const buf = method.responseSerialize({ utxos: wallet(300) });
  const ref = method.responseDeserialize(buf).utxos;
  const all = decodeListUnspent(buf);
  assertEquals(all.total, 300);
  assertEquals(all.utxos, ref.map(expected));
  const ours = decodeListUnspent(buf, [OUR]);
  assertEquals(ours.total, 300);
  assertEquals(ours.utxos, ref.filter((u) => u.pk_script === bytesToHex(OUR)).map(expected));
  assertEquals(ours.utxos.length, 100);
  assertEquals(decodeListUnspent(buf, [OUR, OTHER]).utxos.length, 200);
  assertEquals(decodeListUnspent(buf, []).utxos, []);
});

Deno.test("decodeListUnspent() skips unknown fields of every wire type and reads negative int64 confirmations", () => {
  const [u] = wallet(1);
  const one = method.responseSerialize({
    utxos: [{ ...u, pk_script: bytesToHex(OUR), confirmations: "-1" }],
  });
  // Unknown top-level fields: 9 (varint), 10 (fixed64), 11 (bytes), 12 (fixed32), then the entry again.
  const unknown = Uint8Array.of(
    9 << 3,
    0x96,
    0x01,
    (10 << 3) | 1,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    (11 << 3) | 2,
    2,
    0xaa,
    0xbb,
    (12 << 3) | 5,
    1,
    2,
    3,
    4,
  );
  const buf = Uint8Array.of(...one, ...unknown, ...one);
  const r = decodeListUnspent(buf, [OUR]);
  assertEquals(r.total, 2);
  assertEquals(r.utxos.map((x) => x.confirmations), [0, 0]);
  assertEquals(r.utxos[0].txid, u.outpoint.txid_str);
});

Deno.test("decodeListUnspent() refuses truncated bytes, a length past the end, and a pk_script that is not hex", () => {
  const buf = method.responseSerialize({ utxos: wallet(3) });
  assertThrows(() => decodeListUnspent(buf.subarray(0, buf.length - 5)), WireError);
  assertThrows(() => decodeListUnspent(Uint8Array.of(0x0a, 0x7f, 0x00)), WireError);
  const bad = method.responseSerialize({ utxos: [{ ...wallet(1)[0], pk_script: "zz" }] });
  assertThrows(() => decodeListUnspent(bad), WireError, "not hex");
  assertEquals(decodeListUnspent(new Uint8Array()), { utxos: [], total: 0 });
});

Deno.test("UnspentStreamParser fed the gRPC-framed answer in chunks of any size equals the whole-message decode", async () => {
  const { UnspentStreamParser } = await import("./unspent_stream.ts");
  const msg = method.responseSerialize({ utxos: wallet(200) });
  const framed = Uint8Array.of(0, ...[24, 16, 8, 0].map((s) => (msg.length >>> s) & 0xff), ...msg);
  const want = decodeListUnspent(msg, [OUR]);
  for (const size of [1, 2, 3, 7, 64, 1000, framed.length]) {
    const p = new UnspentStreamParser([OUR]);
    for (let i = 0; i < framed.length; i += size) p.push(framed.subarray(i, i + size));
    p.finish();
    assertEquals([p.utxos, p.total], [want.utxos, 200], `chunk size ${size}`);
  }
  const cut = new UnspentStreamParser();
  cut.push(framed.subarray(0, framed.length - 3));
  assertThrows(() => cut.finish(), WireError);
  const compressed = new UnspentStreamParser();
  assertThrows(() => compressed.push(Uint8Array.of(1, 0, 0, 0, 0)), WireError, "compressed");
});
