import assert from "node:assert/strict";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { HDKey } from "@scure/bip32";
import { p2tr, RawTx, TEST_NETWORK, Transaction } from "@scure/btc-signer";
import { schnorr } from "@noble/curves/secp256k1.js";
import { ExitCode, LoopkitError } from "../core/errors.ts";
import { type FakeLnd, type FakeLndOptions, startFakeLnd } from "../tests/fakelnd/server.ts";
import { connectLnd } from "./connect.ts";
import { GrpcStatus, LndInvoiceErrorCode, LndRpcError } from "./errors.ts";
import { decode as decodeBolt11 } from "light-bolt11-decoder";
import { nonceAggregate, nonceGen, Session, sortKeys } from "@scure/btc-signer/musig2.js";
import { decodeInvoice } from "../core/l402/bolt11.ts";
import { staticAddress } from "../core/staticaddr/script.ts";
import { GrpcLndClient, ownDeadlinePassed } from "./grpc_client.ts";
import { openLndRpc } from "./rpc.ts";
import type { LndClient } from "./types.ts";

// spec/backup-and-recovery.md §1.5
const NUMS = "0215b5a3e0ef58b101431e1e513dd017d1018b420bd2e89dcd71f45c031f00469e";
const SEED = sha256(new TextEncoder().encode("grpc_client_test seed"));
const REGTEST = { ...TEST_NETWORK, bech32: "bcrt" };

/** Runs `fn` with a fake lnd and a connected client; closes and stops both. */
async function withLnd(fn: (lnd: LndClient, fake: FakeLnd) => Promise<void>, opts: FakeLndOptions = {}) {
  const fake = await startFakeLnd({ seed: SEED, ...opts });
  try {
    const { lnd } = await connectLnd({ ...fake, network: opts.network ?? "regtest" });
    try {
      await fn(lnd, fake);
    } finally {
      lnd.close();
    }
  } finally {
    await fake.stop();
  }
}

function lastRequest(fake: FakeLnd, rpc: string): Record<string, unknown> {
  const r = fake.requests.findLast((x) => x.rpc === rpc);
  assert.ok(r, `no ${rpc} request recorded`);
  return r.request;
}

Deno.test("deriveSharedKey() sends NUMS with the deprecated key_loc and returns SHA-256(compressed k·NUMS) in one call", async () => {
  await withLnd(async (lnd, fake) => {
    const key = await lnd.deriveSharedKey(hexToBytes(NUMS), { family: 42060, index: 0 });

    // Independent computation: BIP-32 at lnd's path, point multiplication, SHA-256 (spec §1.5).
    const k = HDKey.fromMasterSeed(SEED).derive("m/1017'/1'/42060'/0/0").privateKey!;
    const point = secp256k1.Point.fromHex(NUMS).multiply(BigInt("0x" + bytesToHex(k)));
    assert.deepEqual(key, sha256(point.toBytes(true)));

    assert.equal(fake.calls["Signer.DeriveSharedKey"], 1);
    const req = lastRequest(fake, "Signer.DeriveSharedKey");
    assert.equal(bytesToHex(req.ephemeral_pubkey as Uint8Array), NUMS);
    assert.deepEqual(req.key_loc, { key_family: 42060, key_index: 0 });
    assert.equal(req.key_desc, null);
  });
});

Deno.test("deriveSharedKey() rejects an ephemeral key that is not 33 bytes before calling lnd", async () => {
  await withLnd(async (lnd, fake) => {
    await assert.rejects(lnd.deriveSharedKey(new Uint8Array(32), { family: 42060, index: 0 }), RangeError);
    await assert.rejects(lnd.deriveSharedKey(hexToBytes(NUMS), { family: -1, index: 0 }), RangeError);
    assert.equal(fake.calls["Signer.DeriveSharedKey"], undefined);
  });
});

Deno.test("deriveKey() returns the key at m/1017'/1'/family'/0/index with its locator, without advancing", async () => {
  await withLnd(async (lnd) => {
    const root = HDKey.fromMasterSeed(SEED);
    for (const index of [0, 5, 20]) {
      const d = await lnd.deriveKey({ family: 42060, index });
      assert.deepEqual(d.keyLocator, { family: 42060, index });
      assert.deepEqual(d.rawKeyBytes, root.derive(`m/1017'/1'/42060'/0/${index}`).publicKey);
    }
    assert.equal((await lnd.deriveNextKey(42060)).keyLocator.index, 0);
  });
});

Deno.test("deriveKey() uses coin type 0 on mainnet", async () => {
  await withLnd(async (lnd) => {
    const d = await lnd.deriveKey({ family: 42061, index: 3 });
    assert.deepEqual(d.rawKeyBytes, HDKey.fromMasterSeed(SEED).derive("m/1017'/0'/42061'/0/3").publicKey);
  }, { network: "mainnet" });
});

Deno.test("deriveNextKey() returns successive indices of the requested family", async () => {
  await withLnd(async (lnd, fake) => {
    const a = await lnd.deriveNextKey(42060);
    const b = await lnd.deriveNextKey(42060);
    assert.deepEqual([a.keyLocator, b.keyLocator], [{ family: 42060, index: 0 }, {
      family: 42060,
      index: 1,
    }]);
    assert.deepEqual(b.rawKeyBytes, HDKey.fromMasterSeed(SEED).derive("m/1017'/1'/42060'/0/1").publicKey);
    assert.equal(fake.calls["WalletKit.DeriveNextKey"], 2);
  });
});

Deno.test("listUnspent() converts amounts to bigint, pk_script hex to bytes, and passes min/max confs", async () => {
  await withLnd(async (lnd, fake) => {
    const big = 2n ** 53n + 1n; // not representable as a JS number
    fake.setUtxos([
      {
        txid: "aa".repeat(32),
        vout: 1,
        amountSat: big,
        pkScript: hexToBytes("5120" + "11".repeat(32)),
        confirmations: 0,
      },
      {
        txid: "bb".repeat(32),
        vout: 0,
        amountSat: 50_000n,
        pkScript: hexToBytes("0014" + "22".repeat(20)),
        confirmations: 6,
        address: "bcrt1qexample",
      },
    ]);
    const all = await lnd.listUnspent(0, 0);
    assert.deepEqual(all, [
      {
        txid: "aa".repeat(32),
        vout: 1,
        amountSat: big,
        pkScript: hexToBytes("5120" + "11".repeat(32)),
        confirmations: 0,
        address: "",
      },
      {
        txid: "bb".repeat(32),
        vout: 0,
        amountSat: 50_000n,
        pkScript: hexToBytes("0014" + "22".repeat(20)),
        confirmations: 6,
        address: "bcrt1qexample",
      },
    ]);
    assert.deepEqual((await lnd.listUnspent(1, 10)).map((u) => u.txid), ["bb".repeat(32)]);
    const req = lastRequest(fake, "WalletKit.ListUnspent");
    assert.equal(req.min_confs, 1);
    assert.equal(req.max_confs, 10);
    assert.equal(req.account, "");
  });
});

Deno.test("listUnspent() sends the account filter; lnd (the fake) lists that account only, nothing for an unknown one", async () => {
  await withLnd(async (lnd, fake) => {
    const utxo = (n: string, account?: string) => ({
      txid: n.repeat(32),
      vout: 0,
      amountSat: 1_000n,
      pkScript: hexToBytes("5120" + n.repeat(32)),
      confirmations: 1,
      ...(account ? { account } : {}),
    });
    fake.setUtxos([utxo("aa", "imported"), utxo("bb"), utxo("cc", "imported")]);
    const imported = await lnd.listUnspent(0, 0, { account: "imported" });
    assert.deepEqual(imported.map((u) => u.txid), ["aa".repeat(32), "cc".repeat(32)]);
    assert.equal(lastRequest(fake, "WalletKit.ListUnspent").account, "imported");
    assert.deepEqual((await lnd.listUnspent(0, 0, { account: "default" })).map((u) => u.txid), [
      "bb".repeat(32),
    ]);
    assert.deepEqual(await lnd.listUnspent(0, 0, { account: "no-such-account" }), []);
    assert.equal((await lnd.listUnspent(0, 0, { account: "" })).length, 3);
    assert.equal(lastRequest(fake, "WalletKit.ListUnspent").account, "");
  });
});

Deno.test("importTapscript() sends the x-only key and one 0xc0 leaf; a repeat counts as success without import", async () => {
  await withLnd(async (lnd, fake) => {
    const internalKey = secp256k1.getPublicKey(sha256(new Uint8Array([7])), true).slice(1);
    const leaf = hexToBytes("029000b275" + "20" + "33".repeat(32) + "ac"); // <144> CSV DROP <key> CHECKSIG
    const out = p2tr(internalKey, { script: leaf, leafVersion: 0xc0 }, REGTEST, true);
    const expected = out.address!;

    assert.deepEqual(await lnd.importTapscript(internalKey, leaf), { imported: true, address: expected });
    assert.deepEqual(fake.imports, [{
      internalKey,
      leaves: [{ leafVersion: 0xc0, script: leaf }],
      address: expected,
      pkScript: out.script,
    }]);
    assert.deepEqual(await lnd.importTapscript(internalKey, leaf), { imported: false });
    assert.equal(fake.calls["WalletKit.ImportTapscript"], 2);
    await assert.rejects(lnd.importTapscript(new Uint8Array(33), leaf), RangeError);
  });
});

Deno.test("nextAddr() asks for a TAPROOT_PUBKEY address of the default account, not change", async () => {
  await withLnd(async (lnd, fake) => {
    const a = await lnd.nextAddr();
    const b = await lnd.nextAddr();
    assert.match(a, /^bcrt1p[02-9ac-hj-np-z]{58}$/);
    assert.notEqual(a, b);
    const req = lastRequest(fake, "WalletKit.NextAddr");
    assert.deepEqual({ account: req.account, type: req.type, change: req.change }, {
      account: "",
      type: "TAPROOT_PUBKEY",
      change: false,
    });
  });
});

Deno.test("publishTransaction() sends the raw bytes and label; a publish_error is an LndRpcError", async () => {
  await withLnd(async (lnd, fake) => {
    const tx = hexToBytes("0200000000010100");
    await lnd.publishTransaction(tx, "loopkit: expiry sweep");
    assert.deepEqual(fake.published, [{ tx, label: "loopkit: expiry sweep" }]);
    fake.setPublishError("txn-mempool-conflict");
    const e = await assert.rejects(lnd.publishTransaction(tx), (e: unknown) => {
      assert.ok(e instanceof LndRpcError);
      assert.equal(e.exitCode, ExitCode.Failure);
      assert.equal(e.details, "txn-mempool-conflict");
      assert.match(e.message, /WalletKit\.PublishTransaction/);
      return true;
    });
    void e;
  });
});

Deno.test("estimateFeeSatPerKw() and minRelayFeeSatPerKw() read EstimateFee as bigint", async () => {
  await withLnd(async (lnd, fake) => {
    fake.setFeeRate(12_345n, 300n);
    assert.equal(await lnd.estimateFeeSatPerKw(3), 12_345n);
    assert.equal(await lnd.minRelayFeeSatPerKw(), 300n);
    assert.equal(lastRequest(fake, "WalletKit.EstimateFee").conf_target, 6);
  });
});

Deno.test("registerConfirmation() sends the txid in internal byte order and returns the display block hash", async () => {
  await withLnd(async (lnd, fake) => {
    const txid = "0102030405060708091011121314151617181920212223242526272829303132";
    const blockHash = "000000000000000000aabbccddeeff00112233445566778899aabbccddeeff00";
    const pkScript = hexToBytes("5120" + "44".repeat(32));
    fake.setConfirmation(txid, { blockHeight: 812, blockHash, txIndex: 3, rawTx: new Uint8Array([1, 2]) });
    const conf = await lnd.registerConfirmation(txid, pkScript, 1, 800);
    assert.deepEqual(conf, { blockHeight: 812, blockHash, txIndex: 3, rawTx: new Uint8Array([1, 2]) });
    const req = lastRequest(fake, "ChainNotifier.RegisterConfirmationsNtfn");
    assert.deepEqual(Uint8Array.from(req.txid as Uint8Array), hexToBytes(txid).reverse());
    assert.deepEqual(Uint8Array.from(req.script as Uint8Array), pkScript);
    assert.equal(req.num_confs, 1);
    assert.equal(req.height_hint, 800);
    await waitFor(() => fake.openStreams() === 0); // the stream was cancelled after the event
  });
});

Deno.test("registerConfirmation() waits for a later confirmation and returns null at its timeout", async () => {
  await withLnd(async (lnd, fake) => {
    const txid = "cd".repeat(32);
    const pending = lnd.registerConfirmation(txid, new Uint8Array([0x51]), 1, 0, { timeoutMs: 5000 });
    await waitFor(() => fake.openStreams() === 1);
    fake.setConfirmation(txid, { blockHeight: 150 });
    assert.equal((await pending)?.blockHeight, 150);

    const started = Date.now();
    assert.equal(
      await lnd.registerConfirmation("ef".repeat(32), new Uint8Array([0x51]), 1, 0, { timeoutMs: 300 }),
      null,
    );
    assert.ok(Date.now() - started < 2000);
  });
});

Deno.test("ownDeadlinePassed(): DEADLINE_EXCEEDED, or CANCELLED once the call's own deadline has passed (lnd's server-side reset)", () => {
  const now = Date.now();
  const status = (code: number) => Object.assign(new Error("x"), { code });
  assert.equal(ownDeadlinePassed(status(GrpcStatus.DEADLINE_EXCEEDED), now + 60_000), true);
  assert.equal(ownDeadlinePassed(status(GrpcStatus.CANCELLED), now - 1), true);
  assert.equal(ownDeadlinePassed(status(GrpcStatus.CANCELLED), now + 60_000), false);
  assert.equal(ownDeadlinePassed(status(GrpcStatus.UNAVAILABLE), now - 1), false);
  assert.equal(ownDeadlinePassed(new Error("no code"), now - 1), false);
});

Deno.test("registerConfirmation() and registerSpend(): a stream lnd resets with CANCELLED before the deadline is an error, not 'none yet'", async () => {
  await withLnd(async (lnd, fake) => {
    fake.failCall("ChainNotifier.RegisterConfirmationsNtfn", {
      code: GrpcStatus.CANCELLED,
      details: "Call cancelled",
      afterMs: 100,
    });
    await assert.rejects(
      () => lnd.registerConfirmation("ab".repeat(32), new Uint8Array([0x51]), 1, 0, { timeoutMs: 10_000 }),
      (e: unknown) => e instanceof LndRpcError && e.grpcCode === GrpcStatus.CANCELLED,
    );
    fake.failCall("ChainNotifier.RegisterSpendNtfn", {
      code: GrpcStatus.CANCELLED,
      details: "Call cancelled",
      afterMs: 100,
    });
    await assert.rejects(
      () =>
        lnd.registerSpend({ txid: "ab".repeat(32), vout: 0 }, new Uint8Array([0x51]), 1, {
          timeoutMs: 10_000,
        }),
      (e: unknown) => e instanceof LndRpcError && e.grpcCode === GrpcStatus.CANCELLED,
    );
  });
});

Deno.test("registerConfirmation() with a null txid matches on the script (zero txid on the wire)", async () => {
  await withLnd(async (lnd, fake) => {
    const pkScript = hexToBytes("5120" + "55".repeat(32));
    fake.setConfirmation("99".repeat(32), { blockHeight: 201 }, pkScript);
    assert.equal((await lnd.registerConfirmation(null, pkScript, 1, 100))?.blockHeight, 201);
    const req = lastRequest(fake, "ChainNotifier.RegisterConfirmationsNtfn");
    assert.deepEqual(Uint8Array.from(req.txid as Uint8Array), new Uint8Array(32));
  });
});

Deno.test("registerSpend() sends the outpoint hash in internal byte order and returns the display spending txid", async () => {
  await withLnd(async (lnd, fake) => {
    const txid = "0102030405060708091011121314151617181920212223242526272829303132";
    const spendingTxid = "a1a2a3a4a5a6a7a8a9b0b1b2b3b4b5b6b7b8b9c0c1c2c3c4c5c6c7c8c9d0d1d2";
    const pkScript = hexToBytes("5120" + "77".repeat(32));
    fake.setSpend(txid, 2, { spendingTxid, spendingHeight: 905, spendingInputIndex: 4 });
    const spend = await lnd.registerSpend({ txid, vout: 2 }, pkScript, 900);
    assert.deepEqual(spend, { spendingTxid, spendingHeight: 905, spendingInputIndex: 4 });
    const req = lastRequest(fake, "ChainNotifier.RegisterSpendNtfn");
    const op = req.outpoint as { hash: Uint8Array; index: number };
    assert.deepEqual(Uint8Array.from(op.hash), hexToBytes(txid).reverse());
    assert.equal(op.index, 2);
    assert.deepEqual(Uint8Array.from(req.script as Uint8Array), pkScript);
    assert.equal(req.height_hint, 900);
    await waitFor(() => fake.openStreams() === 0); // the stream was cancelled after the event
  });
});

Deno.test("registerSpend() waits for a later spend, and returns null at its timeout with the stream cancelled", async () => {
  await withLnd(async (lnd, fake) => {
    const txid = "cd".repeat(32);
    const script = new Uint8Array([0x51]);
    const pending = lnd.registerSpend({ txid, vout: 0 }, script, 1, { timeoutMs: 5000 });
    await waitFor(() => fake.openStreams() === 1);
    fake.setSpend(txid, 1, { spendingTxid: "ee".repeat(32), spendingHeight: 10 }); // another vout
    fake.setSpend(txid, 0, { spendingTxid: "ab".repeat(32), spendingHeight: 11 });
    assert.deepEqual(await pending, {
      spendingTxid: "ab".repeat(32),
      spendingHeight: 11,
      spendingInputIndex: 0,
    });

    const started = Date.now();
    assert.equal(
      await lnd.registerSpend({ txid: "ef".repeat(32), vout: 0 }, script, 1, { timeoutMs: 300 }),
      null,
    );
    assert.ok(Date.now() - started < 2000);
    await waitFor(() => fake.openStreams() === 0);
  });
});

Deno.test("registerSpend() rejects a malformed txid or an empty pkScript before calling lnd", async () => {
  await withLnd(async (lnd, fake) => {
    await assert.rejects(
      () => lnd.registerSpend({ txid: "AB".repeat(32), vout: 0 }, new Uint8Array([0x51]), 1),
      RangeError,
    );
    await assert.rejects(
      () => lnd.registerSpend({ txid: "ab".repeat(32), vout: -1 }, new Uint8Array([0x51]), 1),
      RangeError,
    );
    await assert.rejects(
      () => lnd.registerSpend({ txid: "ab".repeat(32), vout: 0 }, new Uint8Array(), 1),
      RangeError,
    );
    assert.equal(fake.calls["ChainNotifier.RegisterSpendNtfn"] ?? 0, 0);
  });
});

Deno.test("signOutputRaw() sends a taproot script-spend descriptor with key_loc and prev_outputs; the signature verifies", async () => {
  await withLnd(async (lnd, fake) => {
    const keyLocator = { family: 42060, index: 3 };
    const pub = fake.keyRing.publicKey(42060, 3);
    const leaf = Uint8Array.from([0x20, ...pub.subarray(1), 0xad, 0x5a, 0xb2]); // <x> CHECKSIGVERIFY 10 CSV
    const prevScript = hexToBytes("5120" + "66".repeat(32));
    const tx = RawTx.encode({
      version: 2,
      segwitFlag: false,
      inputs: [{
        txid: hexToBytes("ab".repeat(32)),
        index: 1,
        finalScriptSig: new Uint8Array(),
        sequence: 10,
      }],
      outputs: [{ amount: 99_000n, script: hexToBytes("5120" + "77".repeat(32)) }],
      witnesses: undefined,
      lockTime: 0,
    });
    const output = { valueSat: 100_000n, pkScript: prevScript };
    const [sig] = await lnd.signOutputRaw(tx, [{
      keyDesc: { keyLocator, rawKeyBytes: pub },
      witnessScript: leaf,
      output,
      sighash: 0,
      inputIndex: 0,
      signMethod: "SIGN_METHOD_TAPROOT_SCRIPT_SPEND",
    }], [output]);
    const req = lastRequest(fake, "Signer.SignOutputRaw");
    const desc = (req.sign_descs as Record<string, Record<string, unknown>>[])[0];
    assert.deepEqual(desc.key_desc.key_loc, { key_family: 42060, key_index: 3 });
    assert.equal(desc.sign_method, "SIGN_METHOD_TAPROOT_SCRIPT_SPEND");
    assert.equal(desc.sighash, 0);
    assert.deepEqual(Uint8Array.from(desc.witness_script as unknown as Uint8Array), leaf);
    assert.equal((req.prev_outputs as unknown[]).length, 1);
    assert.equal(sig.length, 64);
    const hash = Transaction.fromRaw(tx, { allowUnknownOutputs: true })
      .preimageWitnessV1(0, [prevScript], 0, [100_000n], -1, leaf, 0xc0);
    assert.ok(schnorr.verify(sig, hash, pub.subarray(1)));
    await assert.rejects(
      lnd.signOutputRaw(tx, [], [output]),
      RangeError,
    );
  });
});

Deno.test("sendPaymentV2() follows the stream to SUCCEEDED and returns the preimage and fee", async () => {
  await withLnd(async (lnd, fake) => {
    const preimage = sha256(new TextEncoder().encode("preimage"));
    const hash = bytesToHex(sha256(preimage));
    fake.setPayment(hash, {
      paymentRequest: "lnbcrt1fake",
      updates: [
        { status: "IN_FLIGHT", valueMsat: 1_000_000n },
        { status: "SUCCEEDED", preimage, feeMsat: 1_234n, valueMsat: 1_000_000n, delayMs: 20 },
      ],
    });
    const res = await lnd.sendPaymentV2("lnbcrt1fake", 50n, 60);
    assert.deepEqual(res, {
      paymentHash: hash,
      status: "SUCCEEDED",
      preimage,
      feeMsat: 1_234n,
      valueMsat: 1_000_000n,
      failureReason: "FAILURE_REASON_NONE",
    });
    const req = lastRequest(fake, "Router.SendPaymentV2");
    assert.equal(req.fee_limit_sat, "50");
    assert.equal(req.timeout_seconds, 60);
    assert.equal(req.payment_request, "lnbcrt1fake");

    // Paying again: lnd refuses; the caller gets lnd's text to branch on.
    await assert.rejects(lnd.sendPaymentV2("lnbcrt1fake", 50n, 60), (e: unknown) => {
      assert.ok(e instanceof LndRpcError);
      assert.equal(e.details, "invoice is already paid");
      return true;
    });
  });
});

Deno.test("sendPaymentV2() returns FAILED with lnd's failure reason and no preimage", async () => {
  await withLnd(async (lnd, fake) => {
    fake.setPayment("ab".repeat(32), {
      paymentRequest: "lnbcrt1nope",
      updates: [{ status: "FAILED", failureReason: "FAILURE_REASON_NO_ROUTE" }],
    });
    const res = await lnd.sendPaymentV2("lnbcrt1nope", 0n, 10);
    assert.equal(res.status, "FAILED");
    assert.equal(res.failureReason, "FAILURE_REASON_NO_ROUTE");
    assert.equal(res.preimage, undefined);
  });
});

Deno.test("trackPaymentV2() reports IN_FLIGHT at its timeout, and NOT_FOUND for an unknown payment", async () => {
  await withLnd(async (lnd, fake) => {
    const hash = "cd".repeat(32);
    fake.setPayment(hash, {
      paymentRequest: "lnbcrt1slow",
      updates: [{ status: "IN_FLIGHT", valueMsat: 5_000n }],
    });
    await assert.rejects(lnd.trackPaymentV2(hexToBytes(hash)), (e: unknown) => {
      assert.ok(e instanceof LndRpcError);
      assert.equal(e.grpcCode, GrpcStatus.NOT_FOUND); // not initiated yet
      return true;
    });
    // The payment stays in flight: start it (not awaited) and track it meanwhile.
    const sending = lnd.sendPaymentV2("lnbcrt1slow", 10n, 1);
    await waitFor(() => fake.calls["Router.SendPaymentV2"] === 1);
    const res = await lnd.trackPaymentV2(hexToBytes(hash), { timeoutMs: 300 });
    assert.equal(res.status, "IN_FLIGHT");
    assert.equal(res.paymentHash, hash);
    assert.equal(res.valueMsat, 5_000n);
    lnd.close(); // cancels the SendPaymentV2 stream that is still open
    await assert.rejects(sending, (e: unknown) => {
      assert.ok(e instanceof LndRpcError);
      assert.equal(e.grpcCode, GrpcStatus.CANCELLED);
      return true;
    });
  });
});

Deno.test("a call with the wrong macaroon fails with lnd_auth, exit 2, naming --macaroonpath", async () => {
  const fake = await startFakeLnd();
  const lnd = new GrpcLndClient(
    openLndRpc({
      rpcServer: fake.rpcServer,
      tlsCert: await Deno.readFile(fake.tlsCertPath),
      macaroon: new Uint8Array([1, 2, 3]),
    }),
  );
  try {
    await assert.rejects(lnd.deriveSharedKey(hexToBytes(NUMS), { family: 42060, index: 0 }), (e: unknown) => {
      assert.ok(e instanceof LoopkitError);
      assert.equal(e.code, "lnd_auth");
      assert.equal(e.exitCode, ExitCode.Usage);
      assert.match(e.message, /--macaroonpath/);
      assert.match(e.message, /Signer\.DeriveSharedKey/);
      return true;
    });
    assert.equal(fake.calls["Signer.DeriveSharedKey"], 1);
    assert.equal(fake.requests.length, 0); // refused before the handler
  } finally {
    lnd.close();
    await fake.stop();
  }
});

Deno.test("a call right after lnd dropped the connection fails with lnd_unreachable, exit 75", async () => {
  const fake = await startFakeLnd();
  const { lnd } = await connectLnd({ ...fake, network: "regtest", callTimeoutMs: 3000 });
  try {
    await fake.stop(); // drops the connection without a GOAWAY
    for (let i = 0; i < 2; i++) {
      const started = Date.now();
      await assert.rejects(lnd.deriveKey({ family: 42060, index: 0 }), (e: unknown) => {
        assert.ok(e instanceof LoopkitError);
        assert.equal(e.code, "lnd_unreachable", e.message);
        assert.equal(e.exitCode, ExitCode.TempFail);
        return true;
      });
      assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
    }
  } finally {
    lnd.close();
  }
});

Deno.test("a call after lnd died (process killed) fails with lnd_unreachable, exit 75, within a bounded time", async () => {
  // The fake runs in its own process, killed with SIGKILL: the kernel drops the connection, as
  // when lnd crashes or its host goes down.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL("../tests/fakelnd/main.ts", import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let cfg: { rpcServer: string; tlsCertPath: string; macaroonPath: string; dir: string } | undefined;
  try {
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`fake lnd exited early: ${text}`);
      text += value;
    }
    cfg = JSON.parse(text.slice(0, text.indexOf("\n")));
    const { lnd } = await connectLnd({ ...cfg!, network: "regtest", callTimeoutMs: 3000 });
    try {
      child.kill("SIGKILL");
      await child.status;
      const started = Date.now();
      await assert.rejects(lnd.deriveKey({ family: 42060, index: 0 }), (e: unknown) => {
        assert.ok(e instanceof LoopkitError);
        assert.equal(e.code, "lnd_unreachable", e.message);
        assert.equal(e.exitCode, ExitCode.TempFail);
        assert.ok(e.message.includes(`${cfg!.rpcServer} (--rpcserver)`), e.message);
        return true;
      });
      assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
    } finally {
      lnd.close();
    }
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already dead */ }
    await child.status;
    await lines.cancel();
    await child.stdin.close().catch(() => {});
    if (cfg) await Deno.remove(cfg.dir, { recursive: true }).catch(() => {});
  }
});

async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---- loop-in RPCs: MuSig2, invoices, wallet transactions (spec/static-loop-in.md §1.3, §3.6, §3.8, §4.4)

/** A static address of lnd's next 42060 key and a server key held by the test. */
async function staticAddressWithLnd(lnd: LndClient) {
  const client = await lnd.deriveNextKey(42060);
  const serverPriv = secp256k1.utils.randomSecretKey();
  const serverPub = secp256k1.getPublicKey(serverPriv, true);
  const addr = staticAddress({
    clientPubkey: client.rawKeyBytes,
    serverPubkey: serverPub,
    csvExpiry: 14400,
    network: "regtest",
  });
  return { client, serverPriv, serverPub, addr };
}

/** A version-2 transaction spending `prevouts` (display-hex txids) to one P2TR output. */
function spendTx(prevouts: { txid: string; vout: number; amountSat: bigint; pkScript: Uint8Array }[]) {
  const tx = new Transaction({ version: 2, allowUnknownOutputs: true });
  for (const p of prevouts) {
    tx.addInput({
      txid: p.txid,
      index: p.vout,
      witnessUtxo: { amount: p.amountSat, script: p.pkScript },
      sequence: 0,
    });
  }
  tx.addOutput({
    script: p2tr(schnorr.getPublicKey(secp256k1.utils.randomSecretKey())).script,
    amount: 9_000n,
  });
  return tx;
}

Deno.test("muSig2CreateSession/RegisterNonces/Sign: lnd's partial signature plus the server's aggregates to a BIP-340 signature for the static address output key", async () => {
  await withLnd(async (lnd, fake) => {
    const { client, serverPriv, serverPub, addr } = await staticAddressWithLnd(lnd);
    const session = await lnd.muSig2CreateSession({
      keyLocator: client.keyLocator,
      // Reverse-sorted, so that lnd has to sort them (BIP-327 KeySort) to find the address's key.
      allSignerPubkeys: sortKeys([client.rawKeyBytes, serverPub]).reverse(),
      taprootScriptRoot: addr.tapLeafHash,
    });
    const req = lastRequest(fake, "Signer.MuSig2CreateSession");
    assert.equal(req.version, "MUSIG2_VERSION_V100RC2");
    assert.deepEqual(req.key_loc, { key_family: 42060, key_index: client.keyLocator.index });
    assert.deepEqual(
      Uint8Array.from((req.taproot_tweak as { script_root: Uint8Array }).script_root),
      addr.tapLeafHash,
    );
    assert.equal((req.taproot_tweak as { key_spend_only: boolean }).key_spend_only, false);
    // lnd's keys are the address's keys (script.ts): output key = combined key, internal key = pre-tweak.
    assert.deepEqual(session.combinedKey, addr.outputKey.slice(1));
    assert.deepEqual(session.taprootInternalKey, addr.internalKeyXOnly);
    assert.equal(session.sessionId.length, 32);
    assert.equal(session.localPublicNonces.length, 66);
    assert.equal(session.haveAllNonces, false);

    // The server's side, computed here with @scure musig2 from the rule (BIP-327 + BIP-341 x-only tweak).
    const serverNonce = nonceGen(serverPub, serverPriv);
    assert.equal(await lnd.muSig2RegisterNonces(session.sessionId, [serverNonce.public]), true);

    const prev = { txid: "11".repeat(32), vout: 1, amountSat: 10_000n, pkScript: addr.pkScript };
    const tx = spendTx([prev]);
    const digest = tx.preimageWitnessV1(0, [addr.pkScript], 0, [prev.amountSat]);
    const lndPartial = await lnd.muSig2Sign(session.sessionId, digest);
    assert.equal(lndPartial.length, 32);

    const keys = sortKeys([client.rawKeyBytes, serverPub]);
    const ctx = new Session(nonceAggregate([session.localPublicNonces, serverNonce.public]), keys, digest, [
      addr.tapTweak,
    ], [true]);
    const lndIndex = keys.findIndex((k) => bytesToHex(k) === bytesToHex(client.rawKeyBytes));
    const nonces = lndIndex === 0
      ? [session.localPublicNonces, serverNonce.public]
      : [serverNonce.public, session.localPublicNonces];
    assert.ok(ctx.partialSigVerify(lndPartial, nonces, lndIndex), "lnd's partial signature verifies");
    const serverPartial = ctx.sign(serverNonce.secret, serverPriv);
    const sig = ctx.partialSigAgg([lndPartial, serverPartial]);
    assert.ok(schnorr.verify(sig, digest, addr.outputKey.slice(1)), "aggregate verifies for x(Q)");
    // Against another digest it does not (the check can fail).
    assert.ok(!schnorr.verify(sig, sha256(digest), addr.outputKey.slice(1)));
    // The spend is complete: the witness is the one signature (key path, SIGHASH_DEFAULT).
    tx.updateInput(0, { finalScriptWitness: [sig] });
    assert.equal(tx.isFinal, true);

    assert.equal(fake.muSig2Sessions(), 1, "cleanup=false keeps the session");
    await lnd.muSig2Cleanup(session.sessionId);
    assert.equal(fake.muSig2Sessions(), 0);
    await lnd.muSig2Cleanup(session.sessionId); // unknown session: success
    assert.equal(fake.calls["Signer.MuSig2Cleanup"], 2);
  });
});

Deno.test("muSig2: nonces given at creation, sign with cleanup, a second sign and an unknown session are LndRpcErrors", async () => {
  await withLnd(async (lnd, fake) => {
    const { client, serverPriv, serverPub, addr } = await staticAddressWithLnd(lnd);
    const serverNonce = nonceGen(serverPub, serverPriv);
    const s = await lnd.muSig2CreateSession({
      keyLocator: client.keyLocator,
      allSignerPubkeys: [serverPub, client.rawKeyBytes],
      taprootScriptRoot: addr.tapLeafHash,
      otherSignerPublicNonces: [serverNonce.public],
    });
    assert.equal(s.haveAllNonces, true);
    await assert.rejects(lnd.muSig2RegisterNonces(s.sessionId, [serverNonce.public]), (e: unknown) => {
      assert.ok(e instanceof LndRpcError);
      assert.match(e.details, /already have all nonces/);
      return true;
    });
    const digest = sha256(new TextEncoder().encode("digest"));
    await lnd.muSig2Sign(s.sessionId, digest, true);
    assert.equal(fake.muSig2Sessions(), 0, "cleanup=true forgets the session");
    await assert.rejects(lnd.muSig2Sign(s.sessionId, digest), (e: unknown) => {
      assert.ok(e instanceof LndRpcError);
      assert.equal(e.code, "lnd_rpc");
      assert.match(e.details, /not found/);
      return true;
    });
    await lnd.muSig2Cleanup(s.sessionId);

    // Missing nonce: lnd refuses to sign.
    const t = await lnd.muSig2CreateSession({
      keyLocator: client.keyLocator,
      allSignerPubkeys: [client.rawKeyBytes, serverPub],
      taprootScriptRoot: addr.tapLeafHash,
    });
    await assert.rejects(lnd.muSig2Sign(t.sessionId, digest), /only have 1 of 2 required nonces/);
    // A key list without lnd's key.
    await assert.rejects(
      lnd.muSig2CreateSession({
        keyLocator: client.keyLocator,
        allSignerPubkeys: [serverPub, secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true)],
        taprootScriptRoot: addr.tapLeafHash,
      }),
      LndRpcError,
    );
    // Malformed arguments never reach lnd.
    const before = fake.calls["Signer.MuSig2CreateSession"];
    await assert.rejects(
      lnd.muSig2CreateSession({
        keyLocator: client.keyLocator,
        allSignerPubkeys: [serverPub],
        taprootScriptRoot: addr.tapLeafHash,
      }),
      RangeError,
    );
    await assert.rejects(
      lnd.muSig2CreateSession({
        keyLocator: client.keyLocator,
        allSignerPubkeys: [serverPub, client.rawKeyBytes],
        taprootScriptRoot: new Uint8Array(31),
      }),
      RangeError,
    );
    assert.equal(fake.calls["Signer.MuSig2CreateSession"], before);
    await assert.rejects(lnd.muSig2RegisterNonces(t.sessionId, [new Uint8Array(65)]), RangeError);
    await assert.rejects(lnd.muSig2Sign(t.sessionId, new Uint8Array(31)), RangeError);
  });
});

Deno.test("muSig2Cleanup() passes on other lnd errors; failCall makes any RPC fail", async () => {
  await withLnd(async (lnd, fake) => {
    fake.failCall("Signer.MuSig2Cleanup", { details: "signer offline" });
    await assert.rejects(lnd.muSig2Cleanup(new Uint8Array(32)), /signer offline/);
    await lnd.muSig2Cleanup(new Uint8Array(32)); // next call: the fake's "not found" → success
  });
});

Deno.test("addInvoice() sends lnd's Invoice fields; the payment request is a signed BOLT 11 with the amount, hash and route hint", async () => {
  await withLnd(async (lnd, fake) => {
    const preimage = crypto.getRandomValues(new Uint8Array(32));
    const hop = {
      nodeId: bytesToHex(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true)),
      chanId: (700_123n << 40n) | (5n << 16n) | 1n,
      feeBaseMsat: 1000,
      feeProportionalMillionths: 1,
      cltvExpiryDelta: 144,
    };
    const res = await lnd.addInvoice({
      valueMsat: 245_000_000n,
      memo: "static address loop-in",
      preimage,
      expirySec: 31_536_000,
      private: true,
      routeHints: [{ hopHints: [hop] }],
    });
    assert.deepEqual(res.paymentHash, sha256(preimage));
    assert.equal(res.addIndex, 1n);
    const req = lastRequest(fake, "Lightning.AddInvoice");
    assert.equal(req.memo, "static address loop-in");
    assert.deepEqual(Uint8Array.from(req.r_preimage as Uint8Array), preimage);
    assert.equal(req.value_msat, "245000000");
    assert.equal(req.value, "0");
    assert.equal(req.expiry, "31536000");
    assert.equal(req.private, true);
    assert.deepEqual(req.route_hints, [{
      hop_hints: [{
        node_id: hop.nodeId,
        chan_id: hop.chanId.toString(),
        fee_base_msat: 1000,
        fee_proportional_millionths: 1,
        cltv_expiry_delta: 144,
      }],
    }]);

    const inv = decodeInvoice(res.paymentRequest, "regtest");
    assert.equal(inv.amountMsat, 245_000_000n);
    assert.deepEqual(inv.paymentHash, sha256(preimage));
    assert.equal(inv.expirySec, 31_536_000);
    const decoded = decodeBolt11(res.paymentRequest);
    const routeHint = decoded.sections.find((s) => s.name === "route_hint") as
      | {
        value: {
          pubkey: string;
          short_channel_id: string;
          fee_base_msat: number;
          fee_proportional_millionths: number;
          cltv_expiry_delta: number;
        }[];
      }
      | undefined;
    assert.ok(routeHint, "payment request has an r field");
    assert.equal(routeHint.value[0].pubkey, hop.nodeId);
    assert.equal(BigInt("0x" + routeHint.value[0].short_channel_id), hop.chanId);
    assert.equal(routeHint.value[0].cltv_expiry_delta, 144);

    await assert.rejects(
      lnd.addInvoice({ valueMsat: 1000n, memo: "", preimage, expirySec: 60, private: false }),
      /already exists/,
    );
    await assert.rejects(
      lnd.addInvoice({ valueMsat: 0n, memo: "", preimage, expirySec: 60, private: false }),
      RangeError,
    );
    await assert.rejects(
      lnd.addInvoice({
        valueMsat: 1000n,
        memo: "",
        preimage: new Uint8Array(31),
        expirySec: 60,
        private: false,
      }),
      RangeError,
    );
  });
});

Deno.test("lookupInvoice(): null when lnd has none (NOT_FOUND), OPEN after add, SETTLED with amount and date after payment", async () => {
  await withLnd(async (lnd, fake) => {
    const preimage = crypto.getRandomValues(new Uint8Array(32));
    const hash = sha256(preimage);
    assert.equal(await lnd.lookupInvoice(hash), null); // "there are no existing invoices"
    const added = await lnd.addInvoice({
      valueMsat: 50_000n,
      memo: "m",
      preimage,
      expirySec: 3600,
      private: true,
    });
    assert.equal(await lnd.lookupInvoice(sha256(hash)), null); // "unable to locate invoice"
    const open = await lnd.lookupInvoice(hash);
    assert.deepEqual(open, {
      state: "OPEN",
      valueMsat: 50_000n,
      amtPaidMsat: 0n,
      settleDate: 0,
      paymentRequest: added.paymentRequest,
    });
    assert.deepEqual(
      Uint8Array.from(lastRequest(fake, "Lightning.LookupInvoice").r_hash as Uint8Array),
      hash,
    );
    const before = Math.floor(Date.now() / 1000);
    fake.settleInvoice(hash);
    const settled = await lnd.lookupInvoice(hash);
    assert.equal(settled?.state, "SETTLED");
    assert.equal(settled?.amtPaidMsat, 50_000n);
    assert.ok(settled!.settleDate >= before);

    fake.failCall("Lightning.LookupInvoice", { code: GrpcStatus.INTERNAL, details: "database is locked" });
    await assert.rejects(
      lnd.lookupInvoice(hash),
      (e: unknown) => e instanceof LndRpcError && e.code === "lnd_rpc",
    );
    fake.failCall("Lightning.LookupInvoice", { code: GrpcStatus.UNAVAILABLE, details: "connection refused" });
    await assert.rejects(
      lnd.lookupInvoice(hash),
      (e: unknown) => e instanceof LoopkitError && e.code === "lnd_unreachable",
    );
  });
});

Deno.test("cancelInvoice(): OPEN → CANCELED, again is success, settled and unknown invoices are typed errors", async () => {
  await withLnd(async (lnd, fake) => {
    const p1 = crypto.getRandomValues(new Uint8Array(32));
    const p2 = crypto.getRandomValues(new Uint8Array(32));
    await lnd.addInvoice({ valueMsat: 1_000n, memo: "", preimage: p1, expirySec: 60, private: true });
    await lnd.addInvoice({ valueMsat: 1_000n, memo: "", preimage: p2, expirySec: 60, private: true });
    await lnd.cancelInvoice(sha256(p1));
    assert.deepEqual(
      Uint8Array.from(lastRequest(fake, "Invoices.CancelInvoice").payment_hash as Uint8Array),
      sha256(p1),
    );
    assert.equal((await lnd.lookupInvoice(sha256(p1)))?.state, "CANCELED");
    await lnd.cancelInvoice(sha256(p1));
    assert.throws(() => fake.settleInvoice(sha256(p1)), /CANCELED/);

    fake.settleInvoice(sha256(p2));
    await assert.rejects(lnd.cancelInvoice(sha256(p2)), (e: unknown) => {
      assert.ok(e instanceof LndRpcError);
      assert.equal(e.code, LndInvoiceErrorCode.AlreadySettled);
      assert.equal(e.exitCode, ExitCode.Failure);
      return true;
    });
    assert.equal((await lnd.lookupInvoice(sha256(p2)))?.state, "SETTLED");
    await assert.rejects(
      lnd.cancelInvoice(sha256(sha256(p2))),
      (e: unknown) => e instanceof LndRpcError && e.code === LndInvoiceErrorCode.NotFound,
    );
    fake.failCall("Invoices.CancelInvoice", { details: "invoice registry stopped" });
    await assert.rejects(
      lnd.cancelInvoice(sha256(p1)),
      (e: unknown) => e instanceof LndRpcError && e.code === "lnd_rpc",
    );
  });
});

Deno.test("getTransactions() sends 0 / -1, returns display txids, raw bytes, confirmations and the previous outpoints in input order", async () => {
  await withLnd(async (lnd, fake) => {
    fake.setBlockHeight(120);
    const funding = spendTx([{
      txid: "aa".repeat(32),
      vout: 3,
      amountSat: 20_000n,
      pkScript: new Uint8Array([0x51]),
    }]);
    funding.updateInput(0, { finalScriptWitness: [new Uint8Array(64)] });
    const fundingRaw = funding.extract();
    const spend = spendTx([
      { txid: funding.id, vout: 0, amountSat: 9_000n, pkScript: new Uint8Array([0x51]) },
      { txid: "bb".repeat(32), vout: 7, amountSat: 9_000n, pkScript: new Uint8Array([0x51]) },
    ]);
    for (let i = 0; i < 2; i++) spend.updateInput(i, { finalScriptWitness: [new Uint8Array(64)] });
    fake.addTransaction({ rawTx: fundingRaw, blockHeight: 110 });
    fake.addTransaction({ rawTx: spend.extract() });

    const txs = await lnd.getTransactions();
    const req = lastRequest(fake, "Lightning.GetTransactions");
    assert.equal(req.start_height, 0);
    assert.equal(req.end_height, -1);
    assert.equal(txs.length, 2);
    // Expected txids: double SHA-256 of the non-witness serialization, reversed (display order).
    const displayTxid = (raw: Uint8Array) => {
      const stripped = RawTx.encode({ ...RawTx.decode(raw), segwitFlag: false, witnesses: undefined });
      return bytesToHex(sha256(sha256(stripped)).reverse());
    };
    assert.equal(txs[0].txid, displayTxid(fundingRaw));
    assert.deepEqual(txs[0].rawTx, fundingRaw);
    assert.equal(txs[0].numConfirmations, 11);
    assert.equal(txs[0].blockHeight, 110);
    assert.deepEqual(txs[0].previousOutpoints, [`${"aa".repeat(32)}:3`]);
    assert.equal(txs[1].numConfirmations, 0);
    assert.equal(txs[1].blockHeight, 0);
    assert.deepEqual(txs[1].previousOutpoints, [`${txs[0].txid}:0`, `${"bb".repeat(32)}:7`]);

    assert.equal((await lnd.getTransactions(0, 115)).length, 1, "end height excludes the unconfirmed one");
    await assert.rejects(lnd.getTransactions(-1), RangeError);
  });
});

Deno.test("getTransactions() refuses the whole answer when one entry has no raw transaction or a tx_hash that is not its hash", async () => {
  const good = spendTx([{
    txid: "aa".repeat(32),
    vout: 0,
    amountSat: 20_000n,
    pkScript: new Uint8Array([0x51]),
  }]);
  good.updateInput(0, { finalScriptWitness: [new Uint8Array(64)] });
  for (
    const [name, bad] of [
      ["no raw tx", { rawTx: new Uint8Array(), txHash: "cd".repeat(32) }],
      ["tx_hash of another tx", { rawTx: good.extract(), txHash: "cd".repeat(32) }],
      ["malformed tx_hash", { rawTx: good.extract(), txHash: "xyz" }],
    ] as const
  ) {
    await withLnd(async (lnd, fake) => {
      fake.addTransaction({ rawTx: good.extract(), blockHeight: 90 });
      fake.addTransaction(bad);
      await assert.rejects(lnd.getTransactions(), (e: unknown) => {
        assert.ok(e instanceof LndRpcError, name);
        assert.equal(e.code, "lnd_bad_response", name);
        return true;
      });
    });
  }
});

Deno.test("muSig2: after an lnd restart (sessions forgotten) RegisterNonces and Sign fail with lnd's not-found text, Cleanup succeeds", async () => {
  await withLnd(async (lnd, fake) => {
    const { client, serverPriv, serverPub, addr } = await staticAddressWithLnd(lnd);
    const s = await lnd.muSig2CreateSession({
      keyLocator: client.keyLocator,
      allSignerPubkeys: [client.rawKeyBytes, serverPub],
      taprootScriptRoot: addr.tapLeafHash,
    });
    fake.dropMuSig2Sessions();
    const notFound = (e: unknown) =>
      e instanceof LndRpcError && /session with ID [0-9a-f]{64} not found/.test(e.details);
    await assert.rejects(
      lnd.muSig2RegisterNonces(s.sessionId, [nonceGen(serverPub, serverPriv).public]),
      notFound,
    );
    await assert.rejects(lnd.muSig2Sign(s.sessionId, new Uint8Array(32)), notFound);
    await lnd.muSig2Cleanup(s.sessionId);
  });
});
