/**
 * Lightning Loop's own client (loopd + the `loop` CLI, built by `.ci/install-regtest.sh` from the Go module
 * proxy) on a regtest lnd node, pointed at the local swap server: the reference peer of the loop-in interop
 * test. loopd gets its own loop directory, talks to its lnd with the admin macaroon, and reaches the swap
 * server over TLS only (`--server.tlspath`): loopd refuses to send L402 credentials over plaintext.
 *
 * Test-only code. Permissions: `--allow-run` (loopd, loop), `--allow-read`, `--allow-write` (loop
 * directory), `--allow-net` (127.0.0.1).
 *
 * @example
 * ```ts ignore
 * const loopd = await startLoopd({ binaries, dir, lnd: net.carol, serverHost: server.address, serverTlsCertPem });
 * try {
 *   const addr = await loopd.cliJson<{ address: string }>(["static", "new"], { stdin: "y\n" });
 * } finally {
 *   await loopd.stop();
 * }
 * ```
 *
 * @module
 */
import { join } from "node:path";
import type { LndNode } from "./lnd_node.ts";
import { freePorts, type ManagedProcess, spawnLogged, tailFile, waitFor } from "./_process.ts";

/** Options of {@linkcode startLoopd}. */
export interface StartLoopdOptions {
  /** Paths of the loopd and loop executables (`regtestBinaries()`'s `loopd` / `loop`). */
  binaries: { loopd: string; loop: string };
  /** loopd's `--loopdir`, created if missing (data under `<dir>/regtest/`). Reusing it restarts that loopd. */
  dir: string;
  /** The lnd node loopd drives (admin macaroon, TLS certificate, gRPC host). */
  lnd: LndNode;
  /** The swap server's `host:port` (`--server.host`). */
  serverHost: string;
  /** The swap server's TLS certificate, PEM (written to `<dir>/swapserver-tls.cert` for `--server.tlspath`). */
  serverTlsCertPem: Uint8Array;
  /** Extra loopd flags, e.g. `--debuglevel=trace`. */
  extraArgs?: string[];
  /** Bound of the start-up wait in milliseconds (default 60 000). */
  timeoutMs?: number;
}

/** What one `loop` CLI run gave. */
export interface LoopCliResult {
  /** Exit code. */
  code: number;
  stdout: string;
  stderr: string;
}

/** A running loopd. */
export interface Loopd {
  /** `--loopdir`. */
  readonly dir: string;
  /** loopd's gRPC `host:port` (the CLI's `--rpcserver`). */
  readonly rpcServer: string;
  /** loopd's own TLS certificate (`<dir>/regtest/tls.cert`). */
  readonly tlsCertPath: string;
  /** loopd's macaroon (`<dir>/regtest/loop.macaroon`). */
  readonly macaroonPath: string;
  /** loopd's main log (`<dir>/logs/regtest/loopd.log`). */
  readonly logPath: string;
  /** The loopd process; stdout/stderr in `process.logPath`. */
  readonly process: ManagedProcess;
  /**
   * Runs `loop --network regtest --rpcserver … --tlscertpath … --macaroonpath … <args>` and returns its exit
   * code and output; never throws on a non-zero exit.
   *
   * @param opts.stdin text fed to the CLI's stdin (e.g. `"y\n"` for a confirmation prompt)
   */
  cli(args: string[], opts?: { stdin?: string; timeoutMs?: number }): Promise<LoopCliResult>;
  /**
   * {@linkcode cli} that must exit 0 and print one JSON object (lnd's proto JSON: snake_case names, 64-bit
   * integers as strings, bytes as hex); any text before it (prompts, warnings) is skipped.
   *
   * @throws Error quoting the command, exit code, stdout and stderr when it fails or prints no JSON object
   */
  cliJson<T = Record<string, unknown>>(
    args: string[],
    opts?: { stdin?: string; timeoutMs?: number },
  ): Promise<T>;
  /** Stops loopd (SIGTERM, then SIGKILL after 15 s). Idempotent. */
  stop(): Promise<void>;
}

/**
 * Parses the JSON object a `loop` command prints last (lnd's indented proto JSON, to the end of the output);
 * prompts and warnings before it are skipped.
 *
 * @throws Error when no JSON object is found or it does not parse
 */
export function parseLoopJson<T>(stdout: string): T {
  // A prompt without a newline (`CONTINUE WITH NEW ADDRESS? (y/n): `) can share the object's first line, so
  // try each `{` from the start until the rest of the output parses.
  for (let i = stdout.indexOf("{"); i >= 0; i = stdout.indexOf("{", i + 1)) {
    try {
      return JSON.parse(stdout.slice(i)) as T;
    } catch { /* not the start of the object */ }
  }
  throw new Error("no JSON object in the output");
}

/**
 * Starts loopd on regtest for `lnd` against the swap server at `serverHost` over TLS, and waits until its RPC
 * answers `loop getinfo`.
 *
 * @throws Error when loopd exits or does not answer within `timeoutMs`, with the tail of its log
 */
export async function startLoopd(opts: StartLoopdOptions): Promise<Loopd> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  await Deno.mkdir(opts.dir, { recursive: true });
  const [rpcPort, restPort] = freePorts(2);
  const rpcServer = `127.0.0.1:${rpcPort}`;
  const serverCertPath = join(opts.dir, "swapserver-tls.cert");
  await Deno.writeFile(serverCertPath, opts.serverTlsCertPem);
  const netDir = join(opts.dir, "regtest");
  const tlsCertPath = join(netDir, "tls.cert");
  const macaroonPath = join(netDir, "loop.macaroon");
  const logPath = join(opts.dir, "logs", "regtest", "loopd.log");
  const args = [
    "--network=regtest",
    `--loopdir=${opts.dir}`,
    `--rpclisten=${rpcServer}`,
    `--restlisten=127.0.0.1:${restPort}`,
    `--lnd.host=${opts.lnd.rpcServer}`,
    `--lnd.macaroonpath=${opts.lnd.adminMacaroonPath}`,
    `--lnd.tlspath=${opts.lnd.tlsCertPath}`,
    `--server.host=${opts.serverHost}`,
    `--server.tlspath=${serverCertPath}`,
    "--debuglevel=debug",
    ...(opts.extraArgs ?? []),
  ];
  // loopd reads <loopdir>/loopd.conf; an empty one keeps a user's config out of the test.
  await Deno.writeTextFile(join(opts.dir, "loopd.conf"), "", { create: true, append: true });
  const process = await spawnLogged(
    `loopd (${opts.lnd.name})`,
    opts.binaries.loopd,
    args,
    join(opts.dir, "loopd-stdout.log"),
  );

  const cli = async (cliArgs: string[], o: { stdin?: string; timeoutMs?: number } = {}) => {
    const cmd = new Deno.Command(opts.binaries.loop, {
      args: [
        "--network",
        "regtest",
        "--rpcserver",
        rpcServer,
        "--tlscertpath",
        tlsCertPath,
        "--macaroonpath",
        macaroonPath,
        ...cliArgs,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    });
    const child = cmd.spawn();
    const writer = child.stdin.getWriter();
    if (o.stdin !== undefined) await writer.write(new TextEncoder().encode(o.stdin));
    await writer.close();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, o.timeoutMs ?? 120_000);
    try {
      const out = await child.output();
      return {
        code: out.code,
        stdout: new TextDecoder().decode(out.stdout),
        stderr: new TextDecoder().decode(out.stderr),
      };
    } finally {
      clearTimeout(timer);
    }
  };
  const cliJson = async <T>(cliArgs: string[], o: { stdin?: string; timeoutMs?: number } = {}) => {
    const r = await cli(cliArgs, o);
    const what = `loop ${cliArgs.join(" ")}`;
    if (r.code !== 0) {
      throw new Error(`${what} exited with ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    }
    try {
      return parseLoopJson<T>(r.stdout);
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    }
  };

  try {
    await waitFor(`loopd (${opts.lnd.name}) to answer loop getinfo`, async () => {
      await Deno.stat(macaroonPath);
      const r = await cli(["getinfo"], { timeoutMs: 10_000 });
      if (r.code !== 0) throw new Error(r.stderr.trim() || r.stdout.trim());
      return true;
    }, { timeoutMs, process, intervalMs: 500 });
  } catch (e) {
    await process.stop(5_000);
    throw new Error(`${(e as Error).message}\nlast lines of ${logPath}:\n${await tailFile(logPath)}`, {
      cause: e,
    });
  }

  return {
    dir: opts.dir,
    rpcServer,
    tlsCertPath,
    macaroonPath,
    logPath,
    process,
    cli,
    cliJson,
    stop: () => process.stop(15_000),
  };
}
