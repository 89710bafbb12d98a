/**
 * `connectLnd`: from the `--rpcserver`/`--tlscertpath`/`--macaroonpath`/`--network` settings to a
 * checked {@linkcode LndClient}: files read, connection proven with `GetInfo`, and lnd's chain
 * network equal to the one loopkit was told to use.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import { ExitCode, LoopkitError, usageError } from "../core/errors.ts";
import { GrpcLndClient } from "./grpc_client.ts";
import { openLndRpc } from "./rpc.ts";
import type { LndClient, LndInfo } from "./types.ts";

/** Default deadline for reaching lnd (the first `GetInfo`), ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** Settings of {@linkcode connectLnd} (the global flags of the same names). */
export interface ConnectLndConfig {
  /** `--rpcserver`, `host:port`. */
  rpcServer: string;
  /** `--tlscertpath`, lnd's `tls.cert` (PEM). */
  tlsCertPath: string;
  /** `--macaroonpath`, e.g. `admin.macaroon` (binary). */
  macaroonPath: string;
  /** `--network`: mainnet, testnet, testnet4, signet, regtest or simnet. */
  network: string;
  /** Deadline for reaching lnd, ms (default {@linkcode DEFAULT_CONNECT_TIMEOUT_MS}). */
  connectTimeoutMs?: number;
  /** Deadline of each later call, ms (default 30 000). */
  callTimeoutMs?: number;
  /** TLS server name override (see `LndRpcOptions.tlsServerName`). */
  tlsServerName?: string;
}

/**
 * The network name lnd reports in `GetInfo.chains[].network` for a loopkit `--network` value.
 * lnd normalises chain parameter names: testnet3 is reported as `testnet`, testnet4 as
 * `testnet4`; mainnet, signet, regtest and simnet as themselves (lnd `lncfg.NormalizeNetwork`).
 */
export function lndNetworkName(network: string): string {
  return network === "testnet3" ? "testnet" : network;
}

async function readFlagFile(path: string, flag: string, what: string): Promise<Uint8Array> {
  let data: Uint8Array;
  try {
    data = await Deno.readFile(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "file not found"
      : err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable
      ? "permission denied"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new LoopkitError(
      "config_invalid",
      `Cannot read ${what} "${path}" (${flag}): ${why}`,
      ExitCode.Usage,
      {
        cause: err,
      },
    );
  }
  if (data.length === 0) {
    throw usageError(`Cannot read ${what} "${path}" (${flag}): the file is empty`, "config_invalid");
  }
  return data;
}

/**
 * Checks that `pem` holds at least one PEM certificate that parses (lnd's `tls.cert`), so a wrong file is named
 * as such instead of surfacing as a TLS verification failure ("self-signed certificate") at connect time.
 * @throws {LoopkitError} `config_invalid` (exit 2) naming `--tlscertpath` and the file
 */
export function checkTlsCertificate(pem: Uint8Array, path: string): void {
  const text = new TextDecoder().decode(pem);
  const blocks = [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)];
  const bad = (why: string) =>
    usageError(`lnd TLS certificate "${path}" (--tlscertpath) ${why}`, "config_invalid");
  if (blocks.length === 0) {
    throw bad("is not a PEM certificate (no -----BEGIN CERTIFICATE----- block): point it at lnd's tls.cert");
  }
  for (const b of blocks) {
    try {
      new X509Certificate(b[0]);
    } catch (err) {
      throw bad(
        `holds a certificate that does not parse (${(err as Error).message}): point it at lnd's tls.cert`,
      );
    }
  }
}

/**
 * Reads lnd's TLS certificate and macaroon, connects, calls `GetInfo` and checks the network.
 *
 * Permissions: `--allow-read` (the two files and lnd's `.proto` files), `--allow-net`.
 *
 * @returns the client (caller closes it) and lnd's `GetInfo`
 * @throws {LoopkitError} `config_invalid` (exit 2) when a file is missing, unreadable or empty,
 *   naming the flag and path, or a certificate file that holds no parsable PEM certificate; `network_mismatch` (exit 2) when lnd runs on another network;
 *   `lnd_unreachable`/`lnd_not_ready` (exit 75), `lnd_auth`/`lnd_tls` (exit 2) from the first
 *   call (see `lnd/errors.ts`)
 */
export async function connectLnd(cfg: ConnectLndConfig): Promise<{ lnd: LndClient; info: LndInfo }> {
  const tlsCert = await readFlagFile(cfg.tlsCertPath, "--tlscertpath", "lnd TLS certificate");
  checkTlsCertificate(tlsCert, cfg.tlsCertPath);
  const macaroon = await readFlagFile(cfg.macaroonPath, "--macaroonpath", "lnd macaroon");
  const rpc = openLndRpc({ rpcServer: cfg.rpcServer, tlsCert, macaroon, tlsServerName: cfg.tlsServerName });
  const lnd = new GrpcLndClient(rpc, { callTimeoutMs: cfg.callTimeoutMs });
  try {
    const info = await lnd.getInfo({
      deadlineMs: cfg.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      phase: "connect",
    });
    const want = lndNetworkName(cfg.network);
    const networks = [...new Set(info.chains.map((c) => c.network))];
    if (networks.length !== 1 || networks[0] !== want) {
      throw usageError(
        `lnd at ${cfg.rpcServer} runs on network "${networks.join(",") || "(none)"}" but --network is ` +
          `"${cfg.network}": point --rpcserver/--macaroonpath at the ${cfg.network} lnd or change --network`,
        "network_mismatch",
      );
    }
    return { lnd, info };
  } catch (err) {
    lnd.close();
    throw err;
  }
}
