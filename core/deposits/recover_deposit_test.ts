import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { Transaction } from "@scure/btc-signer";
import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/assert.ts";
import { contentHash, MemLnd } from "../backup/_restore_testing.ts";
import { type Db, openDb } from "../db/db.ts";
import { insertStaticAddress, listStaticAddresses } from "../db/static_addresses.ts";
import { LoopkitError } from "../errors.ts";
import { depositHistory, listDeposits } from "./store.ts";
import {
  DEFAULT_RECOVER_DEPOSIT_SPEND_WAIT_MS,
  parseRecoverDepositRequest,
  recoverDeposit,
  type RecoverDepositDeps,
  type RecoverDepositRequest,
  RECOVERY_SCAN_LIMIT,
} from "./recover_deposit.ts";

const SERVER = secp256k1.getPublicKey(Uint8Array.from({ length: 32 }, (_, i) => 90 + i), true);
const EXPIRY = 144;
const OTHER_P2TR = Uint8Array.from([0x51, 0x20, ...new Uint8Array(32).fill(0xab)]);
const P2WPKH = Uint8Array.from([0x00, 0x14, ...new Uint8Array(20).fill(0xcd)]);

/** A raw transaction with the given outputs (one dummy input). */
function rawTx(
  outputs: { script: Uint8Array; amount: bigint }[],
  salt = 1,
): { raw: Uint8Array; txid: string } {
  const t = new Transaction({ allowUnknownOutputs: true, allowUnknownInputs: true });
  t.addInput({ txid: new Uint8Array(32).fill(salt), index: 0, sequence: 0xfffffffd });
  for (const o of outputs) t.addOutput(o);
  return { raw: t.unsignedTx, txid: t.id };
}

class Env {
  readonly lnd = new MemLnd("recover-deposit");
  sweeps = 0;
  /** `timeoutMs` of every registerSpend call. */
  spendWaits: (number | undefined)[] = [];
  constructor(readonly dir: string, readonly db: Db) {}
  legacy() {
    return this.lnd.childAddress(42060, 0, SERVER, EXPIRY);
  }
  deps(over: Partial<RecoverDepositDeps> = {}): RecoverDepositDeps {
    const lnd = this.lnd;
    return {
      db: this.db,
      network: "regtest",
      waitMs: 1000,
      lnd: {
        registerConfirmation: (t, s, n, h) => lnd.registerConfirmation(t, s, n, h),
        registerSpend: (op, s, h, o) => {
          this.spendWaits.push(o?.timeoutMs);
          return lnd.registerSpend(op, s, h);
        },
        deriveKey: (l) => lnd.deriveKey(l),
        importTapscript: (k, s) => lnd.importTapscript(k, s),
        listUnspent: () => lnd.listUnspent(),
        nextSweepPkScript: () =>
          Promise.resolve(Uint8Array.from([0x51, 0x20, ...new Uint8Array(32).fill(++this.sweeps)])),
      },
      ...over,
    };
  }
  /** Confirms a transaction paying `outputs` at `height`; returns its txid. */
  confirm(outputs: { script: Uint8Array; amount: bigint }[], height: number, salt = 1): string {
    const { raw, txid } = rawTx(outputs, salt);
    this.lnd.confirmations.set(txid, {
      blockHeight: height,
      blockHash: "00".repeat(32),
      txIndex: 1,
      rawTx: raw,
    });
    return txid;
  }
  async [Symbol.asyncDispose]() {
    this.db.close();
    await Deno.remove(this.dir, { recursive: true });
  }
}

async function env(withAddress = true): Promise<Env> {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-recdep-" });
  const db = await openDb({ url: `file:${dir}/loopkit.db`, network: "regtest" });
  const e = new Env(dir, db);
  if (withAddress) {
    await db.write((tx) =>
      insertStaticAddress(tx, {
        clientPubkey: e.lnd.publicKey(42060, 0),
        serverPubkey: SERVER,
        expiry: EXPIRY,
        clientKeyFamily: 42060,
        clientKeyIndex: 0,
        pkScript: e.legacy().pkScript,
        protocolVersion: 0,
        initiationHeight: 300,
      })
    );
  }
  return e;
}

function req(txid: string, vout: number, heightHint: number, pkScript?: Uint8Array): RecoverDepositRequest {
  return { outpoint: { txid, vout }, heightHint, ...(pkScript ? { pkScript } : {}) };
}

Deno.test("parseRecoverDepositRequest() checks outpoint, height hint and P2TR pkScript before anything else", () => {
  const txid = "ab".repeat(32);
  const r = parseRecoverDepositRequest(`${txid}:1`, "450", "0x" + bytesToHex(OTHER_P2TR));
  assertEquals(r, { outpoint: { txid, vout: 1 }, heightHint: 450, pkScript: OTHER_P2TR });
  assertEquals(parseRecoverDepositRequest(`${txid}:0`, "1").pkScript, undefined);
  assertEquals(parseRecoverDepositRequest(`${txid.toUpperCase()}:1`, "10").outpoint, { txid, vout: 1 });
  const cases: [string, string, string | undefined, string][] = [
    [`${txid}:1`, "0", undefined, "--height-hint must be positive"],
    [`${txid}:1`, "-5", undefined, "--height-hint must be positive"],
    [`${txid}:1`, "12x", undefined, "--height-hint must be a whole block height"],
    [`${txid}:1`, "1.5", undefined, "--height-hint must be a whole block height"],
    [`${txid}:1`, "", undefined, "--height-hint must be positive"],
    [`${txid}:1`, "99999999999", undefined, "above the highest block height loopkit accepts (2147483647)"],
    [`${txid}:1`, "10", bytesToHex(P2WPKH), "must encode a P2TR pkScript"],
    [`${txid}:1`, "10", "5120zz", "invalid --pkscript"],
    [`${txid}:1`, "10", "", "invalid --pkscript"],
    [`${txid}`, "10", undefined, "outpoint"],
  ];
  for (const [op, h, pk, want] of cases) {
    const e = assertThrows(() => parseRecoverDepositRequest(op, h, pk), LoopkitError, want);
    assertEquals(e.exitCode, 2, want);
  }
});

Deno.test("recoverDeposit() creates a Deposited deposit at the block's height, from the raw transaction in the confirmation", async () => {
  await using e = await env();
  const txid = e.confirm([{ script: OTHER_P2TR, amount: 1000n }, {
    script: e.legacy().pkScript,
    amount: 250_000n,
  }], 512);
  const r = await recoverDeposit(e.deps(), req(txid, 1, 500, e.legacy().pkScript));
  assertEquals(e.lnd.registrations, [{
    txid,
    pkScript: bytesToHex(e.legacy().pkScript),
    heightHint: 500,
    numConfs: 1,
  }]);
  assertEquals(r.outpoint, `${txid}:1`);
  assertEquals([r.valueSat, r.confirmationHeight, r.state], [250_000n, 512, "Deposited"]);
  assertEquals(r.keyLocator, { family: 42060, index: 0 });
  assertEquals(r.staticAddress, e.legacy().address);
  assertEquals([r.recoveredDeposit, r.recoveredAddress, r.walletVisible], [true, true, false]);
  const [d] = await listDeposits(e.db.client);
  assertEquals([d.txid, d.vout, d.amountSat, d.confirmationHeight, d.state, d.walletVisible], [
    txid,
    1,
    250_000n,
    512,
    "Deposited",
    false,
  ]);
  assertEquals(d.depositId, r.depositId);
  assertEquals((await depositHistory(e.db.client, d.depositId)).map((h) => h.state), ["Deposited"]);

  // The spend check asked lnd about this outpoint and script from the block's height, with the default wait.
  assertEquals(e.lnd.spendRegistrations, [{
    outpoint: `${txid}:1`,
    pkScript: bytesToHex(e.legacy().pkScript),
    heightHint: 512,
  }]);
  assertEquals(e.spendWaits, [DEFAULT_RECOVER_DEPOSIT_SPEND_WAIT_MS]);

  // Idempotent.
  const again = await recoverDeposit(e.deps(), req(txid, 1, 500, e.legacy().pkScript));
  assertEquals([again.recoveredDeposit, again.recoveredAddress], [false, false]);
  assertEquals(again.depositId, r.depositId);
  assertEquals((await depositHistory(e.db.client, d.depositId)).length, 1);
  assertEquals(e.sweeps, 1);
});

Deno.test("recoverDeposit() without --pkscript tries the stored static addresses", async () => {
  await using e = await env();
  const txid = e.confirm([{ script: e.legacy().pkScript, amount: 9_000n }], 420);
  const r = await recoverDeposit(e.deps(), req(txid, 0, 400));
  assertEquals(r.confirmationHeight, 420);
  assertEquals(r.pkScript, e.legacy().pkScript);
});

Deno.test("recoverDeposit() without --pkscript asks lnd about the scan range too: a child the database does not hold is found at once", async () => {
  await using e = await env();
  const child = e.lnd.childAddress(42062, 7, SERVER, EXPIRY);
  const txid = e.confirm([{ script: child.pkScript, amount: 55_000n }], 620);
  // Real lnd answers a script that is not in the transaction only at the end of --timeout: before, only the
  // stored script was asked about, so this waited the whole timeout and failed deposit_unconfirmed.
  const r = await recoverDeposit(e.deps({ waitMs: 60_000 }), req(txid, 0, 600));
  assertEquals(r.keyLocator, { family: 42062, index: 7 });
  assertEquals(r.confirmationHeight, 620);
  assertEquals(r.recoveredAddress, true);
  const asked = new Set(e.lnd.registrations.map((x) => x.pkScript));
  assert(asked.has(bytesToHex(e.legacy().pkScript)), "the stored address was asked about");
  assert(asked.has(bytesToHex(child.pkScript)), "the child was asked about");
  assertEquals(
    asked.size,
    1 + 2 * 21 + 20,
    "stored, 42061/0..20, 42062/0..20, 42060/1..20 (42060/0 is stored)",
  );
});

Deno.test("recoverDeposit() marks a deposit lnd's wallet lists as wallet-visible", async () => {
  await using e = await env();
  const txid = e.confirm([{ script: e.legacy().pkScript, amount: 9_000n }], 420);
  e.lnd.utxos = [{
    txid,
    vout: 0,
    amountSat: 9_000n,
    pkScript: e.legacy().pkScript,
    confirmations: 3,
    address: "",
  }];
  const r = await recoverDeposit(e.deps(), req(txid, 0, 400));
  assertEquals(r.walletVisible, true);
  assertEquals((await listDeposits(e.db.client))[0].walletVisible, true);
});

Deno.test("recoverDeposit() finds a receive child by scanning, imports it and stores its row at the height hint", async () => {
  await using e = await env();
  const child = e.lnd.childAddress(42061, 5, SERVER, EXPIRY);
  const txid = e.confirm([{ script: child.pkScript, amount: 70_000n }], 610);
  const r = await recoverDeposit(e.deps(), req(txid, 0, 600, child.pkScript));
  assertEquals(r.keyLocator, { family: 42061, index: 5 });
  assertEquals(r.recoveredAddress, true);
  const rows = await listStaticAddresses(e.db);
  assertEquals(rows.map((x) => [x.clientKeyFamily, x.clientKeyIndex, x.initiationHeight]), [[42060, 0, 300], [
    42061,
    5,
    600,
  ]]);
  assertEquals(rows[1].pkScript, child.pkScript);
  assert(e.lnd.imported.size === 1, "the child's tapscript was imported");
});

Deno.test("recoverDeposit() refuses a pkScript that is not ours before waiting on the chain", async () => {
  await using e = await env();
  const txid = e.confirm([{ script: OTHER_P2TR, amount: 1n }], 600);
  const before = await contentHash(e.dir);
  const err = await assertRejects(
    () => recoverDeposit(e.deps({ scanLimit: 20 }), req(txid, 0, 600, OTHER_P2TR)),
    LoopkitError,
    "no static address child matched pkScript",
  );
  assertEquals((err as LoopkitError).exitCode, 1);
  assertEquals(e.lnd.registrations.length, 0);
  assertEquals(e.lnd.calls.deriveKey, 21 * 3);
  assertEquals(await contentHash(e.dir), before);
});

Deno.test("recoverDeposit() refuses an output paying another script than ours and writes nothing", async () => {
  await using e = await env();
  const txid = e.confirm([{ script: e.legacy().pkScript, amount: 5_000n }, {
    script: OTHER_P2TR,
    amount: 7_000n,
  }], 600);
  const before = await contentHash(e.dir);
  await assertRejects(
    () => recoverDeposit(e.deps(), req(txid, 1, 600, e.legacy().pkScript)),
    LoopkitError,
    "confirmed output pkScript mismatch",
  );
  await assertRejects(
    () => recoverDeposit(e.deps(), req(txid, 2, 600, e.legacy().pkScript)),
    LoopkitError,
    "vout 2 not found",
  );
  assertEquals(await contentHash(e.dir), before);
  assertEquals(e.lnd.imported.size, 0);
});

Deno.test("recoverDeposit() reports an unconfirmed outpoint after the bounded wait and writes nothing", async () => {
  await using e = await env();
  const before = await contentHash(e.dir);
  const err = await assertRejects(
    () => recoverDeposit(e.deps(), req("cd".repeat(32), 0, 600, e.legacy().pkScript)),
    LoopkitError,
    "did not confirm",
  );
  assertEquals((err as LoopkitError).code, "deposit_unconfirmed");
  assertEquals(await contentHash(e.dir), before);
});

Deno.test("recoverDeposit() refuses a zero-value output and an lnd answering with another transaction", async () => {
  await using e = await env();
  const zero = e.confirm([{ script: e.legacy().pkScript, amount: 0n }], 600);
  await assertRejects(
    () => recoverDeposit(e.deps(), req(zero, 0, 600, e.legacy().pkScript)),
    LoopkitError,
    "invalid value 0",
  );
  const real = rawTx([{ script: e.legacy().pkScript, amount: 5n }], 9);
  const asked = "ef".repeat(32);
  e.lnd.confirmations.set(asked, {
    blockHeight: 600,
    blockHash: "00".repeat(32),
    txIndex: 1,
    rawTx: real.raw,
  });
  await assertRejects(
    () => recoverDeposit(e.deps(), req(asked, 0, 600, e.legacy().pkScript)),
    LoopkitError,
    `confirmation txid ${real.txid} does not match requested txid ${asked}`,
  );
  assertEquals((await listDeposits(e.db.client)).length, 0);
});

Deno.test("recoverDeposit() needs a static address in the database", async () => {
  await using e = await env(false);
  await assertRejects(
    () => recoverDeposit(e.deps(), req("cd".repeat(32), 0, 600, OTHER_P2TR)),
    LoopkitError,
    'run "loopkit recover" first',
  );
});

Deno.test("recoverDeposit() re-activates a Replaced deposit and fixes its height; refuses another value or state", async () => {
  await using e = await env();
  const txid = e.confirm([{ script: e.legacy().pkScript, amount: 40_000n }], 700);
  const first = await recoverDeposit(e.deps(), req(txid, 0, 690));
  await e.db.client.execute({
    sql: "UPDATE deposits SET state = 'Replaced', confirmation_height = 0 WHERE deposit_id = ?",
    args: [first.depositId],
  });
  const r = await recoverDeposit(e.deps(), req(txid, 0, 690));
  assertEquals([r.recoveredDeposit, r.state, r.confirmationHeight], [true, "Deposited", 700]);
  const [d] = await listDeposits(e.db.client);
  assertEquals([d.state, d.confirmationHeight], ["Deposited", 700]);
  assertEquals((await depositHistory(e.db.client, d.depositId)).map((h) => h.state), [
    "Deposited",
    "Deposited",
  ]);

  await e.db.client.execute({ sql: "UPDATE deposits SET amount = 39999", args: [] });
  await assertRejects(() => recoverDeposit(e.deps(), req(txid, 0, 690)), LoopkitError, "has value 39999");
  await e.db.client.execute({ sql: "UPDATE deposits SET amount = 40000, state = 'LoopingIn'", args: [] });
  await assertRejects(
    () => recoverDeposit(e.deps(), req(txid, 0, 690)),
    LoopkitError,
    "is in state LoopingIn",
  );
});

Deno.test("recoverDeposit() accepts the P2TR check only for 34-byte OP_1 scripts (hex vectors)", () => {
  const txid = "01".repeat(32);
  assertThrows(
    () => parseRecoverDepositRequest(`${txid}:0`, "5", "0014" + "00".repeat(20)),
    LoopkitError,
    "P2TR",
  );
  assertThrows(
    () => parseRecoverDepositRequest(`${txid}:0`, "5", "5120" + "00".repeat(31)),
    LoopkitError,
    "P2TR",
  );
  assertEquals(
    parseRecoverDepositRequest(`${txid}:0`, "5", "5120" + "11".repeat(32)).pkScript,
    hexToBytes("5120" + "11".repeat(32)),
  );
});

Deno.test("recoverDeposit() finds child 25 (past Loop's 0..20) by default; with scan limit 20 it needs a larger one", async () => {
  await using e = await env();
  assertEquals(RECOVERY_SCAN_LIMIT, 1000);
  const child = e.lnd.childAddress(42062, 25, SERVER, EXPIRY);
  const txid = e.confirm([{ script: child.pkScript, amount: 3_000n }], 610);
  await assertRejects(
    () => recoverDeposit(e.deps({ scanLimit: 20 }), req(txid, 0, 600, child.pkScript)),
    LoopkitError,
    "larger --key-scan-limit",
  );
  const r = await recoverDeposit(e.deps(), req(txid, 0, 600, child.pkScript));
  assertEquals(r.keyLocator, { family: 42062, index: 25 });
});

Deno.test("recoverDeposit() refuses an output lnd reports spent, naming the spending txid and height, and writes nothing", async () => {
  await using e = await env();
  const child = e.lnd.childAddress(42061, 3, SERVER, EXPIRY);
  const txid = e.confirm([{ script: child.pkScript, amount: 80_000n }], 610);
  const spender = "5a".repeat(32);
  e.lnd.spends.set(`${txid}:0`, { spendingTxid: spender, spendingHeight: 640, spendingInputIndex: 0 });
  const before = await contentHash(e.dir);
  const err = await assertRejects(
    () => recoverDeposit(e.deps({ spendWaitMs: 1234 }), req(txid, 0, 600, child.pkScript)),
    LoopkitError,
    `${txid}:0 is already spent by transaction ${spender} at height 640`,
  );
  assertEquals([(err as LoopkitError).code, (err as LoopkitError).exitCode], ["deposit_already_spent", 1]);
  assertEquals(e.spendWaits, [1234]);
  assertEquals(e.lnd.spendRegistrations.map((r) => [r.outpoint, r.pkScript]), [[
    `${txid}:0`,
    bytesToHex(child.pkScript),
  ]]);
  // Neither the child's row nor its lnd import nor a deposit: the refusal comes before any of them.
  assertEquals(await contentHash(e.dir), before);
  assertEquals(e.lnd.imported.size, 0);
  assertEquals(e.sweeps, 0);
  assertEquals((await listDeposits(e.db.client)).length, 0);
});

Deno.test("recoverDeposit() refuses to re-activate a Replaced deposit whose output lnd reports spent", async () => {
  await using e = await env();
  const txid = e.confirm([{ script: e.legacy().pkScript, amount: 40_000n }], 700);
  const first = await recoverDeposit(e.deps(), req(txid, 0, 690));
  await e.db.client.execute({
    sql: "UPDATE deposits SET state = 'Replaced' WHERE deposit_id = ?",
    args: [first.depositId],
  });
  e.lnd.spends.set(`${txid}:0`, {
    spendingTxid: "6b".repeat(32),
    spendingHeight: 705,
    spendingInputIndex: 1,
  });
  await assertRejects(() => recoverDeposit(e.deps(), req(txid, 0, 690)), LoopkitError, "already spent");
  assertEquals((await listDeposits(e.db.client))[0].state, "Replaced");
});
