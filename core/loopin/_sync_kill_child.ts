/**
 * Child process of sync_test.ts's kill -9 test: stores an armed swap whose standard HTLC confirmed, at a tip
 * past the CLTV, in the given directory, then runs `syncLoopIns` with an lnd whose PublishTransaction never
 * answers; prints "publishing" with the bytes' length when the publish starts, and waits to be killed.
 *
 * Usage: `deno run --allow-all _sync_kill_child.ts <dir>`
 *
 * @module
 */
import { syncLoopIns } from "./sync.ts";
import { armedSwap } from "./_sync_testing.ts";

const [dir] = Deno.args;
const f = await armedSwap({ dir, cltv: 1200 });
f.lnd.confirmations.set(f.txids.standard, 500);
f.lnd.tip = 1201;
f.lnd.publishTransaction = (tx: Uint8Array) => {
  console.log(`publishing ${tx.length}`);
  return new Promise(() => {}); // never answers: killed here
};
await syncLoopIns({
  db: f.t.db,
  network: "regtest",
  lnd: f.lnd,
  server: () => Promise.reject(new Error("no server in this test")),
  ownerAlive: () => false,
}, { listenMs: 0 });
