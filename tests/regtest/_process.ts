/**
 * Child-process plumbing for the regtest harness: spawn with output to a log file, bounded waits that
 * name what they waited for, free loopback ports, and a kill-everything handler for SIGINT and unload.
 *
 * Test-only code: it runs btcd and lnd binaries built by `.ci/install-regtest.sh`.
 *
 * @module
 */

/** A daemon started by {@linkcode spawnLogged}; its stdout and stderr go to {@linkcode logPath}. */
export interface ManagedProcess {
  /** Short name used in messages, e.g. `btcd`, `lnd alice`. */
  readonly name: string;
  /** File that receives the process's stdout and stderr. */
  readonly logPath: string;
  /** Exit status once the process ended, else undefined. */
  readonly exitStatus: Deno.CommandStatus | undefined;
  /**
   * Stops the process: SIGTERM, then SIGKILL after `graceMs` (default 10 000 ms). Resolves once it
   * exited and its log file is closed. Idempotent.
   */
  stop(graceMs?: number): Promise<void>;
  /** Sends SIGKILL without waiting (used by the SIGINT / unload handler). */
  killNow(): void;
}

const live = new Set<ManagedProcess>();
let handlersInstalled = false;

function killAllNow(): void {
  for (const p of live) p.killNow();
}

function onSigint(): void {
  killAllNow();
  Deno.exit(130);
}

function onUnload(): void {
  killAllNow();
}

function syncHandlers(): void {
  if (live.size > 0 && !handlersInstalled) {
    Deno.addSignalListener("SIGINT", onSigint);
    globalThis.addEventListener("unload", onUnload);
    handlersInstalled = true;
  } else if (live.size === 0 && handlersInstalled) {
    Deno.removeSignalListener("SIGINT", onSigint);
    globalThis.removeEventListener("unload", onUnload);
    handlersInstalled = false;
  }
}

/**
 * Starts `command args…` with stdin closed and stdout+stderr appended to `logPath`.
 * The process is registered so SIGINT or process unload kills it.
 *
 * @param name short name for messages
 * @param command executable path
 * @param args arguments
 * @param logPath file to create for the output
 * @returns the running process
 * @throws Deno.errors.NotFound when `command` does not exist
 */
export async function spawnLogged(
  name: string,
  command: string,
  args: string[],
  logPath: string,
): Promise<ManagedProcess> {
  const log = await Deno.open(logPath, { create: true, write: true, append: true });
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, { args, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
  } catch (e) {
    log.close();
    throw e;
  }
  // Both streams go to one file; each write is a whole chunk, so lines may interleave but not tear.
  const writer = log.writable.getWriter();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) await writer.write(chunk);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).finally(() => writer.close());
  let exitStatus: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => {
    exitStatus = s;
    return s;
  });
  let stopping: Promise<void> | undefined;
  const proc: ManagedProcess = {
    name,
    logPath,
    get exitStatus() {
      return exitStatus;
    },
    killNow() {
      if (exitStatus === undefined) {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
    },
    stop(graceMs = 10_000) {
      stopping ??= (async () => {
        if (exitStatus === undefined) {
          try {
            child.kill("SIGTERM");
          } catch { /* already gone */ }
          let timer: ReturnType<typeof setTimeout> | undefined;
          const timedOut = await Promise.race([
            status.then(() => false),
            new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), graceMs)),
          ]);
          clearTimeout(timer);
          if (timedOut) proc.killNow();
        }
        await status;
        await pumps.catch(() => {});
        live.delete(proc);
        syncHandlers();
      })();
      return stopping;
    },
  };
  live.add(proc);
  syncHandlers();
  return proc;
}

/**
 * The last `lines` lines of a log file, or a note that it cannot be read.
 *
 * @param path log file
 * @param lines how many lines (default 40)
 */
export async function tailFile(path: string, lines = 40): Promise<string> {
  try {
    const text = await Deno.readTextFile(path);
    return text.split("\n").slice(-lines - 1).join("\n");
  } catch (e) {
    return `(cannot read ${path}: ${(e as Error).message})`;
  }
}

/** Options of {@linkcode waitFor}. */
export interface WaitOptions {
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  /** Pause between polls in milliseconds (default 200). */
  intervalMs?: number;
  /** Fail at once if this process exits while waiting, and quote its log in the error. */
  process?: ManagedProcess;
}

/**
 * Polls `probe` until it returns a value other than `undefined` or `false`; errors thrown by `probe`
 * count as "not yet" (the last one is quoted on timeout).
 *
 * @param what what is waited for, used in the error, e.g. `lnd alice to report synced_to_chain`
 * @param probe one poll
 * @returns the probe's first accepted value
 * @throws Error `Timed out after N ms waiting for <what>` (with the last probe error and the log tail
 *   of `options.process`), or `<name> exited with code C while waiting for <what>`
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  options: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 200;
  let lastError: unknown;
  while (true) {
    const proc = options.process;
    if (proc?.exitStatus !== undefined) {
      throw new Error(
        `${proc.name} exited with code ${proc.exitStatus.code} while waiting for ${what}; ` +
          `last lines of ${proc.logPath}:\n${await tailFile(proc.logPath)}`,
      );
    }
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const cause = lastError === undefined
        ? ""
        : `; last error: ${(lastError as Error).message ?? lastError}`;
      const tail = proc ? `\nlast lines of ${proc.logPath}:\n${await tailFile(proc.logPath)}` : "";
      throw new Error(`Timed out after ${options.timeoutMs} ms waiting for ${what}${cause}${tail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/**
 * Reserves `count` distinct free TCP ports on 127.0.0.1 (bound together, then released; another
 * process could take one in between, which is unlikely on a test machine).
 */
export function freePorts(count: number): number[] {
  const listeners = Array.from({ length: count }, () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}
