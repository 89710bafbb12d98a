/**
 * Shared set-up of the regtest acceptance tests: the binary gate (ignored without the binaries unless
 * `CI=true`, where a missing binary fails the test) and {@linkcode regtestTest}, which runs a test body
 * against btcd + lnd alice and bob (alice→bob channel), the local swap server with bob's invoices, and a
 * temporary loop directory, and stops and removes all of them afterwards.
 *
 * @module
 */
import { type Regtest, regtestBinaries, startRegtest } from "./harness.ts";
import type { LndNode } from "./lnd_node.ts";
import { cliFlagsFor, type lndInvoices, startSwapPeer } from "./swap_peer.ts";
import type { LocalSwapServer } from "../swapserver/server.ts";
import { type CliResult, runCli } from "../cli/_harness.ts";

const bins = await regtestBinaries();

/** Required binaries (btcd, lnd) that are missing; see `.ci/install-regtest.sh`. */
export const missingBinaries: readonly string[] = bins.missing;

/** True when the regtest tests are to be ignored: binaries missing and not under `CI=true`. */
export const skipRegtest: boolean = missingBinaries.length > 0 && Deno.env.get("CI") !== "true";

/**
 * Fails a test that runs without the binaries (only reached under `CI=true`, where it is not ignored).
 *
 * @throws Error naming the missing binaries
 */
export function assertBinaries(): void {
  if (missingBinaries.length > 0) {
    throw new Error(`Regtest binaries missing under CI=true: ${missingBinaries.join(", ")}`);
  }
}

/** Paths of Lightning Loop's binaries (loopd, loop) that are missing, plus any missing btcd/lnd. */
export const missingLoopBinaries: readonly string[] = [...bins.missing, ...bins.missingLoop];

/**
 * True when the tests that run Lightning Loop's own client (loopd + loop) are to be ignored: a binary
 * missing (btcd, lnd, loopd or loop) and not under `CI=true`.
 */
export const skipLoopd: boolean = missingLoopBinaries.length > 0 && Deno.env.get("CI") !== "true";

/**
 * Fails a loopd interop test that runs without loopd/loop (only reached under `CI=true`).
 *
 * @throws Error naming the missing binaries
 */
export function assertLoopBinaries(): void {
  if (missingLoopBinaries.length > 0) {
    throw new Error(`Loop binaries missing under CI=true: ${missingLoopBinaries.join(", ")}`);
  }
}

/** What {@linkcode regtestTest} hands the test body. */
export interface RegtestContext {
  /** btcd + lnd alice and bob with an alice→bob channel. */
  net: Regtest & { readonly alice: LndNode; readonly bob: LndNode };
  /** The local swap server; its L402 invoices come from bob's lnd, it pays swaps from bob, its chain is btcd. */
  server: LocalSwapServer;
  /** Count of the invoices bob issued for the swap server. */
  invoices: ReturnType<typeof lndInvoices>;
  /** A temporary loop directory (removed after the test). */
  loopdir: string;
  /** `loopkit <args>` against alice with its data under {@linkcode loopdir}. */
  cli(...args: string[]): Promise<CliResult>;
  /** `loopkit <args>` against alice with its data under `dir`. */
  cliIn(dir: string, ...args: string[]): Promise<CliResult>;
  /** `loopkit <args>` against `node` (e.g. bob, or alice rebuilt from her seed) with its data under `dir`. */
  cliAs(node: LndNode, dir: string, ...args: string[]): Promise<CliResult>;
  /**
   * `loopkit [--json] address new` against alice and the local swap server (plain gRPC), data under `dir`
   * (default {@linkcode loopdir}); `json` defaults to true.
   */
  newAddress(dir?: string, opts?: { json?: boolean }): Promise<CliResult>;
  /** A further temporary directory, removed after the test. */
  tempDir(prefix: string): Promise<string>;
}

/** Options of {@linkcode regtestTest}. */
export interface RegtestTestOptions {
  /** CSV expiry in blocks the local swap server hands out for a new static address. */
  expiry: number;
}

/**
 * Registers a Deno test that runs `fn` on a fresh regtest network with the local swap server. Ignored
 * when {@linkcode skipRegtest}; resource and op sanitizers are off (lnd's gRPC channels outlive steps).
 * Everything started is stopped, and every temporary directory removed, whether `fn` passes or throws.
 */
export function regtestTest(
  name: string,
  opts: RegtestTestOptions,
  fn: (ctx: RegtestContext, t: Deno.TestContext) => Promise<void>,
): void {
  Deno.test({
    name,
    ignore: skipRegtest,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      assertBinaries();
      const dirs: string[] = [];
      const net = await startRegtest({ lndNodes: ["alice", "bob"] });
      try {
        const { server, invoices } = await startSwapPeer(net.bob, {
          expiry: opts.expiry,
          btcd: net.btcd.rpc,
        });
        try {
          const tempDir = async (prefix: string) => {
            const dir = await Deno.makeTempDir({ prefix });
            dirs.push(dir);
            return dir;
          };
          const loopdir = await tempDir("loopkit-regtest-");
          const cliAs = (node: LndNode, dir: string, ...args: string[]) =>
            runCli([...cliFlagsFor(node, dir), ...args]);
          const cliIn = (dir: string, ...args: string[]) => cliAs(net.alice, dir, ...args);
          const swapServerFlags = ["--swapserver", server.address, "--no-swapserver-tls"];
          await fn({
            net,
            server,
            invoices,
            loopdir,
            cli: (...args) => cliIn(loopdir, ...args),
            cliIn,
            cliAs,
            newAddress: (dir = loopdir, { json = true } = {}) =>
              cliIn(dir, ...(json ? ["--json"] : []), "address", "new", ...swapServerFlags),
            tempDir,
          }, t);
        } finally {
          await server.stop();
        }
      } finally {
        await net.stop();
        for (const dir of dirs) await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
