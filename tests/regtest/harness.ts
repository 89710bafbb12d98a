/**
 * A real regtest network for integration tests and the demo: one btcd (chain backend, miner) and lnd
 * nodes whose wallets are created through the WalletUnlocker, funded, and optionally joined by a channel.
 *
 * Binaries are built by `.ci/install-regtest.sh` into a cache outside the checkout (see
 * {@linkcode regtestBinaries}). Everything runs on 127.0.0.1 with free ports in a temporary directory.
 *
 * Permissions: `--allow-run` (btcd, lnd), `--allow-read`, `--allow-write` (temp dir), `--allow-net`
 * (127.0.0.1), `--allow-env` (cache location).
 *
 * @example
 * ```ts ignore
 * const net = await startRegtest({ lndNodes: ["alice", "bob"] });
 * try {
 *   const txid = await net.sendToAddress(await net.bob.newAddress(), 100_000n);
 *   await net.mine(1);
 *   console.log(await net.blockHeightOfTx(txid));
 * } finally {
 *   await net.stop();
 * }
 * ```
 *
 * @module
 */

import { GrpcLndClient } from "../../lnd/grpc_client.ts";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { type Btcd, btcdEndpoint, BtcdRpc, startBtcd } from "./btcd.ts";
import { callLnd, type LndNode, startLnd } from "./lnd_node.ts";
import { MinerWallet, type Payment } from "./miner_wallet.ts";
import { freePorts, waitFor } from "./_process.ts";

export type { LndNode } from "./lnd_node.ts";
export type { Btcd } from "./btcd.ts";

/** Paths of the pinned binaries and which of them are missing. */
export interface RegtestBinaries {
  /** Cache directory holding the binaries. */
  binDir: string;
  /** lnd version from `tests/regtest/versions.env`. */
  lndVersion: string;
  /** btcd version from `tests/regtest/versions.env`. */
  btcdVersion: string;
  btcd: string;
  btcctl: string;
  lnd: string;
  lncli: string;
  /** Paths of required binaries (btcd, lnd) that do not exist or are not executable. */
  missing: string[];
  /** Lightning Loop version from `tests/regtest/versions.env` (`LOOP_VERSION`), or undefined when not pinned. */
  loopVersion: string | undefined;
  /** Lightning Loop's daemon (`loopd-<LOOP_VERSION>`), the reference peer of the loop-in interop test. */
  loopd: string;
  /** Lightning Loop's CLI (`loop-<LOOP_VERSION>`). */
  loop: string;
  /**
   * Paths of the Loop binaries (loopd, loop) that do not exist or are not executable; only the tests that run
   * Loop's own client gate on these (see `tests/regtest/suite.ts`).
   */
  missingLoop: string[];
}

/**
 * Locates the binaries `.ci/install-regtest.sh` builds: `$LOOPKIT_REGTEST_BIN`, else
 * `${XDG_CACHE_HOME:-$HOME/.cache}/loopkit/bin`, file names `<name>-<version>` with versions from
 * `tests/regtest/versions.env`.
 *
 * @throws Error when versions.env lacks LND_VERSION or BTCD_VERSION, or neither HOME nor XDG_CACHE_HOME is set
 */
export async function regtestBinaries(): Promise<RegtestBinaries> {
  const env = parseEnvFile(await Deno.readTextFile(new URL("./versions.env", import.meta.url)));
  const lndVersion = env.get("LND_VERSION");
  const btcdVersion = env.get("BTCD_VERSION");
  if (!lndVersion || !btcdVersion) {
    throw new Error("tests/regtest/versions.env must set LND_VERSION and BTCD_VERSION");
  }
  let binDir = Deno.env.get("LOOPKIT_REGTEST_BIN");
  if (!binDir) {
    const cache = Deno.env.get("XDG_CACHE_HOME") ||
      (Deno.env.get("HOME") ? join(Deno.env.get("HOME")!, ".cache") : undefined);
    if (!cache) throw new Error("Cannot locate the regtest binaries: neither HOME nor XDG_CACHE_HOME is set");
    binDir = join(cache, "loopkit", "bin");
  }
  const bins = {
    btcd: join(binDir, `btcd-${btcdVersion}`),
    btcctl: join(binDir, `btcctl-${btcdVersion}`),
    lnd: join(binDir, `lnd-${lndVersion}`),
    lncli: join(binDir, `lncli-${lndVersion}`),
  };
  const loopVersion = env.get("LOOP_VERSION");
  const loopBins = {
    loopd: join(binDir, `loopd-${loopVersion ?? "unpinned"}`),
    loop: join(binDir, `loop-${loopVersion ?? "unpinned"}`),
  };
  const isExecutable = async (path: string) => {
    try {
      const st = await Deno.stat(path);
      return st.isFile && ((st.mode ?? 0o777) & 0o111) !== 0;
    } catch {
      return false;
    }
  };
  const missing: string[] = [];
  for (const path of [bins.btcd, bins.lnd]) if (!await isExecutable(path)) missing.push(path);
  const missingLoop: string[] = [];
  for (const path of [loopBins.loopd, loopBins.loop]) if (!await isExecutable(path)) missingLoop.push(path);
  return { binDir, lndVersion, btcdVersion, ...bins, missing, loopVersion, ...loopBins, missingLoop };
}

/** Parses `KEY=value` / `KEY="value"` lines; `#` comments and blank lines are skipped. */
function parseEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^([A-Z_][A-Z0-9_]*)=(?:"([^"]*)"|(\S*))$/.exec(line);
    if (m) out.set(m[1], m[2] ?? m[3]);
  }
  return out;
}

/** The channel {@linkcode startRegtest} opens. */
export interface ChannelOptions {
  /** Funder node name (default the first node). */
  from?: string;
  /** Peer node name (default the second node). */
  to?: string;
  /** Capacity in sat (default 5 000 000). */
  capacitySat?: bigint;
  /** Amount pushed to the peer at open, in sat (default 1 000 000, so both sides can pay). */
  pushSat?: bigint;
}

/** Options of {@linkcode startRegtest}. */
export interface RegtestOptions<N extends string> {
  /**
   * Base directory (created; left in place on stop). Default: a new temporary directory, removed on
   * stop unless `LOOPKIT_REGTEST_KEEP=1` is set.
   */
  dir?: string;
  /** lnd node names (default `["alice", "bob"]`); each is also a property of the result. */
  lndNodes?: N[];
  /**
   * Channel to open between two nodes, waiting until both see it active; `false` skips it (fast
   * tests). Default: from the first to the second node when there are two or more.
   */
  channel?: ChannelOptions | false;
  /** On-chain funds each node receives at start, as two equal outputs, in sat (default 1 000 000 000). */
  fundSat?: bigint;
  /** Bound for each start-up stage in milliseconds (default 60 000). */
  timeoutMs?: number;
}

/** A funded, open channel. */
export interface OpenedChannel {
  /** Funding outpoint `txid:vout` (display txid). */
  channelPoint: string;
  /** Capacity in sat. */
  capacitySat: bigint;
}

/** The running network returned by {@linkcode startRegtest}. */
export interface Regtest {
  /** Base directory (logs: `btcd/btcd-stdout.log`, `<node>/lnd-stdout.log`). */
  readonly dir: string;
  /** The btcd process and RPC client. */
  readonly btcd: Btcd;
  /** The miner's wallet (all mined coinbases pay it). */
  readonly miner: MinerWallet;
  /** lnd nodes by name. */
  readonly nodes: Map<string, LndNode>;
  /** Channel opened at start, if any. */
  readonly channel: OpenedChannel | undefined;
  /** Milliseconds from the call of {@linkcode startRegtest} until the network was ready. */
  readonly startupMs: number;
  /**
   * Mines `n` blocks (coinbases to the miner) and, unless `waitSync` is false, waits until every
   * running lnd node is synced at the new height.
   * @returns the block hashes in order
   */
  mine(n: number, waitSync?: boolean): Promise<string[]>;
  /** Pays `amountSat` to a regtest address from the miner's wallet; returns the txid (unconfirmed). */
  sendToAddress(address: string, amountSat: bigint): Promise<string>;
  /** Several payments in one transaction from the miner's wallet; returns the txid. */
  sendMany(payments: Payment[]): Promise<string>;
  /** btcd's tip height. */
  bestHeight(): Promise<number>;
  /**
   * Height of the block that holds `txid` (btcd `getrawtransaction` verbose + `getblockheader`), or
   * `undefined` while it is in the mempool.
   * @throws BtcdRpcError when btcd does not know the transaction
   */
  blockHeightOfTx(txid: string): Promise<number | undefined>;
  /**
   * Starts one more lnd node on this network (new wallet, or restored from `seed`); it is stopped by
   * {@linkcode stop}. Not funded.
   */
  startNode(
    name: string,
    opts?: { seed?: string[]; recoveryWindow?: number; dir?: string },
  ): Promise<LndNode>;
  /** Opens a channel `from` → `to` (connecting them first), mines 6 blocks and waits until both see it active. */
  openChannel(from: LndNode, to: LndNode, capacitySat: bigint, pushSat?: bigint): Promise<OpenedChannel>;
  /** Stops every node and btcd (SIGTERM, then SIGKILL), removes a temporary directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Blocks mined at start. btcd's regtest activates segwit and taproot by BIP9 signalling (window 144,
 * threshold 108): started at 144, locked in at 288, active from block 432 on, so 431 blocks make them
 * active for the next block; that is also far past coinbase maturity.
 */
const INITIAL_BLOCKS = 431;

/**
 * Starts btcd and the lnd nodes, creates their wallets (GenSeed → InitWallet, seed kept as
 * `node.seed`), funds each node from the miner, and opens a channel unless `channel: false`.
 * Every wait is bounded; on any failure all started processes are stopped and the error (with the
 * relevant log tail) is rethrown.
 *
 * @throws Error when a binary is missing (run `.ci/install-regtest.sh`) or a start-up stage fails
 */
export async function startRegtest<N extends string = "alice" | "bob">(
  opts: RegtestOptions<N> = {},
): Promise<Regtest & { readonly [K in N]: LndNode }> {
  const t0 = performance.now();
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const names = opts.lndNodes ?? (["alice", "bob"] as N[]);
  if (new Set(names).size !== names.length) throw new Error(`Duplicate lnd node names: ${names.join(", ")}`);
  const bins = await regtestBinaries();
  if (bins.missing.length > 0) {
    throw new Error(`Missing regtest binaries ${bins.missing.join(", ")}: run .ci/install-regtest.sh`);
  }
  const tempDir = opts.dir === undefined;
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "loopkit-regtest-" });
  await Deno.mkdir(dir, { recursive: true });

  const nodes = new Map<string, LndNode>();
  let btcd: Btcd | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (removeDir = true) => {
    stopping ??= (async () => {
      await Promise.all([...nodes.values()].map((n) => n.stop()));
      await btcd?.process.stop();
      if (removeDir && tempDir && Deno.env.get("LOOPKIT_REGTEST_KEEP") !== "1") {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    })();
    return stopping;
  };

  try {
    const [rpcPort, p2pPort] = freePorts(2);
    const endpoint = btcdEndpoint(join(dir, "btcd"), rpcPort, p2pPort);
    const rpc = new BtcdRpc(endpoint);
    const miner = new MinerWallet(rpc);
    btcd = await startBtcd({
      binary: bins.btcd,
      dir: join(dir, "btcd"),
      endpoint,
      miningAddress: miner.address,
      timeoutMs,
    });
    const b = btcd;

    const bestHeight = async () => (await rpc.getBestBlock()).height;
    const running = () => [...nodes.values()].filter((n) => n.process.exitStatus === undefined);
    const mine = async (n: number, waitSync = true) => {
      if (!Number.isInteger(n) || n < 1) {
        throw new RangeError(`Cannot mine ${n} blocks: need a positive integer`);
      }
      const hashes = await rpc.generate(n);
      const height = await bestHeight();
      miner.noteMinedBlocks(hashes, height);
      if (waitSync) await Promise.all(running().map((node) => node.waitSynced(height, timeoutMs)));
      return hashes;
    };
    // Segwit/taproot active, mature coins for funding, and a recent tip so lnd considers itself synced.
    await mine(INITIAL_BLOCKS, false);
    const forks =
      (await rpc.call<{ bip9_softforks?: Record<string, { status: string }> }>("getblockchaininfo"))
        .bip9_softforks ?? {};
    for (const fork of ["segwit", "taproot"]) {
      if (forks[fork]?.status !== "active") {
        throw new Error(
          `btcd reports ${fork} as "${
            forks[fork]?.status
          }" after ${INITIAL_BLOCKS} blocks, expected "active"`,
        );
      }
    }

    const startNode = async (
      name: string,
      o: { seed?: string[]; recoveryWindow?: number; dir?: string } = {},
    ) => {
      if (nodes.has(name)) throw new Error(`lnd node "${name}" already exists in this network`);
      const [nodeRpc, nodeP2p] = freePorts(2);
      const node = await startLnd({
        binary: bins.lnd,
        name,
        dir: o.dir ?? join(dir, name),
        btcd: endpoint,
        rpcPort: nodeRpc,
        p2pPort: nodeP2p,
        seed: o.seed,
        recoveryWindow: o.recoveryWindow,
        timeoutMs,
      });
      nodes.set(name, node);
      return node;
    };

    const openChannel = async (from: LndNode, to: LndNode, capacitySat: bigint, pushSat = 0n) => {
      await callLnd(`lnd ${from.name}`, from.rpc.lightning, "ConnectPeer", {
        addr: { pubkey: to.pubkey, host: to.p2pHost },
        perm: false,
        timeout: "20",
      }, { deadlineMs: timeoutMs }).catch((e) => {
        if (!String(e?.message).includes("already connected")) throw e;
      });
      const point = await callLnd<{ funding_txid_bytes: Buffer; output_index: number }>(
        `lnd ${from.name}`,
        from.rpc.lightning,
        "OpenChannelSync",
        {
          node_pubkey: Buffer.from(to.pubkey, "hex"),
          local_funding_amount: capacitySat.toString(),
          push_sat: pushSat.toString(),
          sat_per_vbyte: "2",
        },
        { deadlineMs: timeoutMs },
      );
      const txid = Buffer.from(point.funding_txid_bytes).reverse().toString("hex");
      const channelPoint = `${txid}:${point.output_index}`;
      await waitFor(`funding tx ${txid} of channel ${from.name}→${to.name} in btcd's mempool`, async () => {
        return (await rpc.getRawMempool()).includes(txid);
      }, { timeoutMs, process: b.process });
      await mine(6);
      for (const node of [from, to]) {
        await waitFor(`channel ${channelPoint} to be active on ${node.name}`, async () => {
          const res = await callLnd<{ channels: { channel_point: string; active: boolean }[] }>(
            `lnd ${node.name}`,
            node.rpc.lightning,
            "ListChannels",
            { active_only: true },
          );
          return res.channels.some((c) => c.channel_point === channelPoint && c.active);
        }, { timeoutMs, process: node.process });
      }
      // "Active" is not yet "can forward": right after channel_ready the switch may still report no
      // bandwidth (FAILURE_REASON_INSUFFICIENT_BALANCE). Pay a 1-sat probe until one succeeds.
      const payer = new GrpcLndClient(from.rpc);
      let lastFailure = "";
      await waitFor(`channel ${channelPoint} to carry a payment ${from.name}→${to.name}`, async () => {
        const inv = await callLnd<{ payment_request: string }>(
          `lnd ${to.name}`,
          to.rpc.lightning,
          "AddInvoice",
          {
            value: "1",
            memo: "regtest channel probe",
          },
        );
        const r = await payer.sendPaymentV2(inv.payment_request, 10n, 10);
        lastFailure = r.failureReason;
        return r.status === "SUCCEEDED";
      }, { timeoutMs, process: from.process, intervalMs: 500 }).catch((e) => {
        throw new Error(`${(e as Error).message} (last failure: ${lastFailure})`);
      });
      return { channelPoint, capacitySat };
    };

    await Promise.all(names.map((name) => startNode(name)));

    // Fund every node with two outputs in one transaction, then confirm it.
    const fundSat = opts.fundSat ?? 1_000_000_000n;
    if (fundSat > 0n && names.length > 0) {
      const payments: Payment[] = [];
      for (const name of names) {
        const node = nodes.get(name)!;
        for (let i = 0; i < 2; i++) {
          payments.push({ address: await node.newAddress(), amountSat: fundSat / 2n });
        }
      }
      await miner.sendMany(payments);
      await mine(1);
      for (const name of names) {
        const node = nodes.get(name)!;
        await waitFor(`lnd ${name} to see its ${fundSat} sat funding confirmed`, async () => {
          return (await node.walletBalance()).confirmedSat >= (fundSat / 2n) * 2n;
        }, { timeoutMs, process: node.process });
      }
    }

    let channel: OpenedChannel | undefined;
    if (opts.channel !== false && names.length >= 2) {
      const c = opts.channel ?? {};
      const from = nodes.get(c.from ?? names[0]);
      const to = nodes.get(c.to ?? names[1]);
      if (!from || !to) {
        throw new Error(`Channel nodes "${c.from}" → "${c.to}" are not among ${names.join(", ")}`);
      }
      channel = await openChannel(from, to, c.capacitySat ?? 5_000_000n, c.pushSat ?? 1_000_000n);
    }

    const net: Regtest = {
      dir,
      btcd: b,
      miner,
      nodes,
      channel,
      startupMs: Math.round(performance.now() - t0),
      mine,
      sendToAddress: (address, amountSat) => miner.sendToAddress(address, amountSat),
      sendMany: (payments) => miner.sendMany(payments),
      bestHeight,
      async blockHeightOfTx(txid) {
        const tx = await rpc.getRawTransactionVerbose(txid);
        if (!tx.blockhash) return undefined;
        return (await rpc.getBlockHeader(tx.blockhash)).height;
      },
      startNode,
      openChannel,
      stop: () => stop(),
    };
    const byName = Object.fromEntries(names.map((n) => [n, nodes.get(n)!]));
    return Object.assign(net, byName) as Regtest & { readonly [K in N]: LndNode };
  } catch (e) {
    await stop(false);
    throw new Error(`Regtest network failed to start (logs kept in ${dir}): ${(e as Error).message}`, {
      cause: e,
    });
  }
}
