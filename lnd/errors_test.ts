import assert from "node:assert/strict";
import { ExitCode, LoopkitError } from "../core/errors.ts";
import { GrpcStatus, lndError, LndRpcError } from "./errors.ts";
import { isLndError, LndError, type LndErrorKind } from "./lnd_error.ts";

const ctx = { rpc: "Signer.DeriveSharedKey", rpcServer: "localhost:10009" };

function status(code: number, details: string) {
  return Object.assign(new Error(`${code} ${details}`), { code, details });
}

Deno.test("lndError() maps UNAVAILABLE (connection refused) to lnd_unreachable, exit 75, naming --rpcserver", () => {
  const e = lndError(
    status(GrpcStatus.UNAVAILABLE, "No connection established. Last error: connect ECONNREFUSED"),
    ctx,
  );
  assert.equal(e.code, "lnd_unreachable");
  assert.equal(e.exitCode, ExitCode.TempFail);
  assert.match(e.message, /localhost:10009 \(--rpcserver\)/);
});

Deno.test("lndError() maps a plain ECONNREFUSED error (no gRPC status) to lnd_unreachable", () => {
  const e = lndError(new Error("connect ECONNREFUSED 127.0.0.1:1"), ctx);
  assert.equal(e.code, "lnd_unreachable");
  assert.equal(e.exitCode, ExitCode.TempFail);
});

Deno.test("lndError() maps a connection lost under a call (INTERNAL with EPIPE/ECONNRESET) to lnd_unreachable", () => {
  for (
    const text of [
      "Received RST_STREAM with code 2 triggered by internal client error: write EPIPE",
      "Received RST_STREAM with code 2 triggered by internal client error: read ECONNRESET",
    ]
  ) {
    const e = lndError(status(GrpcStatus.INTERNAL, text), ctx);
    assert.equal(e.code, "lnd_unreachable", text);
    assert.equal(e.exitCode, ExitCode.TempFail);
  }
  // INTERNAL for any other reason is lnd's answer, not a transport failure.
  assert.equal(lndError(status(GrpcStatus.INTERNAL, "grpc: error while marshaling"), ctx).code, "lnd_rpc");
});

Deno.test("lndError() maps DEADLINE_EXCEEDED to lnd_unreachable when connecting and lnd_timeout afterwards", () => {
  const err = status(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded");
  const connect = lndError(err, { ...ctx, phase: "connect" });
  assert.equal(connect.code, "lnd_unreachable");
  assert.equal(connect.exitCode, ExitCode.TempFail);
  const call = lndError(err, { ...ctx, phase: "call" });
  assert.equal(call.code, "lnd_timeout");
  assert.equal(call.exitCode, ExitCode.TempFail);
  assert.match(call.message, /Signer\.DeriveSharedKey/);
});

Deno.test("lndError() maps a certificate failure to lnd_tls, exit 2, naming --tlscertpath", () => {
  const e = lndError(
    status(GrpcStatus.UNAVAILABLE, "No connection established. Last error: Error: self-signed certificate"),
    ctx,
  );
  assert.equal(e.code, "lnd_tls");
  assert.equal(e.exitCode, ExitCode.Usage);
  assert.match(e.message, /--tlscertpath/);
});

Deno.test("lndError() maps UNAUTHENTICATED, PERMISSION_DENIED and lnd's macaroon texts to lnd_auth, exit 2", () => {
  for (
    const err of [
      status(GrpcStatus.UNAUTHENTICATED, "bad token"),
      status(GrpcStatus.PERMISSION_DENIED, "nope"),
      status(GrpcStatus.UNKNOWN, "verification failed: signature mismatch after caveat verification"),
      status(GrpcStatus.UNKNOWN, "expected 1 macaroon, got 0"),
      status(GrpcStatus.UNKNOWN, "permission denied"),
      status(GrpcStatus.UNKNOWN, "cannot get macaroon: root key with id 0 doesn't exist"),
    ]
  ) {
    const e = lndError(err, ctx);
    assert.equal(e.code, "lnd_auth", err.details);
    assert.equal(e.exitCode, ExitCode.Usage);
    assert.match(e.message, /--macaroonpath/);
  }
});

Deno.test("lndError() maps lnd's start-up states (wallet locked, starting) to lnd_not_ready, exit 75", () => {
  for (
    const text of [
      "wallet locked, unlock it to enable full RPC access",
      "the RPC server is in the process of starting up, but not yet ready to accept calls",
      "waiting to start, RPC services not available",
    ]
  ) {
    const e = lndError(status(GrpcStatus.UNKNOWN, text), ctx);
    assert.equal(e.code, "lnd_not_ready", text);
    assert.equal(e.exitCode, ExitCode.TempFail);
  }
});

Deno.test("lndError() maps other lnd errors to LndRpcError lnd_rpc, exit 1, naming the RPC and keeping lnd's text", () => {
  const e = lndError(status(GrpcStatus.UNKNOWN, "error importing script into wallet: boom"), {
    ...ctx,
    rpc: "WalletKit.ImportTapscript",
  });
  assert.ok(e instanceof LndRpcError);
  assert.equal(e.code, "lnd_rpc");
  assert.equal(e.exitCode, ExitCode.Failure);
  assert.equal(e.rpc, "WalletKit.ImportTapscript");
  assert.equal(e.grpcCode, GrpcStatus.UNKNOWN);
  assert.equal(e.details, "error importing script into wallet: boom");
  assert.match(e.message, /WalletKit\.ImportTapscript/);
});

Deno.test("lndError() explains UNIMPLEMENTED with the sub-server build tags", () => {
  const e = lndError(status(GrpcStatus.UNIMPLEMENTED, "unknown service routerrpc.Router"), ctx);
  assert.equal(e.code, "lnd_rpc");
  assert.match(e.message, /build tag/);
});

Deno.test("lndError() passes a LoopkitError through unchanged", () => {
  const original = new LoopkitError("network_mismatch", "x", ExitCode.Usage);
  assert.equal(lndError(original, ctx), original);
});

Deno.test("every lndError() result is an LndError whose kind matches its code (core branches on kind, not gRPC)", () => {
  const cases: [number | undefined, string, string, string][] = [
    [GrpcStatus.UNAVAILABLE, "connect ECONNREFUSED 127.0.0.1:1", "unavailable", "lnd_unreachable"],
    [GrpcStatus.UNAVAILABLE, "self-signed certificate", "tls", "lnd_tls"],
    [GrpcStatus.INTERNAL, "write EPIPE", "unavailable", "lnd_unreachable"],
    [GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded", "deadline", "lnd_timeout"],
    [GrpcStatus.UNAUTHENTICATED, "no macaroon", "permission_denied", "lnd_auth"],
    [GrpcStatus.UNKNOWN, "verification failed: signature mismatch", "permission_denied", "lnd_auth"],
    [GrpcStatus.UNKNOWN, "wallet locked, unlock it to enable full RPC access", "not_ready", "lnd_not_ready"],
    [GrpcStatus.NOT_FOUND, "unable to locate invoice", "not_found", "lnd_rpc"],
    [GrpcStatus.ALREADY_EXISTS, "invoice with payment hash already exists", "already_exists", "lnd_rpc"],
    [GrpcStatus.INVALID_ARGUMENT, "bad key family", "invalid_argument", "lnd_rpc"],
    [GrpcStatus.UNIMPLEMENTED, "unknown service", "unimplemented", "lnd_rpc"],
    [GrpcStatus.UNKNOWN, "boom", "unknown", "lnd_rpc"],
  ];
  for (const [code, details, kind, errCode] of cases) {
    const e = lndError(status(code!, details), { ...ctx, phase: "call" });
    assert.ok(e instanceof LndError, details);
    assert.equal(e.kind, kind, details);
    assert.equal(e.code, errCode, details);
    assert.ok(isLndError(e, kind as LndErrorKind), details);
  }
  assert.ok(
    new LndRpcError("X.Y", undefined, "unexpected response: z", "lnd_bad_response").kind === "bad_response",
  );
});
