/**
 * A regtest btcd process and a small JSON-RPC client for it.
 *
 * btcd serves JSON-RPC over TLS only (lnd's btcd backend requires it), with a self-signed certificate it
 * generates at start. Deno's `fetch` rejects that certificate (it is marked as a CA, rustls/webpki refuses
 * a CA as end entity), so the client uses `node:https` with the certificate as its only trusted root.
 *
 * @module
 */

import https from "node:https";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { type ManagedProcess, spawnLogged, waitFor } from "./_process.ts";

/** Where and how to reach a running btcd. */
export interface BtcdEndpoint {
  /** `host:port` of the JSON-RPC server. */
  rpcHost: string;
  /** RPC user name. */
  rpcUser: string;
  /** RPC password. */
  rpcPass: string;
  /** Path of btcd's RPC TLS certificate (PEM), passed to lnd as `--btcd.rpccert`. */
  rpcCertPath: string;
  /** `host:port` of the P2P listener. */
  p2pHost: string;
}

/** Verbose `getrawtransaction` fields the harness reads. */
export interface BtcdRawTxVerbose {
  txid: string;
  hex: string;
  /** Present once the transaction is in a block. */
  blockhash?: string;
  confirmations?: number;
}

/** Verbose `getblockheader` fields the harness reads. */
export interface BtcdBlockHeader {
  hash: string;
  height: number;
  confirmations: number;
  previousblockhash?: string;
}

/** A JSON-RPC error returned by btcd (`code`, `message` as btcd sent them). */
export class BtcdRpcError extends Error {
  /** btcd's numeric error code, e.g. -5 for "no information for transaction". */
  readonly code: number;
  /**
   * @param method RPC method called
   * @param code btcd error code
   * @param message btcd error message
   */
  constructor(method: string, code: number, message: string) {
    super(`btcd ${method} failed with code ${code}: ${message}`);
    this.name = "BtcdRpcError";
    this.code = code;
  }
}

/** JSON-RPC client for btcd over TLS. Stateless: each call is one HTTPS request without keep-alive. */
export class BtcdRpc {
  readonly #endpoint: BtcdEndpoint;
  #cert: string | undefined;
  #id = 0;

  /** @param endpoint where btcd listens and its credentials */
  constructor(endpoint: BtcdEndpoint) {
    this.#endpoint = endpoint;
  }

  /**
   * Calls one JSON-RPC method.
   *
   * @param method btcd RPC name, e.g. `getbestblock`
   * @param params positional parameters
   * @param timeoutMs request timeout (default 30 000 ms)
   * @returns the `result` member
   * @throws BtcdRpcError when btcd answers with an error; Error on transport failure or timeout
   */
  async call<T>(method: string, params: unknown[] = [], timeoutMs = 30_000): Promise<T> {
    this.#cert ??= await Deno.readTextFile(this.#endpoint.rpcCertPath);
    const [host, port] = splitHostPort(this.#endpoint.rpcHost);
    const body = JSON.stringify({ jsonrpc: "1.0", id: ++this.#id, method, params });
    const auth = Buffer.from(`${this.#endpoint.rpcUser}:${this.#endpoint.rpcPass}`).toString("base64");
    const text = await new Promise<string>((resolve, reject) => {
      const req = https.request({
        host,
        port,
        method: "POST",
        path: "/",
        ca: this.#cert,
        agent: false,
        timeout: timeoutMs,
        headers: {
          authorization: `Basic ${auth}`,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          connection: "close",
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const s = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode === 401) reject(new Error(`btcd ${method}: HTTP 401 (wrong RPC credentials)`));
          else resolve(s);
        });
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`btcd ${method}: no answer within ${timeoutMs} ms`)));
      req.on("error", reject);
      req.end(body);
    });
    let reply: { result: T; error: { code: number; message: string } | null };
    try {
      reply = JSON.parse(text);
    } catch {
      throw new Error(`btcd ${method}: reply is not JSON: ${text.slice(0, 200)}`);
    }
    if (reply.error) throw new BtcdRpcError(method, reply.error.code, reply.error.message);
    return reply.result;
  }

  /** `generate n`: mines `n` blocks to btcd's `--miningaddr`; returns their hashes in order. */
  generate(n: number): Promise<string[]> {
    return this.call<string[]>("generate", [n], 60_000 + n * 1_000);
  }

  /** `getbestblock`: tip hash and height. */
  getBestBlock(): Promise<{ hash: string; height: number }> {
    return this.call("getbestblock");
  }

  /** `getblock hash 1`: the txids of a block (coinbase first) and its height. */
  getBlockTxids(hash: string): Promise<{ height: number; tx: string[] }> {
    return this.call("getblock", [hash, 1]);
  }

  /** `getrawtransaction txid 0`: raw transaction hex (needs `--txindex` for confirmed non-mempool txs). */
  getRawTransactionHex(txid: string): Promise<string> {
    return this.call("getrawtransaction", [txid, 0]);
  }

  /** `getrawtransaction txid 1`. */
  getRawTransactionVerbose(txid: string): Promise<BtcdRawTxVerbose> {
    return this.call("getrawtransaction", [txid, 1]);
  }

  /** `getblockheader hash true`. */
  getBlockHeader(hash: string): Promise<BtcdBlockHeader> {
    return this.call("getblockheader", [hash, true]);
  }

  /** `sendrawtransaction hex`: broadcasts; returns the txid. */
  sendRawTransaction(hex: string): Promise<string> {
    return this.call("sendrawtransaction", [hex]);
  }

  /** `getrawmempool`: txids in btcd's mempool. */
  getRawMempool(): Promise<string[]> {
    return this.call("getrawmempool");
  }
}

function splitHostPort(hostPort: string): [string, number] {
  const i = hostPort.lastIndexOf(":");
  return [hostPort.slice(0, i), Number(hostPort.slice(i + 1))];
}

/**
 * The endpoint btcd will have when started in `dir` with these ports: fixed paths inside `dir` and a
 * random RPC password. Made before start so the RPC client (and the miner wallet) exist first.
 *
 * @param dir btcd's directory
 * @param rpcPort RPC port on 127.0.0.1
 * @param p2pPort P2P port on 127.0.0.1
 */
export function btcdEndpoint(dir: string, rpcPort: number, p2pPort: number): BtcdEndpoint {
  return {
    rpcHost: `127.0.0.1:${rpcPort}`,
    rpcUser: "loopkit",
    rpcPass: crypto.randomUUID(),
    rpcCertPath: join(dir, "rpc.cert"),
    p2pHost: `127.0.0.1:${p2pPort}`,
  };
}

/** Options of {@linkcode startBtcd}. */
export interface StartBtcdOptions {
  /** btcd executable. */
  binary: string;
  /** Directory for btcd's data, certificate and log (created); the one given to {@linkcode btcdEndpoint}. */
  dir: string;
  /** From {@linkcode btcdEndpoint}. */
  endpoint: BtcdEndpoint;
  /** Address that `generate` pays (`--miningaddr`), a regtest address. */
  miningAddress: string;
  /** Start-up timeout in milliseconds (default 30 000). */
  timeoutMs?: number;
}

/** A running btcd: its process, endpoint and RPC client. */
export interface Btcd {
  /** The btcd process; its output is in `process.logPath`. */
  process: ManagedProcess;
  /** Endpoint and credentials. */
  endpoint: BtcdEndpoint;
  /** JSON-RPC client. */
  rpc: BtcdRpc;
}

/**
 * Starts btcd on regtest with `--txindex`, RPC over TLS on 127.0.0.1, and waits until RPC answers.
 *
 * @throws Error when btcd exits or RPC does not answer within the timeout (quotes btcd's log)
 */
export async function startBtcd(opts: StartBtcdOptions): Promise<Btcd> {
  await Deno.mkdir(opts.dir, { recursive: true });
  const endpoint = opts.endpoint;
  const args = [
    "--regtest",
    `--datadir=${join(opts.dir, "data")}`,
    `--logdir=${join(opts.dir, "logs")}`,
    `--configfile=${join(opts.dir, "btcd.conf")}`,
    `--rpccert=${endpoint.rpcCertPath}`,
    `--rpckey=${join(opts.dir, "rpc.key")}`,
    `--rpcuser=${endpoint.rpcUser}`,
    `--rpcpass=${endpoint.rpcPass}`,
    `--rpclisten=${endpoint.rpcHost}`,
    `--listen=${endpoint.p2pHost}`,
    "--txindex",
    "--nodnsseed",
    "--nobanning",
    `--miningaddr=${opts.miningAddress}`,
    "--debuglevel=info",
  ];
  // btcd reads btcd.conf from its home by default; an empty one keeps a user's config out of the test.
  await Deno.writeTextFile(join(opts.dir, "btcd.conf"), "", { create: true, append: true });
  const process = await spawnLogged("btcd", opts.binary, args, join(opts.dir, "btcd-stdout.log"));
  const rpc = new BtcdRpc(endpoint);
  try {
    await waitFor("btcd RPC to answer getbestblock", () => rpc.getBestBlock(), {
      timeoutMs: opts.timeoutMs ?? 30_000,
      process,
    });
  } catch (e) {
    await process.stop();
    throw e;
  }
  return { process, endpoint, rpc };
}
