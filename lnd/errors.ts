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
 * | TLS certificate does not verify, or `--rpcserver` is not a TLS port | `lnd_tls` | 2 |
 * | macaroon missing, invalid or lacking permission | `lnd_auth` | 2 |
 * | anything else lnd answers | `lnd_rpc` ({@linkcode LndRpcError}) | 1 |
 *
 * Every error made here is an {@linkcode LndError} (`lnd/lnd_error.ts`) with a transport-neutral `kind`;
 * lnd's answers are its subclass {@linkcode LndRpcError}, which also keeps the gRPC status.
 *
 * @module
 */
import { ExitCode, type ExitCodeValue, LoopkitError } from "../core/errors.ts";
import { LndError, type LndErrorKind } from "./lnd_error.ts";

export { LndError, type LndErrorKind } from "./lnd_error.ts";

/** gRPC status codes used here (from the gRPC spec). */
export const GrpcStatus = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** The transport-neutral kind of a gRPC status (`lnd_bad_response` is always `bad_response`). */
export function lndErrorKindOf(grpcCode: number | undefined, code = "lnd_rpc"): LndErrorKind {
  if (code === "lnd_bad_response") return "bad_response";
  switch (grpcCode) {
    case GrpcStatus.CANCELLED:
      return "cancelled";
    case GrpcStatus.INVALID_ARGUMENT:
      return "invalid_argument";
    case GrpcStatus.DEADLINE_EXCEEDED:
      return "deadline";
    case GrpcStatus.NOT_FOUND:
      return "not_found";
    case GrpcStatus.ALREADY_EXISTS:
      return "already_exists";
    case GrpcStatus.PERMISSION_DENIED:
    case GrpcStatus.UNAUTHENTICATED:
      return "permission_denied";
    case GrpcStatus.FAILED_PRECONDITION:
      return "failed_precondition";
    case GrpcStatus.UNIMPLEMENTED:
      return "unimplemented";
    case GrpcStatus.UNAVAILABLE:
      return "unavailable";
    default:
      return "unknown";
  }
}

/**
 * lnd answered an RPC with an error (exit 1): an {@linkcode LndError} that also keeps the gRPC status.
 * Callers may branch on `kind`, `details` (lnd's error text) or {@linkcode grpcCode}.
 */
export class LndRpcError extends LndError {
  /** gRPC status code, or undefined when the failure was not a gRPC status. */
  readonly grpcCode: number | undefined;

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
    super(rpc, lndErrorKindOf(grpcCode, code), details, { code, exitCode, cause: options?.cause });
    this.name = "LndRpcError";
    this.grpcCode = grpcCode;
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

/**
 * The part of a gRPC error text worth showing: grpc-js appends ". Resolution note: " with an empty note to
 * connection failures, which ends the message in nothing.
 */
export function cleanGrpcDetails(details: string): string {
  return details.replace(/\.?\s*Resolution note:\s*$/, "").trim();
}

/** A TLS client met a peer that does not speak TLS (a plaintext port): OpenSSL's and rustls's words. */
const NOT_TLS_PATTERNS = [
  /wrong version number/i,
  /InvalidContentType/,
  /received corrupt message/i,
  /packet length too long/i,
  /http request/i,
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
    return { code, details: cleanGrpcDetails(details) };
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
  const fail = (kind: LndErrorKind, errCode: string, exitCode: ExitCodeValue, message: string) =>
    new LndError(ctx.rpc, kind, details, { code: errCode, exitCode, message, cause: err });

  if (
    code === GrpcStatus.UNAVAILABLE ||
    (code === undefined && /ECONNREFUSED|connection refused/i.test(details))
  ) {
    if (NOT_TLS_PATTERNS.some((p) => p.test(details))) {
      return fail(
        "tls",
        "lnd_tls",
        ExitCode.Usage,
        `${where} did not answer with TLS (${details}): is --rpcserver lnd's gRPC port (rpclisten, ` +
          `default 10009), not its REST port or another service?`,
      );
    }
    if (TLS_PATTERNS.some((p) => p.test(details))) {
      return fail(
        "tls",
        "lnd_tls",
        ExitCode.Usage,
        `Cannot verify the TLS certificate of ${where}: ${details}; check --tlscertpath`,
      );
    }
    return fail("unavailable", "lnd_unreachable", ExitCode.TempFail, `Cannot reach ${where}: ${details}`);
  }
  if (code === GrpcStatus.INTERNAL && TRANSPORT_PATTERNS.some((p) => p.test(details))) {
    return fail(
      "unavailable",
      "lnd_unreachable",
      ExitCode.TempFail,
      `Lost the connection to ${where}: ${details}`,
    );
  }
  if (code === GrpcStatus.DEADLINE_EXCEEDED) {
    if (ctx.phase === "connect") {
      return fail(
        "unavailable",
        "lnd_unreachable",
        ExitCode.TempFail,
        `Cannot reach ${where}: no answer before the deadline`,
      );
    }
    return fail(
      "deadline",
      "lnd_timeout",
      ExitCode.TempFail,
      `lnd ${ctx.rpc} timed out at ${ctx.rpcServer}: ${details}`,
    );
  }
  if (
    code === GrpcStatus.UNAUTHENTICATED || code === GrpcStatus.PERMISSION_DENIED ||
    (code === GrpcStatus.UNKNOWN && AUTH_PATTERNS.some((p) => p.test(details)))
  ) {
    return fail(
      "permission_denied",
      "lnd_auth",
      ExitCode.Usage,
      `lnd at ${ctx.rpcServer} refused the macaroon for ${ctx.rpc}: ${details}; ` +
        `check --macaroonpath (admin.macaroon of the same lnd and network)`,
    );
  }
  if (code === GrpcStatus.UNKNOWN && NOT_READY_PATTERNS.some((p) => p.test(details))) {
    return fail("not_ready", "lnd_not_ready", ExitCode.TempFail, `${where} is not ready: ${details}`);
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
