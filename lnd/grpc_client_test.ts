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
import { GrpcStatus, LndRpcError } from "./errors.ts";
import { GrpcLndClient } from "./grpc_client.ts";
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
