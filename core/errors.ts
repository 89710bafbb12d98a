/**
 * Errors and process exit codes shared by every loopkit subcommand.
 *
 * The exit-code table is part of loopkit's public contract (README "Exit codes"):
 * scripts and systemd units branch on it.
 *
 * @module
 */

/** Process exit codes (README "Exit codes"). */
export const ExitCode = {
  /** Success, or a documented no-op. */
  Ok: 0,
  /** Operational error: the command ran and failed (refused conflict, lnd rejected a call...). */
  Failure: 1,
  /** Usage or configuration error: bad flag, missing file, wrong network. */
  Usage: 2,
  /** Verification failed: a backup file is invalid or cannot be decrypted. */
  VerifyFailed: 3,
  /** Partial success: the main step succeeded, a follow-up step failed. */
  Partial: 4,
  /** Temporary failure: lnd unreachable, database busy. Retry later. */
  TempFail: 75,
  /** Interrupted by SIGINT / SIGTERM. */
  Interrupted: 130,
} as const;

/** One of the values of {@linkcode ExitCode}. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/**
 * An error that carries its exit code and a stable machine-readable code.
 *
 * `code` is a snake_case identifier rendered in `--json` error output
 * (e.g. `lnd_unreachable`, `network_mismatch`, `config_invalid`).
 */
export class LoopkitError extends Error {
  /** Stable snake_case error code for `--json` output. */
  readonly code: string;
  /** Process exit code for this error. */
  readonly exitCode: ExitCodeValue;

  /**
   * @param code stable snake_case identifier
   * @param message human sentence naming the file, field or flag and what to do
   * @param exitCode process exit code (default {@linkcode ExitCode.Failure})
   * @param options standard `ErrorOptions` (`cause`)
   */
  constructor(
    code: string,
    message: string,
    exitCode: ExitCodeValue = ExitCode.Failure,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "LoopkitError";
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** A usage or configuration error (exit 2). */
export function usageError(message: string, code = "usage"): LoopkitError {
  return new LoopkitError(code, message, ExitCode.Usage);
}

/** A temporary failure the caller may retry (exit 75). */
export function tempFailure(message: string, code = "temporary_failure", cause?: unknown): LoopkitError {
  return new LoopkitError(code, message, ExitCode.TempFail, { cause });
}

/** Maps any thrown value to an exit code: {@linkcode LoopkitError} keeps its own, anything else is 1. */
export function exitCodeOf(err: unknown): ExitCodeValue {
  return err instanceof LoopkitError ? err.exitCode : ExitCode.Failure;
}

/**
 * True for a file-system error meaning "this process may not write here": permission denied (EACCES,
 * EPERM), a read-only file system (EROFS), or Deno's permission sandbox (`NotCapable`).
 */
export function isUnwritableError(err: unknown): boolean {
  return err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable ||
    /EROFS|read-only file system|os error 30\b/i.test(String((err as Error)?.message ?? err));
}

/**
 * The one error for "cannot write the data directory" (README "Exit codes": a set-up problem, exit 2),
 * whichever command and file hit it: `data_dir_unwritable`.
 *
 * @param dir the data directory (or `--copy-to` directory) that cannot be written
 * @param path the file or directory the failing write was for
 * @param cause the file-system error
 */
export function dataDirUnwritable(dir: string, path: string, cause: unknown): LoopkitError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new LoopkitError(
    "data_dir_unwritable",
    `Cannot write the data directory "${dir}" ("${path}": ${why}): make it writable for this user, or point ` +
      "--loopdir / --db elsewhere",
    ExitCode.Usage,
    { cause },
  );
}
