/**
 * The rollback half of `loopkit recover` (spec/backup-and-recovery.md §4.9): what a failed (or
 * interrupted) write phase undoes — the token file this run published, the data directory it created —
 * and the error that says what was rolled back.
 *
 * @module
 */
import { dirname } from "node:path";
import { equalBytes } from "@noble/curves/utils.js";
import { dataDirUnwritable, ExitCode, isUnwritableError, LoopkitError } from "../errors.ts";
import type { RestoreFs } from "./restore_apply.ts";
import { messageOf } from "./restore_plan.ts";

/**
 * Removes the token file this run wrote, only while it still holds exactly those bytes, then
 * fsyncs its directory.
 * @returns rollback errors, each `remove <path>: <err>` ("already gone" is not an error)
 */
export async function rollbackToken(fs: RestoreFs, path: string, bytes: Uint8Array): Promise<string[]> {
  const errors: string[] = [];
  try {
    const there = await fs.readFile(path);
    if (!equalBytes(there, bytes)) return errors; // replaced by someone else meanwhile: not ours
    await fs.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) errors.push(`remove ${path}: ${messageOf(e)}`);
    return errors;
  }
  try {
    const dir = await fs.lockDir(dirname(path));
    try {
      await dir.sync();
    } finally {
      dir.close();
    }
  } catch { /* durability of the removal is best effort; the file is gone */ }
  return errors;
}

/** What the write phase had done when it failed. */
export interface WritesDone {
  /** This run published `l402.token`. */
  wroteToken: boolean;
  /** Path of `l402.token`. */
  tokenPath: string;
  /** The bytes it published. */
  tokenBytes: Uint8Array;
  /** The data directory, when this run created it (removed only while empty). */
  createdDir: string | null;
}

/**
 * Undoes a failed write phase (spec §4.9): removes the token file this run wrote (only while it holds
 * these bytes) and the data directory this run created (only while empty); the database was never
 * changed (its rows are written in one transaction, the last step). Returns the error to throw, saying
 * what was rolled back: `restore_conflict` for a conflict found at write time, `interrupted` (exit 130)
 * for a signal (core/interrupt.ts), else `restore_failed` (exit 75 when the cause was temporary, else 1).
 *
 * @param err the failure of the write phase
 * @returns the error for the caller to throw
 */
export async function rollBackWrites(fs: RestoreFs, err: unknown, done: WritesDone): Promise<LoopkitError> {
  const rolled = done.wroteToken ? await rollbackToken(fs, done.tokenPath, done.tokenBytes) : [];
  if (done.createdDir !== null) {
    try {
      await fs.remove(done.createdDir); // not recursive: only an empty directory goes
    } catch { /* not empty (the database may be there): keep it */ }
  }
  const cause = err instanceof LoopkitError ? err : undefined;
  const signalled = cause?.code === "interrupted";
  if (!cause && isUnwritableError(err)) {
    // The data directory is read-only: the set-up error every command gives for it (exit 2).
    const e = dataDirUnwritable(dirname(done.tokenPath), done.tokenPath, err);
    const note = done.wroteToken && rolled.length === 0
      ? `; rolled back: removed "${done.tokenPath}" written by this run, database unchanged`
      : rolled.length
      ? ` (also failed to roll back restored token files: ${rolled.join("; ")})`
      : "; nothing was written, database unchanged";
    return new LoopkitError(e.code, e.message + note, e.exitCode, { cause: err });
  }
  const exit = signalled
    ? ExitCode.Interrupted
    : cause?.exitCode === ExitCode.TempFail
    ? ExitCode.TempFail
    : ExitCode.Failure;
  let msg = signalled
    ? "Interrupted during the restore"
    : `unable to restore static address: ${messageOf(err)}`;
  if (rolled.length) {
    msg += ` (also failed to roll back restored token files: ${rolled.join("; ")})`;
  } else if (done.wroteToken) {
    msg += `; rolled back: removed "${done.tokenPath}" written by this run, database unchanged`;
  } else {
    msg += "; nothing was written, database unchanged";
  }
  return new LoopkitError(
    signalled ? "interrupted" : cause?.code === "restore_conflict" ? "restore_conflict" : "restore_failed",
    msg,
    exit,
    { cause: err },
  );
}
