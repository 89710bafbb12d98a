/**
 * SIGINT / SIGTERM as an abort of the current work, so a command can roll back what it wrote before it
 * exits 130 (README "Exit codes"), instead of the process vanishing mid-write.
 *
 * The CLI entry calls {@linkcode requestInterrupt} on a signal. When no rollback section is active
 * ({@linkcode rollbackActive} false) nothing needs undoing and the process exits at once. Inside a section
 * ({@linkcode withRollback}) the work sees the abort: waits wrapped in {@linkcode interruptible} reject with
 * the `interrupted` error (exit 130), {@linkcode throwIfInterrupted} between steps does the same, and the
 * section's own failure path rolls back, then the command exits 130.
 *
 * @module
 */
import { ExitCode, LoopkitError } from "./errors.ts";

let controller = new AbortController();
let active = 0;

/** The `interrupted` error (exit 130). */
export function interruptedError(detail = "nothing half-written is kept"): LoopkitError {
  return new LoopkitError("interrupted", `Interrupted; ${detail}`, ExitCode.Interrupted);
}

/** True once a signal arrived. */
export function isInterrupted(): boolean {
  return controller.signal.aborted;
}

/** Marks the process interrupted: every {@linkcode interruptible} wait rejects. */
export function requestInterrupt(): void {
  controller.abort(interruptedError());
}

/** Throws the `interrupted` error when a signal arrived. */
export function throwIfInterrupted(): void {
  if (controller.signal.aborted) throw interruptedError();
}

/**
 * Races `p` against a signal: resolves like `p`, or rejects with the `interrupted` error as soon as a
 * signal arrives (the underlying call is abandoned; the caller rolls back).
 */
export function interruptible<T>(p: Promise<T>): Promise<T> {
  const signal = controller.signal;
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.reject(interruptedError());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(interruptedError());
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Runs `fn` as a rollback section: while it runs, a signal does not end the process; `fn` is expected to
 * see it (through {@linkcode interruptible} / {@linkcode throwIfInterrupted}), undo its writes and throw.
 * When `fn` completed although a signal arrived (its last step was not interruptible), its work is kept
 * and the `interrupted` error says so, so the command still exits 130.
 *
 * @param kept what stays in place when `fn` completed despite the signal (for the message)
 */
export async function withRollback<T>(fn: () => Promise<T>, kept = "the completed step is kept"): Promise<T> {
  active++;
  let result: T;
  try {
    result = await fn();
  } finally {
    active--;
  }
  if (controller.signal.aborted) throw interruptedError(`the signal came after the last step: ${kept}`);
  return result;
}

/** True while a {@linkcode withRollback} section runs. */
export function rollbackActive(): boolean {
  return active > 0;
}

let hook: (() => boolean) | null = null;

/**
 * Lets a running command take a signal itself: while set, the CLI entry asks `fn` first, and when it answers
 * true the process does not exit (the command unwinds and exits 130 on its own; e.g. a loop-in initiation
 * before its signatures are handed out, cli/loopin.ts). `null` removes it.
 */
export function setInterruptHook(fn: (() => boolean) | null): void {
  hook = fn;
}

/** Asks the hook of {@linkcode setInterruptHook}; false when there is none. */
export function takeInterruptHook(): boolean {
  return hook?.() ?? false;
}

/** Resets the state (tests only). */
export function resetInterruptForTests(): void {
  controller = new AbortController();
  active = 0;
  hook = null;
}
