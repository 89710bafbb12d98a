/**
 * Child process of store_test.ts's kill -9 test: runs `createSwap` with a database whose write transaction
 * stops after every statement ran but before the commit, prints "inside" and waits to be killed.
 *
 * Usage: `deno run --allow-all _store_kill_child.ts <db url> <outpoint>...`
 *
 * @module
 */
import { openDb } from "../db/db.ts";
import { LoopInSwapStore } from "./store.ts";
import { newSwap } from "./_store_testing.ts";

const [url, ...outpoints] = Deno.args;
const db = await openDb({ url, network: "regtest" });
const stalled = {
  ...db,
  write: <T>(fn: Parameters<typeof db.write<T>>[0]) =>
    db.write(async (tx) => {
      const r = await fn(tx);
      console.log("inside");
      await new Promise(() => {}); // never commits
      return r;
    }),
};
await new LoopInSwapStore(stalled).createSwap(newSwap(outpoints, 3_000_000n, 7));
