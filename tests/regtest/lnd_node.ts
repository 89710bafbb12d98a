/**
 * One regtest lnd node backed by btcd: process, wallet creation through the WalletUnlocker (so the
 * aezeed mnemonic is kept), restart with unlock, and gRPC clients.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { join } from "node:path";
import type { LndInfo } from "../../lnd/types.ts";
import type { BtcdEndpoint } from "./btcd.ts";
import { type ManagedProcess, spawnLogged, tailFile, waitFor } from "./_process.ts";
import { type CallOptions, type LndRpc, openLndRpc, type RpcClient, unary } from "../../lnd/rpc.ts";

/** Wallet password every harness node uses (lnd requires at least 8 characters). */
export const LND_WALLET_PASSWORD = "loopkit-regtest-wallet";

/** Options of {@linkcode startLnd}. */
export interface StartLndOptions {
  /** lnd executable. */
  binary: string;
  /** Node name (alias and messages), e.g. `alice`. */
  name: string;
  /** lnd directory (`--lnddir`), created if missing. Reusing a directory restarts that node. */
  dir: string;
  /** btcd to use as chain backend. */
  btcd: BtcdEndpoint;
  /** gRPC port on 127.0.0.1. */
  rpcPort: number;
  /** P2P port on 127.0.0.1. */
  p2pPort: number;
  /**
   * 24-word aezeed mnemonic to restore from; a new wallet (GenSeed) when omitted. Ignored when the
   * directory already holds a wallet (then it is unlocked).
   */
  seed?: string[];
  /** Address look-ahead for a restore (InitWallet `recovery_window`); 0 for a new wallet. */
  recoveryWindow?: number;
  /** Bound for each start-up stage in milliseconds (default 60 000). */
  timeoutMs?: number;
}

/** A running lnd node. */
export interface LndNode {
  /** Node name, e.g. `alice`. */
  readonly name: string;
  /** `--lnddir`. */
  readonly dir: string;
  /** gRPC `host:port`. */
  readonly rpcServer: string;
  /** P2P `host:port`. */
  readonly p2pHost: string;
  /** Path of lnd's TLS certificate. */
  readonly tlsCertPath: string;
  /** Path of the admin macaroon. */
  readonly adminMacaroonPath: string;
  /** TLS certificate bytes (PEM). */
  readonly tlsCert: Uint8Array;
  /** Admin macaroon bytes. */
  readonly macaroon: Uint8Array;
  /** The wallet's 24-word aezeed mnemonic (no aezeed passphrase). */
  readonly seed: string[];
  /** Wallet password. */
  readonly password: string;
  /** Identity public key, 33 bytes hex. */
  readonly pubkey: string;
  /** Raw gRPC clients authenticated with the admin macaroon. */
  readonly rpc: LndRpc;
  /** The lnd process; its output is in `process.logPath`. */
  readonly process: ManagedProcess;
  /** `lnrpc.Lightning/GetInfo` mapped to the shared {@linkcode LndInfo} shape. */
  getInfo(): Promise<LndInfo>;
  /** `lnrpc.Lightning/NewAddress`: a fresh P2WPKH (`p2wkh`, default) or P2TR (`p2tr`) address. */
  newAddress(type?: "p2wkh" | "p2tr"): Promise<string>;
  /** `lnrpc.Lightning/WalletBalance`: confirmed and unconfirmed balance in sat. */
  walletBalance(): Promise<{ confirmedSat: bigint; unconfirmedSat: bigint }>;
  /** Waits until `GetInfo` reports `synced_to_chain` at btcd's tip height `height` or later. */
  waitSynced(height?: number, timeoutMs?: number): Promise<void>;
  /** Stops lnd (SIGTERM, then SIGKILL after 15 s) and closes the clients. Idempotent. */
  stop(): Promise<void>;
}

const STATE_READY = new Set(["SERVER_ACTIVE"]);

/**
 * {@linkcode unary} with the node and method named in a failure, e.g.
 * `lnd alice InitWallet failed: 4 DEADLINE_EXCEEDED: …` (the grpc-js error is the `cause`).
 *
 * @param label node label for messages, e.g. `lnd alice`
 * @param client one of the node's gRPC clients
 * @param method method name as in the .proto, e.g. `GetInfo`
 * @param request request message
 * @param opts call deadline
 */
export async function callLnd<T = Record<string, unknown>>(
  label: string,
  client: RpcClient,
  method: string,
  request: object = {},
  opts: CallOptions = {},
): Promise<T> {
  try {
    return await unary<T>(client, method, request, opts);
  } catch (e) {
    throw new Error(`${label} ${method} failed: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Starts lnd on regtest against btcd, creates (or restores, or unlocks) its wallet through the
 * WalletUnlocker, and waits until the server is active and synced to btcd's chain.
 *
 * @throws Error naming the stage that failed or timed out, with the tail of lnd's log; the process is
 *   stopped before the error is thrown
 */
export async function startLnd(opts: StartLndOptions): Promise<LndNode> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  await Deno.mkdir(opts.dir, { recursive: true });
  const rpcServer = `127.0.0.1:${opts.rpcPort}`;
  const p2pHost = `127.0.0.1:${opts.p2pPort}`;
  const tlsCertPath = join(opts.dir, "tls.cert");
  const adminMacaroonPath = join(opts.dir, "data", "chain", "bitcoin", "regtest", "admin.macaroon");
  const args = [
    `--lnddir=${opts.dir}`,
    `--alias=${opts.name}`,
    `--rpclisten=${rpcServer}`,
    `--listen=${p2pHost}`,
    "--norest",
    "--bitcoin.regtest",
    "--bitcoin.node=btcd",
    `--btcd.rpchost=${opts.btcd.rpcHost}`,
    `--btcd.rpcuser=${opts.btcd.rpcUser}`,
    `--btcd.rpcpass=${opts.btcd.rpcPass}`,
    `--btcd.rpccert=${opts.btcd.rpcCertPath}`,
    "--nobootstrap",
    "--trickledelay=50",
    "--maxpendingchannels=10",
    "--debuglevel=info",
  ];
  // lnd reads lnd.conf from --lnddir; an empty one keeps a user's config out of the test.
  await Deno.writeTextFile(join(opts.dir, "lnd.conf"), "", { create: true, append: true });
  const label = `lnd ${opts.name}`;
  const process = await spawnLogged(label, opts.binary, args, join(opts.dir, "lnd-stdout.log"));
  let unlockerRpc: LndRpc | undefined;
  let rpc: LndRpc | undefined;
  try {
    const tlsCert = await waitFor(`${label} to write ${tlsCertPath}`, async () => {
      const bytes = await Deno.readFile(tlsCertPath);
      return new TextDecoder().decode(bytes).includes("END CERTIFICATE") ? bytes : undefined;
    }, { timeoutMs, process });

    unlockerRpc = openLndRpc({ rpcServer, tlsCert });
    const u = unlockerRpc;
    const state = await waitFor(`${label} State/GetState to answer`, async () => {
      const r = await callLnd<{ state: string }>(label, u.state, "GetState", {}, { deadlineMs: 5_000 });
      return r.state === "WAITING_TO_START" ? undefined : r.state;
    }, { timeoutMs, process });

    const password = Buffer.from(LND_WALLET_PASSWORD);
    let seed: string[];
    const seedFile = join(opts.dir, "loopkit-regtest-seed.txt");
    if (state === "NON_EXISTING") {
      if (opts.seed) {
        seed = opts.seed;
      } else {
        const gen = await callLnd<{ cipher_seed_mnemonic: string[] }>(label, u.walletUnlocker, "GenSeed", {});
        seed = gen.cipher_seed_mnemonic;
      }
      if (seed.length !== 24) throw new Error(`${label}: aezeed mnemonic has ${seed.length} words, not 24`);
      await callLnd(label, u.walletUnlocker, "InitWallet", {
        wallet_password: password,
        cipher_seed_mnemonic: seed,
        recovery_window: opts.recoveryWindow ?? 0,
      }, { deadlineMs: timeoutMs });
      // Kept beside the node so a restarted harness node still knows its seed (test data only).
      await Deno.writeTextFile(seedFile, seed.join(" ") + "\n", { mode: 0o600 });
    } else if (state === "LOCKED") {
      seed = (await Deno.readTextFile(seedFile)).trim().split(" ");
      await callLnd(label, u.walletUnlocker, "UnlockWallet", { wallet_password: password }, {
        deadlineMs: timeoutMs,
      });
    } else {
      throw new Error(`${label}: unexpected wallet state ${state} at start-up`);
    }

    await waitFor(`${label} to reach state SERVER_ACTIVE`, async () => {
      const r = await callLnd<{ state: string }>(label, u.state, "GetState", {}, { deadlineMs: 5_000 });
      return STATE_READY.has(r.state);
    }, { timeoutMs, process });
    unlockerRpc.close();
    unlockerRpc = undefined;

    const macaroon = await waitFor(`${label} to write ${adminMacaroonPath}`, async () => {
      const bytes = await Deno.readFile(adminMacaroonPath);
      return bytes.length > 0 ? bytes : undefined;
    }, { timeoutMs, process });
    rpc = openLndRpc({ rpcServer, tlsCert, macaroon });
    const r = rpc;

    const getInfoRaw = () => callLnd<RawGetInfo>(label, r.lightning, "GetInfo", {}, { deadlineMs: 10_000 });
    const waitSynced = async (height?: number, waitMs = timeoutMs) => {
      await waitFor(
        `${label} to report synced_to_chain${height === undefined ? "" : ` at height ${height}`}`,
        async () => {
          const info = await getInfoRaw();
          return info.synced_to_chain && (height === undefined || info.block_height >= height);
        },
        { timeoutMs: waitMs, process },
      );
    };
    await waitSynced();
    const pubkey = (await getInfoRaw()).identity_pubkey;

    let stopped: Promise<void> | undefined;
    return {
      name: opts.name,
      dir: opts.dir,
      rpcServer,
      p2pHost,
      tlsCertPath,
      adminMacaroonPath,
      tlsCert,
      macaroon,
      seed,
      password: LND_WALLET_PASSWORD,
      pubkey,
      rpc: r,
      process,
      async getInfo(): Promise<LndInfo> {
        const i = await getInfoRaw();
        return {
          identityPubkey: i.identity_pubkey,
          blockHeight: i.block_height,
          blockHash: i.block_hash,
          chains: i.chains.map((c) => ({ chain: c.chain, network: c.network })),
          syncedToChain: i.synced_to_chain,
          version: i.version,
        };
      },
      async newAddress(type = "p2wkh") {
        const res = await callLnd<{ address: string }>(label, r.lightning, "NewAddress", {
          type: type === "p2tr" ? "TAPROOT_PUBKEY" : "WITNESS_PUBKEY_HASH",
        });
        return res.address;
      },
      async walletBalance() {
        const b = await callLnd<{ confirmed_balance: string; unconfirmed_balance: string }>(
          label,
          r.lightning,
          "WalletBalance",
          {},
        );
        return { confirmedSat: BigInt(b.confirmed_balance), unconfirmedSat: BigInt(b.unconfirmed_balance) };
      },
      waitSynced,
      stop() {
        stopped ??= (async () => {
          r.close();
          await process.stop(15_000);
        })();
        return stopped;
      },
    };
  } catch (e) {
    unlockerRpc?.close();
    rpc?.close();
    await process.stop(5_000);
    const msg = (e as Error).message;
    if (msg.includes("last lines of")) throw e;
    throw new Error(`${msg}\nlast lines of ${process.logPath}:\n${await tailFile(process.logPath)}`, {
      cause: e,
    });
  }
}

interface RawGetInfo {
  identity_pubkey: string;
  block_height: number;
  block_hash: string;
  synced_to_chain: boolean;
  version: string;
  chains: { chain: string; network: string }[];
}
