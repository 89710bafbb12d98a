/**
 * Maps gRPC failures from lnd to loopkit errors with stable codes and exit codes.
 *
 * lnd reports most of its own refusals with gRPC status UNKNOWN and a Go error text (macaroon
 * checks, "wallet locked", ...), so the classification looks at the text as well as the code.
 *
 * | situation | code | exit |
 * |---|---|---|
 * | connection refused / no route / no answer before the connect deadline / connection lost | `lnd_unreachable` | 75 |
 * | lnd up but not ready (wallet locked, still starting) | `lnd_not_ready` | 75 |
 * | a call timed out after the connection worked | `lnd_timeout` | 75 |
 * | TLS certificate does not verify | `lnd_tls` | 2 |
 * | macaroon missing, invalid or lacking permission | `lnd_auth` | 2 |
 * | anything else lnd answers | `lnd_rpc` ({@linkcode LndRpcError}) | 1 |
 *
 * @module
 */
import { ExitCode, type ExitCodeValue, LoopkitError, tempFailure } from "../core/errors.ts";

/** gRPC status codes used here (from the gRPC spec). */
export const GrpcStatus = {
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/**
 * lnd answered an RPC with an error (exit 1). Callers may branch on {@linkcode details}
 * (lnd's error text) or {@linkcode grpcCode}.
 */
export class LndRpcError extends LoopkitError {
  /** The RPC, e.g. `WalletKit.ImportTapscript`. */
  readonly rpc: string;
  /** gRPC status code, or undefined when the failure was not a gRPC status. */
  readonly grpcCode: number | undefined;
  /** lnd's error text. */
  readonly details: string;

  /**
   * @param rpc service and method, e.g. `Signer.DeriveSharedKey`
   * @param grpcCode gRPC status code
   * @param details lnd's error text
   * @param code stable loopkit error code (default `lnd_rpc`)
   * @param exitCode process exit code (default 1)
   */
  constructor(
    rpc: string,
    grpcCode: number | undefined,
    details: string,
    code = "lnd_rpc",
    exitCode: ExitCodeValue = ExitCode.Failure,
    options?: ErrorOptions,
  ) {
    super(code, `lnd ${rpc} failed: ${details}`, exitCode, options);
    this.name = "LndRpcError";
    this.rpc = rpc;
    this.grpcCode = grpcCode;
    this.details = details;
  }
}

/**
 * Stable codes of {@linkcode LndRpcError}s that callers branch on, beyond the generic `lnd_rpc`
 * (all exit 1). Set by the `GrpcLndClient` method named.
 */
export const LndInvoiceErrorCode = {
  /** `CancelInvoice`: lnd has no invoice with that payment hash. */
  NotFound: "lnd_invoice_not_found",
  /** `CancelInvoice`: the invoice is settled (the preimage is out; it cannot be canceled). */
  AlreadySettled: "lnd_invoice_settled",
} as const;

/** lnd's texts for a missing invoice (`invoices.ErrInvoiceNotFound`, `ErrNoInvoicesCreated`). */
export const INVOICE_NOT_FOUND_PATTERN =
  /unable to locate invoice|there are no existing invoices|invoice not found/i;
/** lnd's text for an invoice update refused because it is settled (`ErrInvoiceAlreadySettled`). */
export const INVOICE_SETTLED_PATTERN = /invoice already settled/i;

/** Where the failure happened. */
export interface LndErrorContext {
  /** The RPC, e.g. `Lightning.GetInfo`. */
  rpc: string;
  /** The `--rpcserver` value, named in connection errors. */
  rpcServer: string;
  /** `connect`: the first call of a session (a deadline there means lnd is unreachable). */
  phase?: "connect" | "call";
}

const AUTH_PATTERNS = [
  /macaroon/i,
  /verification failed/i,
  /^permission denied/i,
  /root key with id/i,
  /invalid id/i,
];
const NOT_READY_PATTERNS = [
  /wallet locked/i,
  /wallet not created/i,
  /waiting to start/i,
  /in the process of starting up/i,
  /daemon locked/i,
  /server is still in the process of starting/i,
];
/** The connection broke under a call (grpc-js reports these as INTERNAL with the socket error). */
const TRANSPORT_PATTERNS = [
  /\bEPIPE\b/,
  /\bECONNRESET\b/,
  /broken pipe/i,
  /connection reset/i,
  /socket hang up/i,
];
const TLS_PATTERNS = [
  /certificate/i,
  /self[- ]signed/i,
  /altname/i,
  /unknown ?issuer/i,
  /ERR_TLS/,
  /invalid peer cert/i,
];

function grpcParts(err: unknown): { code: number | undefined; details: string } {
  if (err && typeof err === "object") {
    const e = err as { code?: unknown; details?: unknown; message?: unknown };
    const code = typeof e.code === "number" ? e.code : undefined;
    const details = typeof e.details === "string" && e.details !== ""
      ? e.details
      : typeof e.message === "string"
      ? e.message
      : String(err);
    return { code, details };
  }
  return { code: undefined, details: String(err) };
}

/**
 * Turns any failure of an lnd call into a {@linkcode LoopkitError} (see the module table).
 * A {@linkcode LoopkitError} passes through unchanged.
 *
 * @param err what the gRPC call rejected with
 * @param ctx the RPC and the endpoint, for the message
 */
export function lndError(err: unknown, ctx: LndErrorContext): LoopkitError {
  if (err instanceof LoopkitError) return err;
  const { code, details } = grpcParts(err);
  const where = `lnd at ${ctx.rpcServer} (--rpcserver)`;

  if (
    code === GrpcStatus.UNAVAILABLE ||
    (code === undefined && /ECONNREFUSED|connection refused/i.test(details))
  ) {
    if (TLS_PATTERNS.some((p) => p.test(details))) {
      return new LoopkitError(
        "lnd_tls",
        `Cannot verify the TLS certificate of ${where}: ${details}; check --tlscertpath`,
        ExitCode.Usage,
        { cause: err },
      );
    }
    return tempFailure(`Cannot reach ${where}: ${details}`, "lnd_unreachable", err);
  }
  if (code === GrpcStatus.INTERNAL && TRANSPORT_PATTERNS.some((p) => p.test(details))) {
    return tempFailure(`Lost the connection to ${where}: ${details}`, "lnd_unreachable", err);
  }
  if (code === GrpcStatus.DEADLINE_EXCEEDED) {
    if (ctx.phase === "connect") {
      return tempFailure(`Cannot reach ${where}: no answer before the deadline`, "lnd_unreachable", err);
    }
    return tempFailure(`lnd ${ctx.rpc} timed out at ${ctx.rpcServer}: ${details}`, "lnd_timeout", err);
  }
  if (
    code === GrpcStatus.UNAUTHENTICATED || code === GrpcStatus.PERMISSION_DENIED ||
    (code === GrpcStatus.UNKNOWN && AUTH_PATTERNS.some((p) => p.test(details)))
  ) {
    return new LoopkitError(
      "lnd_auth",
      `lnd at ${ctx.rpcServer} refused the macaroon for ${ctx.rpc}: ${details}; ` +
        `check --macaroonpath (admin.macaroon of the same lnd and network)`,
      ExitCode.Usage,
      { cause: err },
    );
  }
  if (code === GrpcStatus.UNKNOWN && NOT_READY_PATTERNS.some((p) => p.test(details))) {
    return tempFailure(`${where} is not ready: ${details}`, "lnd_not_ready", err);
  }
  if (code === GrpcStatus.UNIMPLEMENTED) {
    return new LndRpcError(
      ctx.rpc,
      code,
      `${details} (is lnd built with the sub-server's build tag, e.g. signrpc, walletrpc, chainrpc, routerrpc?)`,
      "lnd_rpc",
      ExitCode.Failure,
      { cause: err },
    );
  }
  return new LndRpcError(ctx.rpc, code, details, "lnd_rpc", ExitCode.Failure, { cause: err });
}
