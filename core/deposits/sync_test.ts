import { assertEquals } from "../../tests/assert.ts";
import type { LndInfo, Utxo } from "../../lnd/types.ts";
import { openDb } from "../db/db.ts";
import { insertStaticAddress } from "../db/static_addresses.ts";
import { depositHistory, listDeposits } from "./store.ts";
import { syncDeposits, type SyncLnd } from "./sync.ts";

const OUR = new Uint8Array([0x51, 0x20, ...new Uint8Array(32).fill(7)]);
const txid = (n: number) => n.toString(16).padStart(64, "0");

/** In-process stand-in for the three lnd calls sync makes. */
class WalletStandIn implements SyncLnd {
  utxos: Utxo[] = [];
  height = 100;
  nextAddrCalls = 0;
  getInfo(): Promise<LndInfo> {
    return Promise.resolve({
      identityPubkey: "",
      blockHeight: this.height,
      blockHash: "",
      chains: [{ chain: "bitcoin", network: "regtest" }],
      syncedToChain: true,
      version: "test",
    });
  }
  listUnspent(): Promise<Utxo[]> {
    return Promise.resolve(this.utxos.map((u) => ({ ...u })));
  }
  nextSweepPkScript(): Promise<Uint8Array> {
    this.nextAddrCalls++;
    return Promise.resolve(new Uint8Array([0x51, 0x20, ...new Uint8Array(32).fill(this.nextAddrCalls)]));
  }
}

async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-sync-" });
  const db = await openDb({ url: `file:${dir}/loopkit.db`, network: "regtest" });
  await db.write((tx) =>
    insertStaticAddress(tx, {
      clientPubkey: new Uint8Array(33).fill(2),
      serverPubkey: new Uint8Array(33).fill(3),
      expiry: 144,
      clientKeyFamily: 42060,
      clientKeyIndex: 0,
      pkScript: OUR,
      protocolVersion: 0,
      initiationHeight: 1,
    })
  );
  return {
    db,
    lnd: new WalletStandIn(),
    async [Symbol.asyncDispose]() {
      db.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const utxo = (n: number, confirmations: number): Utxo => ({
  txid: txid(n),
  vout: 1,
  amountSat: 50_000n,
  pkScript: OUR,
  confirmations,
  address: "",
});

Deno.test("syncDeposits() stores a 0-conf deposit, backfills its height, and a re-run changes nothing", async () => {
  await using t = await setup();
  t.lnd.utxos = [utxo(1, 0)];
  const first = await syncDeposits(t);
  assertEquals(first.changes.map((c) => [c.change, c.confirmationHeight]), [["created", 0]]);
  t.lnd.height = 103;
  t.lnd.utxos = [utxo(1, 3)];
  const second = await syncDeposits(t);
  assertEquals(second.changes.map((c) => [c.change, c.confirmationHeight]), [["confirmed", 101]]);
  const third = await syncDeposits(t);
  assertEquals(third.changes, []);
  const [d] = await listDeposits(t.db.client);
  assertEquals(d.confirmationHeight, 101);
  assertEquals((await depositHistory(t.db.client, d.depositId)).map((h) => h.state), [
    "Deposited",
    "Deposited",
  ]);
  assertEquals(t.lnd.nextAddrCalls, 1);
});

Deno.test("syncDeposits() persists Replaced with a history row and revives the same record", async () => {
  await using t = await setup();
  t.lnd.utxos = [utxo(1, 0)];
  await syncDeposits(t);
  t.lnd.utxos = [];
  assertEquals((await syncDeposits(t)).changes.map((c) => c.change), ["replaced"]);
  const [gone] = await listDeposits(t.db.client);
  assertEquals(gone.state, "Replaced");
  t.lnd.utxos = [utxo(1, 0)];
  assertEquals((await syncDeposits(t)).changes.map((c) => c.change), ["revived"]);
  const all = await listDeposits(t.db.client);
  assertEquals(all.length, 1);
  assertEquals(all[0].depositId, gone.depositId);
  assertEquals((await depositHistory(t.db.client, gone.depositId)).map((h) => h.state), [
    "Deposited",
    "Replaced",
    "Deposited",
  ]);
});

Deno.test("syncDeposits() retries when the tip moves during the wallet read", async () => {
  await using t = await setup();
  let calls = 0;
  const base = t.lnd.getInfo.bind(t.lnd);
  t.lnd.getInfo = () => {
    calls++;
    if (calls === 2) t.lnd.height = 101; // a block arrives between the first GetInfo and the second
    return base();
  };
  t.lnd.utxos = [utxo(1, 1)];
  const r = await syncDeposits(t);
  assertEquals(r.tipHeight, 101);
  assertEquals(calls, 4);
});
