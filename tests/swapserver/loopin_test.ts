// The local swap server's static loop-in, driven by the minimal client of ./_test_client.ts (its own
// MuSig2, its own HTLC script from raw opcodes, loopkit's static address) against a MemoryChain. Every
// expected value is computed here from the spec's rules (fee formula, weights, caps, expiry delta).
import * as grpc from "@grpc/grpc-js";
import { schnorr } from "@noble/curves/secp256k1.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { Transaction } from "@scure/btc-signer";
import { Buffer } from "node:buffer";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { MemoryChain } from "./chain.ts";
import { InProcessLightning } from "./lightning.ts";
import type { LoopInKnobs } from "./loopin.ts";
import { startSwapServer } from "./server.ts";
import {
  buyToken,
  call,
  type ClientDeposit,
  clientHtlcWeight,
  isRisk,
  isSweep,
  type Msg,
  mustCall,
  newClientAddress,
  NotificationStream,
  sighashOf,
  signHtlcs,
  signSweep,
  VARIANTS,
} from "./_test_client.ts";

const TIP = 5000;

async function setup(knobs: Partial<LoopInKnobs> = {}) {
  const serverLn = new InProcessLightning("regtest");
  const clientLn = new InProcessLightning("regtest");
  const chain = new MemoryChain(TIP);
  const paid: string[] = [];
  const payer = {
    pay(invoice: string) {
      paid.push(invoice);
      const held = [...clientLn.invoices.values()].find((i) => i.paymentRequest === invoice);
      return held ? Promise.resolve(held.preimage) : Promise.reject(new Error("unknown invoice"));
    },
  };
  const server = await startSwapServer({ invoices: serverLn, chain, payer, loopIn: knobs });
  const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
  const md = await buyToken(client, serverLn);
  const addr = await newClientAddress(client, md);
  const streams: NotificationStream[] = [];
  const fund = (valueSat: bigint, confirmations = 6, pkScript = addr.address.pkScript): ClientDeposit => {
    const txid = hex.encode(crypto.getRandomValues(new Uint8Array(32)));
    chain.addOutput(txid, 0, valueSat, pkScript, confirmations);
    return { txid, vout: 0, valueSat };
  };
  const subscribe = (m = md) => {
    const s = new NotificationStream(client, m);
    streams.push(s);
    return s;
  };
  /** Quote, invoice and ServerStaticAddressLoopIn; `amount` 0 = all. */
  const initiate = async (
    deposits: ClientDeposit[],
    amount = 0n,
    o: { invoiceDelta?: bigint; md?: grpc.Metadata; noQuote?: boolean; paymentTimeoutSeconds?: number } = {},
  ) => {
    const total = deposits.reduce((s, d) => s + d.valueSat, 0n);
    const swapAmount = amount === 0n ? total : amount;
    const quote = o.noQuote ? { swapFee: "0" } : await mustCall(client, "SwapServer", "LoopInQuote", {
      amt: swapAmount.toString(),
      protocolVersion: 11,
      numStaticAddressDeposits: deposits.length,
    }, o.md ?? md);
    const fee = BigInt(quote.swapFee);
    const inv = await clientLn.addInvoice(
      swapAmount - fee + (o.invoiceDelta ?? 0n),
      "static address loop-in",
    );
    const htlcPriv = secp256k1.utils.randomSecretKey();
    const req = {
      htlcClientPubKey: Buffer.from(secp256k1.getPublicKey(htlcPriv, true)),
      swapHash: Buffer.from(inv.paymentHash),
      depositOutpoints: deposits.map((d) => `${d.txid}:${d.vout}`),
      swapInvoice: inv.paymentRequest,
      protocolVersion: 0,
      paymentTimeoutSeconds: o.paymentTimeoutSeconds ?? 60,
      amount: amount.toString(),
    };
    const r = await call(client, "StaticAddressServer", "ServerStaticAddressLoopIn", req, o.md ?? md);
    return { ...r, req, swapHash: inv.paymentHash, swapAmount, change: total - swapAmount, fee, deposits };
  };
  const stop = async () => {
    for (const s of streams) s.close();
    await server.loopIn.settled();
    client.close();
    await server.stop();
  };
  return { server, client, md, addr, chain, clientLn, serverLn, paid, fund, subscribe, initiate, stop };
}

type Init = Awaited<ReturnType<Awaited<ReturnType<typeof setup>>["initiate"]>>;

Deno.test("loop-in server: terms, loop-out terms, quote formula and probe records", async () => {
  const t = await setup({
    minSwapAmountSat: 20_000n,
    swapFeeBaseSat: 500n,
    swapFeePpm: 2_000n,
    swapFeePerExtraDepositSat: 100n,
  });
  try {
    const terms = await mustCall(t.client, "SwapServer", "LoopInTerms", { protocolVersion: 11 }, t.md);
    assertEquals([terms.minSwapAmount, terms.maxSwapAmount], ["20000", "100000000"]);
    const out = await mustCall(t.client, "SwapServer", "LoopOutTerms", { protocolVersion: 11 }, t.md);
    assertEquals(out.minCltvDelta > 0 && out.maxCltvDelta >= out.minCltvDelta, true);
    // 500 + floor(1 234 567 × 2 000 / 10⁶) + 2 × 100 for three deposits.
    const q = await mustCall(t.client, "SwapServer", "LoopInQuote", {
      amt: "1234567",
      numStaticAddressDeposits: 3,
    }, t.md);
    assertEquals(q.swapFee, String(500n + (1_234_567n * 2_000n) / 1_000_000n + 200n));
    assertEquals(q.cltvDelta, 1000);
    const low = await call(t.client, "SwapServer", "LoopInQuote", { amt: "19999" }, t.md);
    assertEquals(low.err?.code, grpc.status.INVALID_ARGUMENT);
    await mustCall(t.client, "SwapServer", "Probe", {
      amt: "30000",
      target: Buffer.alloc(33, 2),
      protocolVersion: 11,
    }, t.md);
    assertEquals(t.server.loopIn.records.probes.map((p) => [p.amtSat, p.protocolVersion]), [[30_000n, 11]]);
  } finally {
    await t.stop();
  }
});

Deno.test("loop-in server: happy path — strict init, tampered partial signature refused, three verifying HTLC txs, payment, sweepless sweep", async () => {
  const t = await setup();
  try {
    const stream = t.subscribe();
    const deposits = [t.fund(600_000n), t.fund(500_000n, 0)];
    const init = await t.initiate(deposits, 1_000_000n);
    assertEquals(init.err, undefined, init.err?.details);
    const res = init.res!;
    assertEquals(res.htlcExpiry, TIP + 1000);
    const row = t.server.loopIn.swaps.get(hex.encode(init.swapHash))!;
    assertEquals(
      [
        row.selectedAmountSat,
        row.swapAmountSat,
        row.changeSat,
        row.totalSat,
        row.requestedPaymentTimeoutSeconds,
      ],
      [1_000_000n, 1_000_000n, 100_000n, 1_100_000n, 60],
    );
    assertEquals(row.swapFeeSat, 1_000n + 1_000_000n * 1_000n / 1_000_000n, "default fee: 1 000 + 1 000 ppm");
    assertEquals(Uint8Array.from(res.htlcServerPubKey).length, 33);
    const weight = clientHtlcWeight(2, true);
    assertEquals(clientHtlcWeight(1, false), 444);
    assertEquals(clientHtlcWeight(1, true), 616);
    for (const [variant, field] of VARIANTS) {
      const info = res[field];
      assertEquals(info.nonces.length, 2, variant);
      for (const nonce of info.nonces) assertEquals(nonce.length, 66, variant);
      const fee = (BigInt(info.feeRate) * BigInt(weight)) / 1000n;
      const cap = variant === "standard" ? (1_000_000n * 2n) / 10n : 1_000_000n / 2n;
      assert(fee <= cap, `${variant} fee ${fee} within cap ${cap}`);
    }
    // The deposits are locked: a second loop-in over one of them is refused.
    const again = await t.initiate([deposits[0]]);
    assertEquals(again.err?.code, grpc.status.FAILED_PRECONDITION);
    assertStringIncludes(again.err!.details, "already used by swap");

    const { push, txs } = signHtlcs(t.addr, init);
    // One flipped byte in the high variant's first partial signature: refused, naming variant and input.
    const tampered = structuredClone(push);
    tampered.highFeeHtlcInfo.sigs = push.highFeeHtlcInfo.sigs.map((s: Buffer, i: number) => {
      const c = Buffer.from(s);
      if (i === 0) c[5] ^= 0x01;
      return c;
    });
    tampered.swapHash = push.swapHash;
    const bad = await call(t.client, "StaticAddressServer", "PushStaticAddressHtlcSigs", tampered, t.md);
    assertEquals(bad.err?.code, grpc.status.INVALID_ARGUMENT);
    assertStringIncludes(bad.err!.details, "high_fee_htlc_info input 0");
    assertEquals(t.server.loopIn.signedHtlcTxs(init.swapHash), undefined);

    await mustCall(t.client, "StaticAddressServer", "PushStaticAddressHtlcSigs", push, t.md);
    const signed = t.server.loopIn.signedHtlcTxs(init.swapHash)!;
    for (const [variant] of VARIANTS) {
      const mine = txs[variant];
      assertEquals(signed[variant].txid, mine.tx.id, `${variant}: the server's tx is the client's tx`);
      const raw = Transaction.fromRaw(signed[variant].rawTx, { allowUnknownOutputs: true });
      for (let i = 0; i < 2; i++) {
        const w = raw.getInput(i).finalScriptWitness!;
        assertEquals(w.length, 1);
        assertEquals(w[0].length, 64);
        assert(
          schnorr.verify(w[0], mine.sighashes[i], t.addr.address.outputKey.subarray(1)),
          `${variant} input ${i}`,
        );
      }
    }
    assertEquals(t.chain.published.length, 0, "the server broadcasts no HTLC");

    await stream.next(isRisk("Accepted", init.swapHash));
    const sweepMsg = await stream.next(isSweep(init.swapHash));
    assertEquals(t.paid, [init.req.swapInvoice]);
    assertEquals(t.server.loopIn.swaps.get(hex.encode(init.swapHash))!.state, "paid");

    const sweep = signSweep(t.addr, sweepMsg, 100_000n);
    assertEquals(
      Object.keys(sweepMsg.staticLoopInSweep.depositToNonces).sort(),
      init.req.depositOutpoints.sort(),
    );
    await mustCall(t.client, "StaticAddressServer", "PushStaticAddressSweeplessSigs", sweep.push, t.md);
    assertEquals(t.chain.published.length, 1);
    const published = Transaction.fromRaw(t.chain.published[0], { allowUnknownOutputs: true });
    assertEquals(published.id, sweep.tx.id);
    for (let i = 0; i < published.inputsLength; i++) {
      const sig = published.getInput(i).finalScriptWitness![0];
      assert(
        schnorr.verify(sig, sighashOf(sweep.tx, i, sweep.prevouts), t.addr.address.outputKey.subarray(1)),
      );
    }
    for (const d of deposits) assertEquals(t.chain.spentBy(`${d.txid}:0`), published.id);
    assertEquals(t.server.loopIn.swaps.get(hex.encode(init.swapHash))!.state, "swept");
  } finally {
    await t.stop();
  }
});

Deno.test("loop-in server: an empty push abandons — deposits released, never paid; no abandon after signing", async () => {
  const t = await setup();
  try {
    const d = t.fund(200_000n);
    const first = await t.initiate([d]);
    await mustCall(t.client, "StaticAddressServer", "PushStaticAddressHtlcSigs", {
      swapHash: Buffer.from(first.swapHash),
    }, t.md);
    assertEquals(t.server.loopIn.records.abandons, [hex.encode(first.swapHash)]);
    assertEquals(t.server.loopIn.swaps.get(hex.encode(first.swapHash))!.state, "abandoned");
    // Signatures for an abandoned swap are refused; the deposit is free for a new swap.
    const late = await call(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressHtlcSigs",
      signHtlcs(t.addr, first).push,
      t.md,
    );
    assertEquals(late.err?.code, grpc.status.FAILED_PRECONDITION);
    const second = await t.initiate([d]);
    assertEquals(second.err, undefined);
    await mustCall(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressHtlcSigs",
      signHtlcs(t.addr, second).push,
      t.md,
    );
    const abandon = await call(t.client, "StaticAddressServer", "PushStaticAddressHtlcSigs", {
      swapHash: Buffer.from(second.swapHash),
    }, t.md);
    assertEquals(abandon.err?.code, grpc.status.FAILED_PRECONDITION);
    await t.server.loopIn.settled();
    assertEquals(t.paid, [second.req.swapInvoice], "only the signed swap is paid");
  } finally {
    await t.stop();
  }
});

Deno.test("loop-in server: refuses foreign, spent, short-runway and dust deposits, wrong invoices and other tokens", async () => {
  const t = await setup();
  try {
    const other = secp256k1.utils.randomSecretKey();
    const foreignScript = Uint8Array.of(0x51, 0x20, ...secp256k1.getPublicKey(other, true).subarray(1));
    const cases: [string, () => Promise<Init>, number, string][] = [
      [
        "foreign pkScript",
        () => t.initiate([t.fund(100_000n, 6, foreignScript)]),
        9,
        "does not pay this token's static address",
      ],
      [
        "unknown outpoint",
        () => t.initiate([{ txid: "11".repeat(32), vout: 0, valueSat: 100_000n }]),
        9,
        "unknown or already spent",
      ],
      [
        "spent outpoint",
        () => {
          const d = t.fund(100_000n);
          t.chain.spend(`${d.txid}:0`);
          return t.initiate([d]);
        },
        9,
        "unknown or already spent",
      ],
      // 14 400-block CSV: confirmed 13 351 blocks ago leaves 1 049 < 1 050 blocks.
      ["short runway", () => t.initiate([t.fund(100_000n, 13_352)]), 9, "need at least 1050 of CSV runway"],
      ["dust change", () => t.initiate([t.fund(100_000n)], 99_671n), 3, "dust change 329"],
      [
        "invoice amount",
        () => t.initiate([t.fund(100_000n)], 0n, { invoiceDelta: 1n }),
        3,
        "swap_invoice amount",
      ],
      ["below terms", () => t.initiate([t.fund(40_000n)], 0n, { noQuote: true }), 3, "below the minimum"],
    ];
    for (const [name, run, code, text] of cases) {
      const r = await run();
      assertEquals(r.err?.code, code, `${name}: ${r.err?.details}`);
      assertStringIncludes(r.err!.details, text, name);
    }
    // Exactly 1 050 blocks of runway and change of exactly 330 are fine.
    assertEquals((await t.initiate([t.fund(100_000n, 13_351)])).err, undefined);
    assertEquals((await t.initiate([t.fund(100_000n)], 99_670n)).err, undefined);

    // An invoice for another network.
    const testnet = new InProcessLightning("testnet");
    const d = t.fund(100_000n);
    const inv = await testnet.addInvoice(99_000n - 100n, "x");
    const wrongNet = await call(t.client, "StaticAddressServer", "ServerStaticAddressLoopIn", {
      htlcClientPubKey: Buffer.from(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true)),
      swapHash: Buffer.from(inv.paymentHash),
      depositOutpoints: [`${d.txid}:0`],
      swapInvoice: inv.paymentRequest,
    }, t.md);
    assertEquals(wrongNet.err?.code, grpc.status.INVALID_ARGUMENT);
    assertStringIncludes(wrongNet.err!.details, "swap_invoice");

    // A second token: its own (no) address, and no access to the first token's swaps.
    const md2 = await buyToken(t.client, t.serverLn);
    const noAddr = await t.initiate([t.fund(100_000n)], 0n, { md: md2 });
    assertEquals(noAddr.err?.code, grpc.status.FAILED_PRECONDITION);
    assertStringIncludes(noAddr.err!.details, "no static address was issued to this L402 token");
    await newClientAddress(t.client, md2);
    const notTheirs = await t.initiate([t.fund(100_000n)], 0n, { md: md2 });
    assertStringIncludes(notTheirs.err!.details, "does not pay this token's static address");
    const mine = await t.initiate([t.fund(100_000n)]);
    const stolen = await call(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressHtlcSigs",
      signHtlcs(t.addr, mine).push,
      md2,
    );
    assertEquals(stolen.err?.code, grpc.status.PERMISSION_DENIED);
  } finally {
    await t.stop();
  }
});

Deno.test("loop-in server: fee-rate clamp and over-guard knob, short and 65-byte nonces, expiry delta", async () => {
  const t = await setup({
    feeRates: { standard: 1_000_000n, high: 1_000n, extreme: 1_000n },
    htlcExpiryDelta: 1600,
  });
  try {
    const amount = 100_000n;
    const w = clientHtlcWeight(1, false);
    const fee = (rate: string) => (BigInt(rate) * BigInt(w)) / 1000n;
    let r = await t.initiate([t.fund(amount)]);
    assertEquals(r.res!.htlcExpiry, TIP + 1600);
    // standard asked at 1 000 000 sat/kw: clamped to the largest rate whose fee is ≤ floor(A × 0.2).
    const std = r.res!.standardHtlcInfo.feeRate;
    assertEquals(fee(std), amount / 5n);
    assert(fee(String(BigInt(std) + 1n)) > amount / 5n);
    assertEquals(r.res!.highFeeHtlcInfo.feeRate, "1000");

    t.server.loopIn.setKnobs({ feeOverGuard: "high" });
    r = await t.initiate([t.fund(amount)]);
    assert(fee(r.res!.highFeeHtlcInfo.feeRate) > amount / 2n, "high one over the guard");
    assert(fee(String(BigInt(r.res!.highFeeHtlcInfo.feeRate) - 1n)) <= amount / 2n, "by exactly one sat/kw");

    t.server.loopIn.setKnobs({ feeOverGuard: undefined, shortNonces: "extreme", nonce65: true });
    r = await t.initiate([t.fund(amount), t.fund(amount)]);
    assertEquals(r.res!.extremeFeeHtlcInfo.nonces.length, 1);
    assertEquals(r.res!.standardHtlcInfo.nonces.map((n: Uint8Array) => n.length), [65, 66]);
  } finally {
    await t.stop();
  }
});

Deno.test("loop-in server: risk rejection, HTLC publication instead of payment, re-sends on every new subscription", async () => {
  const t = await setup({ risk: "reject" });
  try {
    const rejected = await t.initiate([t.fund(100_000n)]);
    await mustCall(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressHtlcSigs",
      signHtlcs(t.addr, rejected).push,
      t.md,
    );
    await t.server.loopIn.settled();
    assertEquals(t.paid, []);
    // Nobody was subscribed: the decision is delivered to each later subscription (a cron client).
    for (let i = 0; i < 2; i++) {
      const s = t.subscribe();
      await s.next(isRisk("Rejected", rejected.swapHash));
      s.close();
    }

    t.server.loopIn.setKnobs({ risk: "accept", publishHtlc: "extreme" });
    const published = await t.initiate([t.fund(100_000n)]);
    await mustCall(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressHtlcSigs",
      signHtlcs(t.addr, published).push,
      t.md,
    );
    await t.server.loopIn.settled();
    assertEquals(t.paid, []);
    assertEquals(t.chain.published.length, 1);
    assertEquals(t.chain.published[0], t.server.loopIn.signedHtlcTxs(published.swapHash)!.extreme.rawTx);

    // A server that rejects the risk and still publishes an HTLC variant.
    t.server.loopIn.setKnobs({ risk: "reject", publishHtlc: "high" });
    const both = await t.initiate([t.fund(100_000n)]);
    await mustCall(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressHtlcSigs",
      signHtlcs(t.addr, both).push,
      t.md,
    );
    await t.server.loopIn.settled();
    assertEquals(t.chain.published.at(-1), t.server.loopIn.signedHtlcTxs(both.swapHash)!.high.rawTx);
    assertEquals(t.server.loopIn.swaps.get(hex.encode(both.swapHash))!.riskDecision, "rejected");

    // pay: never — the acceptance stays pending and is re-sent; the test publishes a variant later by hand.
    t.server.loopIn.setKnobs({ risk: "accept" });
    t.server.loopIn.setKnobs({ publishHtlc: undefined, pay: "never" });
    const unpaid = await t.initiate([t.fund(100_000n)]);
    await mustCall(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressHtlcSigs",
      signHtlcs(t.addr, unpaid).push,
      t.md,
    );
    await t.server.loopIn.settled();
    await t.subscribe().next(isRisk("Accepted", unpaid.swapHash));
    assertEquals(t.paid, []);
    const late = await t.server.loopIn.publishHtlc(unpaid.swapHash, "standard");
    assertEquals(late, t.server.loopIn.signedHtlcTxs(unpaid.swapHash)!.standard.txid);
    assertEquals(t.server.loopIn.swaps.get(hex.encode(unpaid.swapHash))!.state, "htlc_published");
  } finally {
    await t.stop();
  }
});

Deno.test("loop-in server: sweep request asked again after 'swap not finished yet', and its misbehaviour knobs", async () => {
  const t = await setup({ sweep: "manual" });
  try {
    const init = await t.initiate([t.fund(300_000n)], 250_000n);
    await mustCall(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressHtlcSigs",
      signHtlcs(t.addr, init).push,
      t.md,
    );
    await t.server.loopIn.settled();
    const s1 = t.subscribe();
    t.server.loopIn.requestSweep(init.swapHash);
    const n1 = await s1.next(isSweep(init.swapHash));
    const { push } = signSweep(t.addr, n1, 50_000n);
    await mustCall(t.client, "StaticAddressServer", "PushStaticAddressSweeplessSigs", {
      swapHash: push.swapHash,
      txid: push.txid,
      errorMessage: "swap not finished yet",
    }, t.md);
    s1.close();
    // The next subscription gets the request again, with fresh server nonces; the answer to it completes.
    const s2 = t.subscribe();
    const n2 = await s2.next(isSweep(init.swapHash));
    assert(
      hex.encode(n2.staticLoopInSweep.depositToNonces[init.req.depositOutpoints[0]]) !==
        hex.encode(n1.staticLoopInSweep.depositToNonces[init.req.depositOutpoints[0]]),
      "fresh nonces",
    );
    const answer = signSweep(t.addr, n2, 50_000n);
    // A flipped partial signature is refused, then the right one publishes.
    const badSig = structuredClone(answer.push);
    badSig.swapHash = answer.push.swapHash;
    badSig.txid = answer.push.txid;
    const op = init.req.depositOutpoints[0];
    badSig.signingInfo = {
      [op]: {
        nonce: answer.push.signingInfo[op].nonce,
        sig: Buffer.from(answer.push.signingInfo[op].sig).fill(7, 0, 1),
      },
    };
    const refused = await call(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressSweeplessSigs",
      badSig,
      t.md,
    );
    assertEquals(refused.err?.code, grpc.status.INVALID_ARGUMENT);
    assertStringIncludes(refused.err!.details, "sweep input 0");
    await mustCall(t.client, "StaticAddressServer", "PushStaticAddressSweeplessSigs", answer.push, t.md);
    assertEquals(t.server.loopIn.records.sweepsPublished.length, 1);

    // Misbehaving sweep requests.
    const knobCases = [
      ["wrong_change", (m: Msg) => {
        const tx = Transaction.fromPSBT(Uint8Array.from(m.staticLoopInSweep.sweepTxPsbt), {
          allowUnknownOutputs: true,
        });
        return tx.getOutput(1).amount === 49_999n;
      }],
      ["foreign_outpoint", (m: Msg) => Object.keys(m.staticLoopInSweep.depositToNonces).length === 2],
      [
        "bad_nonce",
        (m: Msg) =>
          (Object.values(m.staticLoopInSweep.depositToNonces) as Uint8Array[]).some((n) => n.length === 65),
      ],
    ] as const;
    for (const [knob, check] of knobCases) {
      t.server.loopIn.setKnobs({ sweepMisbehave: knob });
      const i = await t.initiate([t.fund(300_000n)], 250_000n);
      await mustCall(
        t.client,
        "StaticAddressServer",
        "PushStaticAddressHtlcSigs",
        signHtlcs(t.addr, i).push,
        t.md,
      );
      await t.server.loopIn.settled();
      t.server.loopIn.requestSweep(i.swapHash);
      assert(check(await s2.next(isSweep(i.swapHash))), knob);
    }
  } finally {
    await t.stop();
  }
});

Deno.test("loop-in server: swap hash and payment preimage agree (payer's preimage is checked)", async () => {
  const t = await setup();
  try {
    const init = await t.initiate([t.fund(100_000n)]);
    await mustCall(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressHtlcSigs",
      signHtlcs(t.addr, init).push,
      t.md,
    );
    await t.server.loopIn.settled();
    const swap = t.server.loopIn.swaps.get(hex.encode(init.swapHash))!;
    assertEquals(hex.encode(sha256(swap.preimage!)), hex.encode(init.swapHash));
  } finally {
    await t.stop();
  }
});

Deno.test("loop-in server: risk decision at init, payment after a delay, push answered late (signatures already kept)", async () => {
  const t = await setup({ riskAtInit: true, payDelayMs: 300, pushAnswerDelayMs: 300 });
  try {
    const s = t.subscribe();
    const init = await t.initiate([t.fund(100_000n)]);
    // The acceptance arrives before the client has signed anything.
    await s.next(isRisk("Accepted", init.swapHash));
    assertEquals(t.server.loopIn.signedHtlcTxs(init.swapHash), undefined);
    const started = Date.now();
    const pushed = call(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressHtlcSigs",
      signHtlcs(t.addr, init).push,
      t.md,
    );
    // While the answer is held back, the server already holds the three signed transactions.
    await new Promise((r) => setTimeout(r, 100));
    assert(t.server.loopIn.signedHtlcTxs(init.swapHash) !== undefined);
    assertEquals(t.paid, []);
    assertEquals((await pushed).err, undefined);
    assert(Date.now() - started >= 300, "push answered after the delay");
    await t.server.loopIn.settled();
    assertEquals(t.paid, [init.req.swapInvoice]);
    assertEquals(t.server.loopIn.records.notifications.filter((n) => n.kind === "risk_accepted").length, 1);
  } finally {
    await t.stop();
  }
});

Deno.test("loop-in server: unpaid past the payment timeout, or a failed payment, releases the deposits (signatures kept)", async () => {
  const t = await setup({ pay: "never" });
  try {
    const d = t.fund(100_000n);
    const first = await t.initiate([d], 0n, { paymentTimeoutSeconds: 1 });
    await mustCall(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressHtlcSigs",
      signHtlcs(t.addr, first).push,
      t.md,
    );
    assertEquals(
      (await t.initiate([d])).err?.code,
      grpc.status.FAILED_PRECONDITION,
      "still held within the timeout",
    );
    await new Promise((r) => setTimeout(r, 1300));
    const swap = t.server.loopIn.swaps.get(hex.encode(first.swapHash))!;
    assertEquals([swap.state, swap.paymentTimedOut], ["signed", true]);
    assert(t.server.loopIn.signedHtlcTxs(first.swapHash) !== undefined);
    const second = await t.initiate([d]);
    assertEquals(second.err, undefined);

    // A payment that fails (the payer does not know this invoice) releases at once.
    t.server.loopIn.setKnobs({ pay: "pay" });
    const e = t.fund(100_000n);
    const other = await t.initiate([e]);
    const push = signHtlcs(t.addr, other).push;
    t.clientLn.invoices.clear();
    await mustCall(t.client, "StaticAddressServer", "PushStaticAddressHtlcSigs", push, t.md);
    await t.server.loopIn.settled();
    assertEquals(t.server.loopIn.swaps.get(hex.encode(other.swapHash))!.state, "payment_failed");
    assertEquals((await t.initiate([e])).err, undefined, "the deposit is free again");
  } finally {
    await t.stop();
  }
});

Deno.test("loop-in server: a risk decision is re-sent to later subscriptions after the HTLC was published instead of paying", async () => {
  // A cron client is not subscribed at push time; it must still learn the decision on its next run, also when
  // the server went on to publish an HTLC variant (accepted or rejected).
  const t = await setup({ risk: "accept", publishHtlc: "standard" });
  try {
    const accepted = await t.initiate([t.fund(100_000n)]);
    await mustCall(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressHtlcSigs",
      signHtlcs(t.addr, accepted).push,
      t.md,
    );
    await t.server.loopIn.settled();
    assertEquals(t.server.loopIn.swaps.get(hex.encode(accepted.swapHash))!.state, "htlc_published");
    for (let i = 0; i < 2; i++) {
      const s = t.subscribe();
      await s.next(isRisk("Accepted", accepted.swapHash));
      s.close();
    }
    t.server.loopIn.setKnobs({ risk: "reject", publishHtlc: "high" });
    const rejected = await t.initiate([t.fund(100_000n)]);
    await mustCall(
      t.client,
      "StaticAddressServer",
      "PushStaticAddressHtlcSigs",
      signHtlcs(t.addr, rejected).push,
      t.md,
    );
    await t.server.loopIn.settled();
    const s = t.subscribe();
    await s.next(isRisk("Rejected", rejected.swapHash));
    s.close();
  } finally {
    await t.stop();
  }
});
