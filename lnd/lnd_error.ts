/**
 * The error every `LndClient` implementation (`lnd/types.ts`) raises when lnd cannot be reached or refuses a call,
 * independent of the transport: core code branches on {@linkcode LndError.kind} (and lnd's text in
 * {@linkcode LndError.details}), never on gRPC status numbers. The gRPC client (`lnd/grpc_client.ts`) raises
 * `LndRpcError`, a subclass that also keeps the gRPC status; in-process stand-ins raise `LndError` directly.
 *
 * This module depends on `core/errors.ts` only, so core may import it without pulling in gRPC.
 *
 * @module
 */
import { ExitCode, type ExitCodeValue, LoopkitError } from "../core/errors.ts";

/**
 * What went wrong, transport-neutral (names after the gRPC status codes lnd uses):
 * - `unavailable`: lnd not reachable, or the connection broke (exit 75)
 * - `not_ready`: lnd up but its wallet is locked or still starting (exit 75)
 * - `deadline`: no answer in time (exit 75)
 * - `tls`: lnd's certificate does not verify (exit 2)
 * - `permission_denied`: macaroon missing, invalid or lacking permission (exit 2)
 * - `not_found`, `already_exists`, `invalid_argument`, `failed_precondition`, `cancelled`: lnd's answer
 * - `unimplemented`: the RPC's sub-server is not built into lnd
 * - `bad_response`: lnd answered something loopkit cannot use (wrong length, bad hex)
 * - `unknown`: any other refusal (lnd reports most of its own errors as gRPC UNKNOWN with a text)
 */
export type LndErrorKind =
  | "unavailable"
  | "not_ready"
  | "deadline"
  | "tls"
  | "permission_denied"
  | "not_found"
  | "already_exists"
  | "invalid_argument"
  | "failed_precondition"
  | "cancelled"
  | "unimplemented"
  | "bad_response"
  | "unknown";

/** Options of {@linkcode LndError}. */
export interface LndErrorOptions {
  /** Stable loopkit error code (default `lnd_rpc`). */
  code?: string;
  /** Process exit code (default 1). */
  exitCode?: ExitCodeValue;
  /** The whole message (default `lnd <rpc> failed: <details>`). */
  message?: string;
  /** The underlying failure. */
  cause?: unknown;
}

/**
 * lnd could not be reached or refused a call. A {@linkcode LoopkitError}: `code` and `exitCode` follow the
 * table in `lnd/README.md` ("Errors").
 */
export class LndError extends LoopkitError {
  /** The RPC, e.g. `WalletKit.ImportTapscript`. */
  readonly rpc: string;
  /** What went wrong (see {@linkcode LndErrorKind}). */
  readonly kind: LndErrorKind;
  /** lnd's error text (or the transport's). */
  readonly details: string;

  /**
   * @param rpc service and method, e.g. `Signer.DeriveSharedKey`
   * @param kind what went wrong
   * @param details lnd's error text
   * @param opts code, exit code, message and cause
   */
  constructor(rpc: string, kind: LndErrorKind, details: string, opts: LndErrorOptions = {}) {
    super(
      opts.code ?? "lnd_rpc",
      opts.message ?? `lnd ${rpc} failed: ${details}`,
      opts.exitCode ?? ExitCode.Failure,
      opts.cause === undefined ? undefined : { cause: opts.cause },
    );
    this.name = "LndError";
    this.rpc = rpc;
    this.kind = kind;
    this.details = details;
  }
}

/** True when `err` is an {@linkcode LndError} of one of `kinds` (any kind when none is given). */
export function isLndError(err: unknown, ...kinds: LndErrorKind[]): err is LndError {
  return err instanceof LndError && (kinds.length === 0 || kinds.includes(err.kind));
}
