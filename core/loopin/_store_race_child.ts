/**
 * Child process of store_test.ts's race test: waits until a given wall-clock time, then runs `createSwap`
 * for the given outpoints and prints `{"ok": true}` or `{"ok": false, "code": …}`.
 *
 * Usage: `deno run --allow-all _store_race_child.ts <db url> <start at ms> <preimage seed> <outpoint>...`
 *
 * @module
 */
import { openDb } from "../db/db.ts";
import { LoopkitError } from "../errors.ts";
import { LoopInSwapStore } from "./store.ts";
import { newSwap } from "./_store_testing.ts";

const [url, startAt, seed, ...outpoints] = Deno.args;
const db = await openDb({ url, network: "regtest" });
const store = new LoopInSwapStore(db);
const rec = newSwap(outpoints, 1_000_000n, Number(seed));
while (Date.now() < Number(startAt)) await new Promise((r) => setTimeout(r, 1));
try {
  await store.createSwap(rec);
  console.log(JSON.stringify({ ok: true }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, code: err instanceof LoopkitError ? err.code : String(err) }));
} finally {
  db.close();
}
