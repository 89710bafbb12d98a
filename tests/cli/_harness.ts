/**
 * Runs the real `loopkit` CLI as a subprocess, the way an operator or a cron job would.
 *
 * @module
 */
import { encodeL402Identifier } from "../../core/l402/identifier.ts";
import { encodeMacaroonV2, mintMacaroon } from "../../core/l402/macaroon.ts";
import { encodeTokenFile } from "../../core/l402/token_file.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;

/** Result of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Parsed stdout when it is JSON. */
  json?: Record<string, unknown>;
}

/**
 * The V8 flags loopkit ships with (deno.json's `loopkit` and `compile` tasks, so the compiled binary embeds
 * them): a young generation of at most 2 MB per semi-space, and the memory of dead ArrayBuffers released
 * during the garbage collection that finds them instead of later by a background task. Memory, not speed: the
 * first `deposits sync` at 100 000 wallet UTXOs reads ~50 MB of short-lived HTTP/2 chunk buffers, and with
 * V8's defaults (semi-spaces up to 16 MB, concurrent ArrayBuffer sweeping) its peak was ~45 MB higher
 * (bench/README.md). Neither flag limits the heap; the CLI tests and the benches run the CLI with them.
 * (`--single-threaded-gc` saved as much, but with it the test process's fake HTTP/2 servers (Deno's
 * `node:http2`) aborted on an nghttp2 assertion in 3 of 4 runs of tests/cli/loopin_test.ts.)
 */
export const V8_FLAGS = "--v8-flags=--max-semi-space-size=2";

/**
 * `deno` arguments that run the CLI from source exactly as `deno task loopkit` does: the V8 flags and the
 * permissions `deno task compile` fixes into the binary.
 */
export const CLI_RUN_ARGS: readonly string[] = [
  "run",
  "--quiet",
  V8_FLAGS,
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
  MAIN,
];

const HOOKED_MAIN = new URL("./_hooked_main.ts", import.meta.url).pathname;

/** Environment variables only the tests' entry point `_hooked_main.ts` reads (the shipped CLI ignores them). */
const TEST_HOOK_ENV = ["LOOPKIT_TEST_STOP_AT", "LOOPKIT_TEST_FLIP_SIG"];

/**
 * {@linkcode CLI_RUN_ARGS}, with the tests' entry point `_hooked_main.ts` (same permissions) in place of
 * `cli/main.ts` when `env` sets one of its test-hook variables.
 */
export function cliRunArgs(env: Record<string, string> = {}): string[] {
  if (!TEST_HOOK_ENV.some((k) => k in env)) return [...CLI_RUN_ARGS];
  return CLI_RUN_ARGS.map((a) => a === MAIN ? HOOKED_MAIN : a);
}

/** Where an lnd's gRPC endpoint and credentials are. */
export interface LndEndpoint {
  rpcServer: string;
  tlsCertPath: string;
  macaroonPath: string;
}

/** Global flags pointing `loopkit` (regtest) at `lnd`, with its data under `loopdir`. */
export function lndFlags(lnd: LndEndpoint, loopdir: string): string[] {
  return [
    "--network",
    "regtest",
    "--loopdir",
    loopdir,
    "--rpcserver",
    lnd.rpcServer,
    "--tlscertpath",
    lnd.tlsCertPath,
    "--macaroonpath",
    lnd.macaroonPath,
  ];
}

/** Runs `loopkit <args>` with the CLI's exact permissions. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [...cliRunArgs(env), ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const o = await cmd.output();
  const stdout = new TextDecoder().decode(o.stdout);
  const stderr = new TextDecoder().decode(o.stderr);
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code: o.code, stdout, stderr, json };
}

/** A paid (or pending) `l402.token` file, minted like an L402 server would. */
export function makeTokenFile(opts: { tokenId?: Uint8Array; createdAtNs?: bigint; paid?: boolean } = {}): {
  bytes: Uint8Array;
  tokenIdHex: string;
  createdAtNs: bigint;
} {
  const preimage = crypto.getRandomValues(new Uint8Array(32));
  const paymentHash = sha256(preimage);
  const tokenId = opts.tokenId ?? crypto.getRandomValues(new Uint8Array(32));
  const identifier = encodeL402Identifier({ version: 0, paymentHash, tokenId });
  const mac = mintMacaroon(crypto.getRandomValues(new Uint8Array(32)), identifier, "loop.test");
  const createdAtNs = opts.createdAtNs ?? 1776159001000000123n;
  const bytes = encodeTokenFile({
    macaroonBytes: encodeMacaroonV2(mac),
    paymentHash,
    preimage: opts.paid === false ? new Uint8Array(32) : preimage,
    amountPaidMsat: 1_000_000n,
    routingFeePaidMsat: 10n,
    createdAtNs,
  });
  return {
    bytes,
    tokenIdHex: bytesToHex(tokenId),
    createdAtNs,
  };
}

/** A `loopkit` subprocess started by {@linkcode spawnCli}. */
export interface SpawnedCli {
  /** The child process (send it signals with `kill`). */
  child: Deno.ChildProcess;
  /** Waits for the exit and returns the result like {@linkcode runCli}. */
  done(): Promise<CliResult>;
}

/** Starts `loopkit <args>` with the CLI's exact permissions, without waiting for it. */
export function spawnCli(args: string[], env: Record<string, string> = {}): SpawnedCli {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...cliRunArgs(env), ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  return {
    child,
    async done() {
      const o = await output;
      const stdout = new TextDecoder().decode(o.stdout);
      const stderr = new TextDecoder().decode(o.stderr);
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      return { code: o.code, stdout, stderr, json };
    },
  };
}

/** Polls `cond` every 20 ms until it holds; throws after `timeoutMs` naming `what`. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
