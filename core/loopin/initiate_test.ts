/**
 * initiateLoopIn / quoteLoopIn against in-process stand-ins (lnd, swap server, store) on a real libSQL file:
 * the order of effects (swap row before the invoice, marker before the push, cleanup always), every unwind
 * (server error, refused answer, deposit gone, lookup error, MuSig2 failure, unacknowledged cancel, interrupt)
 * and the armed push failure.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import * as musig2 from "@scure/btc-signer/musig2.js";
import { RawTx } from "@scure/btc-signer";
import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { withTempDir } from "../../tests/fs.ts";
import { type Db, openDb } from "../db/db.ts";
import { insertStaticAddress } from "../db/static_addresses.ts";
import { insertDeposit } from "../deposits/store.ts";
import { staticAddress } from "../staticaddr/script.ts";
import { LndError } from "../../lnd/lnd_error.ts";
import type {
  InvoiceInfo,
  KeyDescriptor,
  LndInfo,
  MuSig2Session,
  WalletTransaction,
} from "../../lnd/types.ts";
import { ExitCode, LoopkitError } from "../errors.ts";
import type { ClientHtlcSigningInfo, ServerStaticAddressLoopInResponse } from "../swapserver/client.ts";
import {
  initiateLoopIn,
  type InitiateStep,
  LoopInFailed,
  type LoopInLnd,
  type LoopInServer,
  type LoopInStore,
  type NewLoopInSwap,
  quoteLoopIn,
} from "./initiate.ts";
import { HTLC_VARIANTS, type LoopInState } from "./types.ts";
import { txidOf } from "./_testing.ts";
import type { LoopInSwapRecord } from "./swap_record.ts";

const TIP = 1000;
const CSV = 14_400;
const FEE = 1_490n;

/** A real transaction paying `valueSat` to `pkScript` (output 0), so GetTransactions can list it. */
function fundingTx(n: number, pkScript: Uint8Array, valueSat: bigint): { raw: Uint8Array; txid: string } {
  const raw = RawTx.encode({
    version: 2,
    segwitFlag: false,
    inputs: [{ txid: new Uint8Array(32).fill(n), index: 0, finalScriptSig: new Uint8Array(), sequence: 0 }],
    outputs: [{ amount: valueSat, script: pkScript }],
    lockTime: 0,
  });
  const txid = bytesToHex(sha256(sha256(raw)).reverse());
  return { raw, txid };
}

type Event = string;

class StandInLnd implements LoopInLnd {
  events: Event[] = [];
  txs: WalletTransaction[] = [];
  getTransactionsError?: Error;
  cancelError?: Error;
  haveAllNonces = true;
  sessions = new Map<string, boolean>(); // id → cleaned up
  invoices = new Map<string, { valueMsat: bigint; memo: string; expirySec: number; private: boolean }>();
  nextIndex = 5;
  clientPubkey: Uint8Array;
  constructor(clientPubkey: Uint8Array) {
    this.clientPubkey = clientPubkey;
  }
  getInfo(): Promise<LndInfo> {
    return Promise.resolve({
      identityPubkey: bytesToHex(secp256k1.getPublicKey(new Uint8Array(32).fill(9), true)),
      blockHeight: TIP,
      blockHash: "",
      chains: [{ chain: "bitcoin", network: "regtest" }],
      syncedToChain: true,
      version: "test",
    });
  }
  deriveNextKey(family: number): Promise<KeyDescriptor> {
    this.events.push(`deriveNextKey:${family}`);
    const index = this.nextIndex++;
    const priv = new Uint8Array(32).fill(index + 1);
    return Promise.resolve({
      rawKeyBytes: secp256k1.getPublicKey(priv, true),
      keyLocator: { family, index },
    });
  }
  addInvoice(req: Parameters<LoopInLnd["addInvoice"]>[0]) {
    this.events.push("addInvoice");
    const hash = sha256(req.preimage);
    this.invoices.set(bytesToHex(hash), req);
    return Promise.resolve({ paymentRequest: `lnbcrt-${bytesToHex(hash)}`, paymentHash: hash, addIndex: 1n });
  }
  cancelInvoice(hash: Uint8Array): Promise<void> {
    this.events.push("cancelInvoice");
    if (this.cancelError) return Promise.reject(this.cancelError);
    if (!this.invoices.has(bytesToHex(hash))) {
      return Promise.reject(new LndError("Invoices.CancelInvoice", "not_found", "unable to locate invoice"));
    }
    return Promise.resolve();
  }
  /** lnd's invoice state as LookupInvoice reads it (default: OPEN once added). */
  invoiceStates = new Map<string, "OPEN" | "CANCELED" | "SETTLED">();
  lookupInvoice(hash: Uint8Array): Promise<InvoiceInfo | null> {
    this.events.push("lookupInvoice");
    const h = bytesToHex(hash);
    if (!this.invoices.has(h)) return Promise.resolve(null);
    const state = this.invoiceStates.get(h) ?? "OPEN";
    return Promise.resolve({
      state,
      valueMsat: 1n,
      amtPaidMsat: 0n,
      settleDate: 0,
      paymentRequest: `lnbcrt-${h}`,
    });
  }
  getTransactions(): Promise<WalletTransaction[]> {
    this.events.push("getTransactions");
    if (this.getTransactionsError) return Promise.reject(this.getTransactionsError);
    return Promise.resolve(this.txs);
  }
  muSig2CreateSession(req: Parameters<LoopInLnd["muSig2CreateSession"]>[0]): Promise<MuSig2Session> {
    this.events.push("muSig2CreateSession");
    assertEquals(req.allSignerPubkeys[0], this.clientPubkey, "the static address client key signs first");
    const id = crypto.getRandomValues(new Uint8Array(32));
    this.sessions.set(bytesToHex(id), false);
    const nonces = musig2.nonceGen(this.clientPubkey);
    return Promise.resolve({
      sessionId: id,
      combinedKey: new Uint8Array(32),
      taprootInternalKey: new Uint8Array(32),
      localPublicNonces: nonces.public,
      haveAllNonces: false,
    });
  }
  muSig2RegisterNonces(_id: Uint8Array, nonces: Uint8Array[]): Promise<boolean> {
    assertEquals(nonces.length, 1);
    assertEquals(nonces[0].length, 66);
    return Promise.resolve(this.haveAllNonces);
  }
  muSig2Sign(_id: Uint8Array, digest: Uint8Array): Promise<Uint8Array> {
    this.events.push("muSig2Sign");
    assertEquals(digest.length, 32);
    return Promise.resolve(sha256(digest));
  }
  muSig2Cleanup(id: Uint8Array): Promise<void> {
    this.sessions.set(bytesToHex(id), true);
    return Promise.resolve();
  }
  nextSweepPkScript(): Promise<Uint8Array> {
    this.events.push("nextAddr");
    return Promise.resolve(Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(0xab)));
  }
}

class StandInServer implements LoopInServer {
  events: Event[];
  loopInError?: LoopkitError;
  pushError?: LoopkitError;
  /** Mutates the answer before it is returned. */
  tamper?: (r: ServerStaticAddressLoopInResponse) => void;
  pushes: { swapHash: Uint8Array; standard?: ClientHtlcSigningInfo }[] = [];
  requests: Parameters<LoopInServer["serverStaticAddressLoopIn"]>[0][] = [];
  constructor(events: Event[]) {
    this.events = events;
  }
  loopInTerms() {
    return Promise.resolve({ minSwapAmountSat: 10_000n, maxSwapAmountSat: 10_000_000n });
  }
  probe() {
    return Promise.reject(new Error("probe not supported")); // logged and ignored
  }
  loopInQuote(req: { amtSat: bigint; numDeposits: number }) {
    this.events.push(`quote:${req.amtSat}:${req.numDeposits}`);
    return Promise.resolve({ swapFeeSat: FEE, cltvDelta: 1000 });
  }
  serverStaticAddressLoopIn(req: Parameters<LoopInServer["serverStaticAddressLoopIn"]>[0]) {
    this.events.push("serverStaticAddressLoopIn");
    this.requests.push(req);
    if (this.loopInError) return Promise.reject(this.loopInError);
    const n = req.depositOutpoints.length;
    const key = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
    const info = (rate: bigint) => ({
      nonces: Array.from({ length: n }, () => musig2.nonceGen(key).public),
      feeRateSatPerKw: rate,
    });
    const r: ServerStaticAddressLoopInResponse = {
      htlcServerPubKey: key,
      htlcExpiry: TIP + 1000,
      standard: info(1_000n),
      high: info(5_000n),
      extreme: info(20_000n),
    };
    this.tamper?.(r);
    return Promise.resolve(r);
  }
  pushStaticAddressHtlcSigs(req: { swapHash: Uint8Array; standard?: ClientHtlcSigningInfo }) {
    this.events.push(req.standard ? "push" : "abandon");
    this.pushes.push(req);
    if (req.standard && this.pushError) return Promise.reject(this.pushError);
    return Promise.resolve();
  }
}

/** In-memory store: the deposit lock, states and the marker, with the events in order. */
class StandInStore implements LoopInStore {
  events: Event[];
  swaps = new Map<string, { swap: NewLoopInSwap; state: LoopInState; armed: boolean; reason?: string }>();
  locked = new Map<string, string>(); // outpoint → swap hash
  failMarkArmed = false;
  constructor(events: Event[]) {
    this.events = events;
  }
  createSwap(swap: NewLoopInSwap): Promise<void> {
    this.events.push("createSwap");
    for (const o of swap.depositOutpoints) {
      if (this.locked.has(o)) {
        return Promise.reject(new LoopkitError("deposit_not_available", `deposit ${o} is in another swap`));
      }
    }
    const h = bytesToHex(swap.swapHash);
    for (const o of swap.depositOutpoints) this.locked.set(o, h);
    this.swaps.set(h, { swap, state: "InitHtlcTx", armed: false });
    return Promise.resolve();
  }
  setInvoice(): Promise<void> {
    this.events.push("setInvoice");
    return Promise.resolve();
  }
  recordServerParams(h: Uint8Array): Promise<void> {
    this.events.push("recordServerParams");
    this.get(h).state = "SignHtlcTx";
    return Promise.resolve();
  }
  recordHtlcTxids(): Promise<void> {
    return Promise.resolve();
  }
  markArmed(h: Uint8Array): Promise<void> {
    this.events.push("markArmed");
    if (this.failMarkArmed) return Promise.reject(new LoopkitError("db_busy", "busy", ExitCode.TempFail));
    this.get(h).armed = true;
    return Promise.resolve();
  }
  transition(
    h: Uint8Array,
    from: LoopInState,
    event: "OnError" | "OnHtlcTxSigned",
    opts: { reason?: string; releaseDeposits?: boolean } = {},
  ): Promise<LoopInState> {
    const s = this.get(h);
    assertEquals(s.state, from);
    let to: LoopInState;
    if (event === "OnHtlcTxSigned") to = "MonitorInvoiceAndHtlcTx";
    else if (from === "UnlockDeposits") to = "Failed";
    else to = "UnlockDeposits";
    if (to === "Failed") {
      assert(opts.releaseDeposits, "Failed without releasing the deposits");
      for (const o of s.swap.depositOutpoints) this.locked.delete(o);
    }
    s.state = to;
    s.reason = opts.reason ?? s.reason;
    this.events.push(`state:${to}`);
    return Promise.resolve(to);
  }
  releaseOwner(): Promise<void> {
    return Promise.resolve();
  }
  depositOutpoints(h: Uint8Array): Promise<string[]> {
    return Promise.resolve(this.get(h).swap.depositOutpoints);
  }
  get(h: Uint8Array) {
    return this.swaps.get(bytesToHex(h))!;
  }
  only() {
    assertEquals(this.swaps.size, 1);
    return [...this.swaps.values()][0];
  }
}

/** A database with the static address of key 42060/0 and `values.length` deposits (the first confirmed). */
async function setup(dir: string, values: bigint[] = [300_000n, 200_000n]) {
  const clientPubkey = secp256k1.getPublicKey(new Uint8Array(32).fill(1), true);
  const serverPubkey = secp256k1.getPublicKey(new Uint8Array(32).fill(2), true);
  const address = staticAddress({ clientPubkey, serverPubkey, csvExpiry: CSV, network: "regtest" });
  const db: Db = await openDb({ url: `file:${dir}/loopkit.db`, network: "regtest" });
  const lnd = new StandInLnd(clientPubkey);
  const outpoints: string[] = [];
  await db.write(async (tx) => {
    await insertStaticAddress(tx, {
      clientPubkey,
      serverPubkey,
      expiry: CSV,
      clientKeyFamily: 42060,
      clientKeyIndex: 0,
      pkScript: address.pkScript,
      protocolVersion: 0,
      initiationHeight: 900,
    });
    for (const [i, v] of values.entries()) {
      const f = fundingTx(i + 1, address.pkScript, v);
      lnd.txs.push({
        txid: f.txid,
        rawTx: f.raw,
        numConfirmations: i === 0 ? 5 : 0,
        blockHeight: i === 0 ? TIP - 4 : 0,
        previousOutpoints: [`${txidOf(i + 100)}:0`],
      });
      outpoints.push(`${f.txid}:0`);
      await insertDeposit(tx, {
        txid: f.txid,
        vout: 0,
        amountSat: v,
        confirmationHeight: i === 0 ? TIP - 4 : 0,
        pkScript: address.pkScript,
        depositId: crypto.getRandomValues(new Uint8Array(32)),
        timeoutSweepPkScript: Uint8Array.of(0x51, 0x20, ...new Uint8Array(32)),
      }, new Date());
    }
  });
  const events = lnd.events;
  const server = new StandInServer(events);
  const store = new StandInStore(events);
  const steps: InitiateStep[] = [];
  const controller = new AbortController();
  let refreshes = 0;
  /** Records written, with how many events had happened by then; `recordError` makes the writer fail. */
  const records: { record: LoopInSwapRecord; eventsBefore: number; pushesBefore: number }[] = [];
  const writer = {
    error: undefined as Error | undefined,
    writeSwapRecord(record: LoopInSwapRecord): Promise<string> {
      if (writer.error) return Promise.reject(writer.error);
      records.push({ record, eventsBefore: events.length, pushesBefore: server.pushes.length });
      return Promise.resolve(`/data/loopin_swap_${bytesToHex(record.swapHash)}.enc`);
    },
  };
  const deps = {
    db,
    network: "regtest" as const,
    lnd,
    server,
    store,
    writeSwapRecord: (r: LoopInSwapRecord) => writer.writeSwapRecord(r),
    refreshDeposits: () => {
      refreshes++;
      return Promise.resolve();
    },
    signal: controller.signal,
    onStep: (s: InitiateStep) => {
      steps.push(s);
    },
    log: () => {},
  };
  return {
    db,
    lnd,
    server,
    store,
    deps,
    events,
    steps,
    controller,
    outpoints,
    address,
    records,
    writer,
    refreshes: () => refreshes,
    [Symbol.dispose]() {
      db.close();
    },
  };
}

Deno.test("quoteLoopIn refreshes the deposits once, quotes the deduced amount for the selected count and writes nothing", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    const q = await quoteLoopIn(t.deps, { outpoints: t.outpoints, amountSat: 400_000n });
    assertEquals(t.refreshes(), 1);
    assertEquals(q.swapAmountSat, 400_000n);
    assertEquals(q.totalDepositSat, 500_000n);
    assertEquals(q.changeSat, 100_000n);
    assertEquals(q.swapFeeSat, FEE);
    assertEquals(q.receiveSat, 400_000n - FEE);
    assertEquals(t.events, ["quote:400000:2"]);
    // The unconfirmed one and the one with 5 confirmations are both below 6.
    assertEquals(q.lowConfirmation.map((e) => [e.outpoint, e.confirmations]), [
      [t.outpoints[0], 5],
      [t.outpoints[1], null],
    ]);
    assertEquals(t.store.swaps.size, 0);
  });
});

Deno.test("initiateLoopIn: swap row before the invoice, marker before the push, every MuSig2 session cleaned up", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    const r = await initiateLoopIn(t.deps, { outpoints: t.outpoints, amountSat: 400_000n });
    assertEquals(r.state, "MonitorInvoiceAndHtlcTx");
    assert(r.armed);
    const e = t.events;
    const at = (x: string) => e.indexOf(x);
    assert(at("deriveNextKey:42060") < at("createSwap"));
    assert(at("createSwap") < at("addInvoice"), "the swap hash is stored before the invoice exists");
    assert(at("addInvoice") < at("serverStaticAddressLoopIn"));
    assert(at("recordServerParams") < at("getTransactions"));
    assert(at("getTransactions") < at("muSig2CreateSession"), "availability is checked before signing");
    assertEquals(e.filter((x) => x === "getTransactions").length, 2);
    assertEquals(e.filter((x) => x === "muSig2CreateSession").length, 3 * 2);
    assert(at("markArmed") < at("push"), "the marker is committed before the push");
    assertEquals(e.at(-1), "state:MonitorInvoiceAndHtlcTx");
    assertEquals([...t.lnd.sessions.values()], [true, true, true, true, true, true]);
    assert(!e.includes("cancelInvoice") && !e.includes("abandon"));
    // Invoice: (swap amount − quoted fee) × 1000 msat, private, a year, Loop's memo; preimage → swap hash.
    const s = t.store.only();
    const inv = t.lnd.invoices.get(bytesToHex(s.swap.swapHash))!;
    assertEquals(inv.valueMsat, (400_000n - FEE) * 1000n);
    assertEquals([inv.private, inv.expirySec, inv.memo], [true, 31_536_000, "static address loop-in"]);
    assertEquals(sha256(s.swap.preimage), s.swap.swapHash);
    // Server request: the selection order, the requested amount, the default payment timeout.
    const [req] = t.server.requests;
    assertEquals(req.depositOutpoints, t.outpoints);
    assertEquals(req.amountSat, 400_000n);
    assertEquals(req.paymentTimeoutSeconds, 60);
    const [push] = t.server.pushes;
    assertEquals(push.standard!.sigs.length, 2);
    assertEquals(push.standard!.nonces.map((n) => n.length), [66, 66]);
    assertEquals(t.steps, [
      "quoted",
      "created",
      "invoice",
      "server",
      "params",
      "checked",
      "signed",
      "armed",
      "pushed",
      "monitoring",
    ]);
  });
});

Deno.test("initiateLoopIn refuses a quote above --max-swap-fee-sat before anything is derived, locked or invoiced", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    const err = await assertRejects(
      () => initiateLoopIn(t.deps, { all: true, maxSwapFeeSat: FEE - 1n }),
      LoopkitError,
    );
    assertEquals(err.code, "swap_fee_too_high");
    assertEquals(t.events.filter((x) => !x.startsWith("quote:")), []);
    assertEquals(t.store.swaps.size, 0);
  });
});

async function failedWith(p: Promise<unknown>): Promise<LoopInFailed> {
  const err = await assertRejects(() => p, LoopInFailed);
  return err as LoopInFailed;
}

Deno.test("a ServerStaticAddressLoopIn error: abandon push (the server may have registered it), cancel, release", async () => {
  for (
    const e of [
      new LoopkitError("swap_server_rpc", "Swap server failed: INTERNAL: no liquidity"),
      new LoopkitError("swap_server_unreachable", "connection reset", ExitCode.TempFail),
    ]
  ) {
    await withTempDir(async (dir) => {
      using t = await setup(dir);
      t.server.loopInError = e;
      const err = await failedWith(initiateLoopIn(t.deps, { all: true }));
      assertEquals([err.state, err.exitCode], ["Failed", e.exitCode], e.code);
      assert(err.message.includes(e.message), err.message);
      assert(
        t.events.indexOf("abandon") >= 0 && t.events.indexOf("abandon") < t.events.indexOf("cancelInvoice"),
      );
      assertEquals(t.store.locked.size, 0);
      assertEquals(t.store.only().state, "Failed");
    });
  }
});

Deno.test("a loop-in request that reached no gRPC server (TLS, not gRPC): no abandon push, cancel, release", async () => {
  for (const code of ["swap_server_tls", "swap_server_protocol"]) {
    await withTempDir(async (dir) => {
      using t = await setup(dir);
      t.server.loopInError = new LoopkitError(code, "handshake failed", ExitCode.Usage);
      const err = await failedWith(initiateLoopIn(t.deps, { all: true }));
      assertEquals(err.state, "Failed", code);
      assert(t.events.includes("cancelInvoice") && !t.events.includes("abandon"), code);
      assertEquals(t.store.locked.size, 0);
    });
  }
});

Deno.test("a server timeout is ambiguous: abandon push too, then cancel and release; exit 75", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    t.server.loopInError = new LoopkitError("swap_server_timeout", "deadline exceeded", ExitCode.TempFail);
    const err = await failedWith(initiateLoopIn(t.deps, { all: true }));
    assertEquals([err.state, err.exitCode], ["Failed", 75]);
    assert(t.events.includes("abandon") && t.events.includes("cancelInvoice"));
  });
});

Deno.test("a refused server answer (too few nonces) abandons, cancels, releases, and keeps the real reason", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    t.server.tamper = (r) => r.high.nonces.pop();
    const err = await failedWith(initiateLoopIn(t.deps, { all: true }));
    assertEquals(err.state, "Failed");
    assert(/nonce/i.test(err.message), err.message);
    assert(t.events.indexOf("abandon") < t.events.indexOf("cancelInvoice"));
    assert(!t.events.includes("muSig2CreateSession"));
    assertEquals(t.store.only().reason?.match(/nonce/i) !== null, true);
    assertEquals(t.store.locked.size, 0);
  });
});

Deno.test("a server CLTV too close to a deposit's expiry is refused (review §1.4)", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    // Deposit 0 confirmed at TIP − 4 expires at TIP − 4 + CSV; a CLTV 49 blocks before that is refused.
    t.server.tamper = (r) => {
      r.htlcExpiry = TIP - 4 + CSV - 49;
    };
    const err = await failedWith(initiateLoopIn(t.deps, { all: true }));
    assertEquals(err.state, "Failed");
    assert(t.events.includes("abandon"));
  });
});

Deno.test("a deposit gone before signing: no MuSig2 session, abandon, cancel, release", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    // The wallet reports a transaction spending deposit 1.
    t.lnd.txs.push({ ...t.lnd.txs[0], txid: txidOf(77), previousOutpoints: [t.outpoints[1]] });
    const err = await failedWith(initiateLoopIn(t.deps, { all: true }));
    assertEquals([err.code, err.state, err.exitCode], ["deposit_unavailable", "Failed", 1]);
    assert(err.message.includes(t.outpoints[1]));
    assert(!t.events.includes("muSig2CreateSession"));
    assert(t.events.includes("cancelInvoice"));
    assertEquals(t.store.locked.size, 0);
  });
});

Deno.test("a GetTransactions error: nothing signed, nothing armed, unwound, exit 75", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    t.lnd.getTransactionsError = new LndError(
      "Lightning.GetTransactions",
      "unavailable",
      "lnd is restarting",
    );
    const err = await failedWith(initiateLoopIn(t.deps, { all: true }));
    assertEquals([err.state, err.exitCode], ["Failed", 75]);
    assert(!t.events.includes("muSig2CreateSession") && !t.events.includes("markArmed"));
  });
});

Deno.test("lnd missing nonces after registration: sessions cleaned up, unwound, never armed", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    t.lnd.haveAllNonces = false;
    const err = await failedWith(initiateLoopIn(t.deps, { all: true }));
    assertEquals([err.code, err.state], ["musig2_nonces_missing", "Failed"]);
    assert(!t.events.includes("markArmed") && !t.events.includes("push"));
    assert([...t.lnd.sessions.values()].every((c) => c), "a session was left open");
  });
});

Deno.test("a failed marker write: no push, unwound", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    t.store.failMarkArmed = true;
    const err = await failedWith(initiateLoopIn(t.deps, { all: true }));
    assertEquals([err.state, err.exitCode], ["Failed", 75]);
    assert(!t.events.includes("push"));
  });
});

Deno.test("a failed push leaves the swap armed in SignHtlcTx: no cancel, no release, the error reported", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    t.server.pushError = new LoopkitError("swap_server_timeout", "deadline exceeded", ExitCode.TempFail);
    const r = await initiateLoopIn(t.deps, { all: true });
    assertEquals([r.state, r.armed, r.pushError?.code], ["SignHtlcTx", true, "swap_server_timeout"]);
    assert(!t.events.includes("cancelInvoice") && !t.events.includes("abandon"));
    assertEquals(t.store.locked.size, 2);
    assert(t.store.only().armed);
    assert([...t.lnd.sessions.values()].every((c) => c));
  });
});

Deno.test("an invoice cancel lnd does not acknowledge keeps the deposits locked in UnlockDeposits", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    t.server.loopInError = new LoopkitError("swap_server_rpc", "refused");
    t.lnd.cancelError = new LndError("Invoices.CancelInvoice", "unavailable", "connection reset");
    const err = await failedWith(initiateLoopIn(t.deps, { all: true }));
    assertEquals(err.state, "UnlockDeposits");
    assert(err.message.includes("did not acknowledge"), err.message);
    assertEquals(t.store.locked.size, 2);
  });
});

for (const at of ["created", "invoice", "server", "params", "checked", "signed"] as const) {
  Deno.test(`an interrupt at step "${at}" unwinds before any signature leaves, exit 130`, async () => {
    await withTempDir(async (dir) => {
      using t = await setup(dir);
      t.deps.onStep = (s) => {
        if (s === at) t.controller.abort();
      };
      const err = await failedWith(initiateLoopIn(t.deps, { all: true }));
      assertEquals([err.state, err.exitCode], ["Failed", 130]);
      assert(!t.events.includes("push") && !t.events.includes("markArmed"));
      assertEquals(t.store.locked.size, 0);
      assertEquals(t.events.includes("abandon"), ["server", "params", "checked", "signed"].includes(at));
    });
  });
}

Deno.test("a CancelInvoice error loopkit does not map is read back: CANCELED in lnd releases the deposits, OPEN keeps them", async () => {
  for (
    const [lndState, swapState, locked] of [["CANCELED", "Failed", 0], ["OPEN", "UnlockDeposits", 2]] as const
  ) {
    await withTempDir(async (dir) => {
      using t = await setup(dir);
      t.server.loopInError = new LoopkitError("swap_server_rpc", "refused");
      t.lnd.cancelError = new LndError("Invoices.CancelInvoice", "unknown", "invoice already canceled");
      const orig = t.lnd.addInvoice.bind(t.lnd);
      t.lnd.addInvoice = async (r) => {
        const inv = await orig(r);
        t.lnd.invoiceStates.set(bytesToHex(inv.paymentHash), lndState);
        return inv;
      };
      const err = await failedWith(initiateLoopIn(t.deps, { all: true }));
      assertEquals([err.state, t.store.locked.size], [swapState, locked], lndState);
      assert(t.events.indexOf("lookupInvoice") > t.events.indexOf("cancelInvoice"), lndState);
    });
  }
});

Deno.test("never two swaps for one deposit: a second initiation for a locked deposit fails before any invoice", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    t.server.pushError = new LoopkitError("swap_server_timeout", "deadline exceeded", ExitCode.TempFail);
    await initiateLoopIn(t.deps, { outpoints: [t.outpoints[0]] });
    const invoices = t.lnd.invoices.size;
    const err = await assertRejects(
      () => initiateLoopIn(t.deps, { outpoints: [t.outpoints[0]] }),
      LoopkitError,
    );
    assertEquals(err.code, "deposit_not_available");
    assertEquals(t.lnd.invoices.size, invoices);
    assertEquals(t.store.swaps.size, 1);
  });
});

Deno.test("initiateLoopIn writes the swap recovery record before the marker, with the stored HTLC parameters", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    const r = await initiateLoopIn(t.deps, { outpoints: t.outpoints, amountSat: 400_000n });
    assert(r.armed);
    assertEquals(t.records.length, 1);
    const [{ record, eventsBefore, pushesBefore }] = t.records;
    assert(eventsBefore <= t.events.indexOf("markArmed"), "the record is written before the marker");
    assert(eventsBefore > t.events.lastIndexOf("muSig2Sign"), "and after signing (all parameters final)");
    assertEquals(pushesBefore, 0);
    const s = t.store.only();
    assertEquals(record.swapHash, s.swap.swapHash);
    assertEquals(record.preimage, s.swap.preimage);
    assertEquals([record.htlcKey.family, record.htlcKey.index], [42060, s.swap.htlcKey.keyLocator.index]);
    assertEquals(record.htlcKey.pubkey, s.swap.htlcKey.rawKeyBytes);
    assertEquals(record.htlcExpiry, r.htlcExpiry);
    assertEquals(record.htlcTxids, r.htlcTxids);
    assertEquals(record.feeRates, r.feeRates);
    assertEquals(record.deposits.map((d) => d.outpoint), t.outpoints);
    assertEquals(record.swapAmountSat, 400_000n);
    assertEquals(record.changeSat, 100_000n);
    assertEquals(record.swapInvoice, r.paymentRequest);
    assertEquals(record.staticAddress.pkScript, t.address.pkScript);
    assertEquals(record.network, "regtest");
    assertEquals(HTLC_VARIANTS.map((v) => record.htlcTxs[v].length > 0), [true, true, true]);
  });
});

Deno.test("a failing swap record writer (disk full) means no push: the swap unwinds, invoice canceled, deposits released", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    const path = "/data/loopin_swap_x.enc";
    t.writer.error = new LoopkitError(
      "swap_record_write_failed",
      `Cannot write the swap recovery record "${path}": No space left on device (os error 28)`,
    );
    const err = await failedWith(initiateLoopIn(t.deps, { all: true }));
    assertEquals([err.state, err.exitCode, err.code], ["Failed", 1, "swap_record_write_failed"]);
    assert(err.message.includes(path) && err.message.includes("No space left"), err.message);
    assertEquals(t.server.pushes.filter((p) => p.standard), [], "no signature left loopkit");
    assert(!t.events.includes("push") && !t.events.includes("markArmed"));
    assert(t.events.includes("abandon"), "the server answered: an abandon push (swap hash only)");
    assert(t.events.includes("cancelInvoice"));
    assertEquals(t.store.locked.size, 0, "deposits released");
    assertEquals(t.store.only().armed, false);
    assertEquals(t.store.only().state, "Failed");
    assertEquals([...t.lnd.sessions.values()].every((x) => x), true, "MuSig2 sessions cleaned up");
  });
});

Deno.test("initiateLoopIn without a swap record writer refuses to arm (no push)", async () => {
  await withTempDir(async (dir) => {
    using t = await setup(dir);
    const { writeSwapRecord: _, ...deps } = t.deps;
    const err = await failedWith(initiateLoopIn(deps, { all: true }));
    assertEquals([err.state, err.code], ["Failed", "swap_record_writer_missing"]);
    assert(!t.events.includes("push") && !t.events.includes("markArmed"));
    assertEquals(t.store.locked.size, 0);
  });
});
