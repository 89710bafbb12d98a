/**
 * Shared steps of the loop-in unhappy-path regtest tests (`loopin_unhappy_test.ts`,
 * `loopin_unhappy_init_test.ts`): loopkit CLI calls with JSON, bounded polling, deposits funded from the
 * miner, lnd invoice look-ups, btcd mempool and chain checks.
 *
 * @module
 */
import { hex } from "@scure/base";
import { RawTx } from "@scure/btc-signer";
import { assert, assertEquals } from "../assert.ts";
import { unary } from "../../lnd/rpc.ts";
import type { LndNode } from "./lnd_node.ts";
import type { RegtestContext } from "./suite.ts";
import { type CliResult, runCli } from "../cli/_harness.ts";
import { cliFlagsFor } from "./swap_peer.ts";

export type Json = Record<string, unknown>;

/** Polls `fn` every 500 ms until it returns a value, at most `ms`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  for (const deadline = Date.now() + ms; Date.now() < deadline;) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Sleeps `ms` milliseconds. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Outpoints (`txid:vout`, display order) a raw transaction spends. */
export function spentOutpoints(rawHex: string): string[] {
  const tx = RawTx.decode(hex.decode(rawHex));
  return tx.inputs.map((i) => `${hex.encode(Uint8Array.from(i.txid))}:${i.index}`);
}

/** The helpers of one test, bound to its regtest context. */
export function unhappy(ctx: RegtestContext) {
  const { net, server, cli } = ctx;
  const btcd = net.btcd.rpc;
  const serverFlags = ["--swapserver", server.address, "--no-swapserver-tls"];
  /** The lnd node loopkit talks to (replaced after a restart). */
  let node: LndNode = net.alice;
  const run = (...args: string[]): Promise<CliResult> =>
    node === net.alice ? cli(...args) : ctx.cliAs(node, ctx.loopdir, ...args);
  void cli;
  const json = async (...args: string[]) => {
    const r = await run("--json", ...args);
    assertEquals(r.code, 0, `loopkit ${args.join(" ")}: ${r.stdout}${r.stderr}`);
    return r.json as Json;
  };
  const deposits = async (offline = false) =>
    ((await json("deposits", "list", "--all", ...(offline ? ["--offline"] : []))).deposits ?? []) as Json[];
  /** A deposit's state (`offline`: without asking lnd, e.g. while it is stopped). */
  const depositState = async (op: string, offline = false) =>
    (await deposits(offline)).find((d) => d.outpoint === op)?.state;
  const h = {
    btcd,
    serverFlags,
    get node() {
      return node;
    },
    set node(n: LndNode) {
      node = n;
    },
    run,
    json,
    deposits,
    depositState,
    /** `loopin show <hash> --json`. */
    show: (hash: string) => json("loopin", "show", hash),
    /**
     * `loopin sync --listen <listen>` (default 0: no listening; without the flag a run holds the stream 30 s
     * while a swap waits); exit 0 required unless `allowCode`.
     */
    async sync(listen = "0", allowCode?: number[]): Promise<CliResult> {
      const r = await run("--json", "loopin", "sync", "--listen", listen, ...serverFlags);
      assert(
        (allowCode ?? [0]).includes(r.code),
        `loopin sync exit ${r.code}: ${r.stdout}${r.stderr}`,
      );
      return r;
    },
    /** A new static address; returns address and pkScript hex. */
    async address() {
      const created = await ctx.newAddress();
      assertEquals(created.code, 0, created.stderr);
      return { address: created.json?.address as string, pkScript: created.json?.pk_script as string };
    },
    /** Pays `sat` to `address` from the miner, mines `mine` blocks, waits until loopkit lists it. */
    async deposit(address: string, sat: bigint, mine = 1): Promise<Json> {
      const txid = await net.sendToAddress(address, sat);
      if (mine) await net.mine(mine);
      return await until("the deposit in loopkit", async () => {
        await json("deposits", "sync");
        return (await deposits()).find((d) => (d.outpoint as string).startsWith(txid));
      });
    },
    /** lnd `LookupInvoice` state of the swap invoice. */
    async invoiceState(hash: string): Promise<string> {
      const inv = await unary<{ state: string }>(node.rpc.lightning, "LookupInvoice", {
        r_hash: hex.decode(hash),
      });
      return inv.state;
    },
    /** Transactions in btcd's mempool that spend `outpoint`. */
    async mempoolSpending(outpoint: string): Promise<string[]> {
      const out: string[] = [];
      for (const txid of await btcd.getRawMempool()) {
        if (spentOutpoints(await btcd.getRawTransactionHex(txid)).includes(outpoint)) out.push(txid);
      }
      return out;
    },
    /** Mines until btcd's tip is `height` (nothing when already there). */
    async mineTo(height: number) {
      const tip = await net.bestHeight();
      if (height > tip) await net.mine(height - tip);
      assertEquals(await net.bestHeight(), height);
    },
    /** `loopin --force` with these args; returns the raw result. */
    loopin: (args: string[], env: Record<string, string> = {}) =>
      runCli(
        [...cliFlagsFor(node, ctx.loopdir), "--json", "loopin", ...args, "--force", ...serverFlags],
        env,
      ),
    /** An unspent output of alice's wallet (lnd `ListUnspent`, ≥ 1 confirmation), or undefined. */
    async walletUtxo(txid: string, vout: number) {
      const r = await unary<
        { utxos: { outpoint: { txid_str: string; output_index: number }; amount_sat: string }[] }
      >(
        node.rpc.lightning,
        "ListUnspent",
        { min_confs: 1, max_confs: 1_000_000 },
      );
      return r.utxos.find((u) => u.outpoint.txid_str === txid && u.outpoint.output_index === vout);
    },
  };
  return h;
}

/**
 * The timeout sweep of a confirmed HTLC variant (`htlcTxid`, output 0) of a swap in `SweepHtlcTimeout`:
 * nothing is published at CLTV − 1; at the CLTV the sweep is published (in btcd's mempool, spending exactly
 * the HTLC output), confirms, and after 3 confirmations the swap is `HtlcTimeoutSwept` with the sweep output
 * (HTLC value − the sweep fee) an unspent output of alice's wallet.
 */
export async function sweepAtCltv(
  h: ReturnType<typeof unhappy>,
  net: RegtestContext["net"],
  hash: string,
  cltv: number,
  htlcTxid: string,
  depositOps: string[],
): Promise<{ sweepTxid: string }> {
  const htlcOut = `${htlcTxid}:0`;
  // CLTV − 1: nothing published.
  await h.mineTo(cltv - 1);
  await h.sync();
  assertEquals(await h.mempoolSpending(htlcOut), [], "a transaction spends the HTLC before its CLTV");
  let s = await h.show(hash);
  assertEquals([s.state, s.htlc_timeout_sweep_txid], ["SweepHtlcTimeout", null]);
  // The CLTV: the sweep is built, stored and published.
  await h.mineTo(cltv);
  await h.sync();
  s = await h.show(hash);
  const sweepTxid = s.htlc_timeout_sweep_txid as string;
  assert(sweepTxid, `no timeout sweep at the CLTV: ${JSON.stringify(s)}`);
  await until("the timeout sweep in btcd's mempool", async () => {
    const spending = await h.mempoolSpending(htlcOut);
    return spending.includes(sweepTxid) ? true : undefined;
  }, 30_000);
  const raw = await h.btcd.getRawTransactionHex(sweepTxid);
  assertEquals(spentOutpoints(raw), [htlcOut]);
  await net.mine(1);
  assert((await net.blockHeightOfTx(sweepTxid)) !== undefined, "the timeout sweep did not confirm");
  await h.sync();
  assertEquals((await h.show(hash)).state, "MonitorHtlcTimeoutSweep", "1 confirmation is not final");
  await net.mine(2);
  await h.sync();
  s = await h.show(hash);
  assertEquals(s.state, "HtlcTimeoutSwept");
  for (const op of depositOps) assertEquals(await h.depositState(op), "HtlcTimeoutSwept");
  // Alice's wallet holds the sweep output: HTLC value − the stored sweep fee.
  const htlcValue = RawTx.decode(hex.decode(await h.btcd.getRawTransactionHex(htlcTxid))).outputs[0].amount;
  const sweepTx = RawTx.decode(hex.decode(raw));
  assertEquals(sweepTx.outputs.length, 1);
  assertEquals(sweepTx.outputs[0].amount, htlcValue - BigInt(s.htlc_timeout_sweep_fee_sat as string));
  const utxo = await until("the sweep output in alice's wallet", () => h.walletUtxo(sweepTxid, 0), 30_000);
  assertEquals(BigInt(utxo.amount_sat), sweepTx.outputs[0].amount);
  return { sweepTxid };
}
