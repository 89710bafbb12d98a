/**
 * `WalletKit.ListUnspent` over a raw HTTP/2 gRPC call whose answer is decoded as it arrives: only the bytes of
 * the UTXO being read and the UTXOs kept stay in memory, never the whole message (17.5 MB for 100 000 UTXOs,
 * which grpc-js buffers twice before a deserializer sees it: bench/README.md). gRPC over HTTP/2 framing:
 * `POST /walletrpc.WalletKit/ListUnspent`, `content-type: application/grpc`, `te: trailers`, the macaroon
 * header lnd reads, messages framed as 1 flag byte + 4-byte big-endian length; the status in the trailers
 * (`grpc-status`, `grpc-message`). Wire layout of the answer: `lnd/utxo_wire.ts`.
 *
 * @module
 */
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import type { Utxo } from "./types.ts";
import { decodeUtxoEntry, encodeListUnspentRequest, WireError } from "./utxo_wire.ts";

/** Where and how to reach lnd (what `openLndRpc` was given). */
export interface RawLndEndpoint {
  /** `host:port`. */
  rpcServer: string;
  /** lnd's `tls.cert` (PEM). */
  tlsCert: Uint8Array;
  /** TLS server name to check the certificate against. */
  tlsServerName: string;
  /** The binary macaroon. */
  macaroon?: Uint8Array;
}

/** A gRPC status other than OK, or a transport failure, as grpc-js would report it (`code`, `details`). */
export class RawGrpcError extends Error {
  constructor(readonly code: number, readonly details: string) {
    super(`${code} ${details}`);
  }
}

/**
 * Incremental parser of one `ListUnspentResponse` stream: feed it the HTTP/2 DATA chunks in order.
 * Holds at most one partial gRPC frame header and one partial top-level entry.
 */
export class UnspentStreamParser {
  #pending: Uint8Array = new Uint8Array(0);
  #frameLeft = -1; // bytes of the current gRPC message still to come; -1: reading a frame header
  #wanted: Uint8Array[] | undefined;
  readonly utxos: Utxo[] = [];
  total = 0;

  constructor(pkScripts?: readonly Uint8Array[]) {
    this.#wanted = pkScripts?.map((p) => new TextEncoder().encode(hex(p)));
  }

  /**
   * Feeds one chunk. Bytes of a field that straddles two chunks are joined with at most a few KB of the next
   * chunk (never the whole chunk), so the parser allocates little beyond the chunks themselves.
   */
  push(chunk: Uint8Array): void {
    let off = 0;
    if (this.#pending.length) {
      let take = Math.min(chunk.length, 4096);
      for (;;) {
        const joined = concat(this.#pending, chunk.subarray(0, take));
        const pos = this.#consume(joined, 0);
        if (pos >= this.#pending.length) {
          off = pos - this.#pending.length;
          this.#pending = new Uint8Array(0);
          break;
        }
        this.#pending = this.#pending.slice(pos);
        if (take === chunk.length) {
          this.#pending = concat(this.#pending, chunk);
          return;
        }
        take = Math.min(chunk.length, take * 4);
      }
    }
    const pos = this.#consume(chunk, off);
    if (pos < chunk.length) this.#pending = chunk.slice(pos);
  }

  /** Processes every complete field of `buf` from `start`; returns where the first incomplete one begins. */
  #consume(buf: Uint8Array, start: number): number {
    let pos = start;
    for (;;) {
      if (this.#frameLeft < 0) {
        if (buf.length - pos < 5) break;
        if (buf[pos] !== 0) throw new WireError("compressed gRPC message: not requested");
        this.#frameLeft = new DataView(buf.buffer, buf.byteOffset + pos + 1, 4).getUint32(0);
        pos += 5;
        continue;
      }
      if (this.#frameLeft === 0) {
        this.#frameLeft = -1;
        continue;
      }
      // One top-level field of the message: tag, then (for field 1) a length and the entry.
      const avail = Math.min(buf.length - pos, this.#frameLeft);
      const head = readHead(buf, pos, pos + avail);
      if (head === null) break; // need more bytes
      const [used, start, end] = head;
      if (end > pos + avail) {
        if (end - pos > this.#frameLeft) throw new WireError("entry runs past its message");
        break;
      }
      if (start >= 0) {
        this.total++;
        const u = decodeUtxoEntry(buf, start, end, this.#wanted);
        if (u) this.utxos.push(u);
      }
      this.#frameLeft -= used;
      pos += used;
    }
    return pos;
  }

  /** Checks the stream ended on a message boundary. */
  finish(): void {
    if (this.#pending.length || this.#frameLeft > 0) throw new WireError("answer ended inside a message");
  }
}

/**
 * Reads one top-level field at `pos`: `[bytes used, entry start, entry end]` for field 1 (a Utxo), `start = -1`
 * for any other field (skipped), or null when the bytes up to `limit` do not hold the whole header.
 */
function readHead(buf: Uint8Array, pos: number, limit: number): [number, number, number] | null {
  let p = pos;
  const varint = (): number | null => {
    let v = 0, mul = 1;
    for (let i = 0; i < 10; i++) {
      if (p >= limit) return null;
      const b = buf[p++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
    throw new WireError("varint longer than 10 bytes");
  };
  const tag = varint();
  if (tag === null) return null;
  const wire = tag & 7;
  if (wire === 2) {
    const len = varint();
    if (len === null) return null;
    const start = p, end = p + len;
    if (end > limit) return [end - pos, (tag >>> 3) === 1 ? start : -1, end];
    return [end - pos, (tag >>> 3) === 1 ? start : -1, end];
  }
  if (wire === 0) {
    if (varint() === null) return null;
    return [p - pos, -1, p];
  }
  const n = wire === 1 ? 8 : wire === 5 ? 4 : -1;
  if (n < 0) throw new WireError(`unsupported wire type ${wire}`);
  if (p + n > limit) return [p + n - pos, -1, p + n];
  return [p + n - pos, -1, p + n];
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Calls `ListUnspent` on its own HTTP/2 connection and decodes the answer incrementally.
 * @param request `min_confs`, `max_confs`, optional `account`
 * @param pkScripts keep only UTXOs paying one of these (undefined: keep all)
 * @param deadlineMs the whole call's deadline
 * @param keep receives a function that closes the HTTP/2 session; called once the call is over
 * @throws {RawGrpcError} for a non-OK gRPC status or a transport failure (code 14 UNAVAILABLE, 4 DEADLINE_EXCEEDED)
 * @throws {WireError} for a malformed answer
 */
export function rawListUnspent(
  ep: RawLndEndpoint,
  request: { min_confs: number; max_confs: number; account?: string },
  pkScripts: readonly Uint8Array[] | undefined,
  deadlineMs: number,
  keep?: (close: () => void) => void,
): Promise<{ utxos: Utxo[]; total: number }> {
  return new Promise((resolve, reject) => {
    const parser = new UnspentStreamParser(pkScripts);
    let settled = false;
    const session = http2.connect(`https://${ep.rpcServer}`, {
      ca: Buffer.from(ep.tlsCert),
      servername: ep.tlsServerName,
    });
    // The session is never closed gracefully: an HTTP/2 GOAWAY from this client can trip an nghttp2 assertion
    // in a Deno HTTP/2 *server* (the fake lnd of the tests and the bench; lnd, in Go, is not affected). It is
    // unref'd once the call is over, so it does not keep the process alive, and the connection ends with the
    // process (every loopkit command is one short process). `keep` may still close it (long-lived callers).
    const closeSession = () => {
      session.unref?.();
      keep?.(() => session.destroy());
    };
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve({ utxos: parser.utxos, total: parser.total });
    };
    const timer = setTimeout(() => {
      finish(new RawGrpcError(4, "Deadline exceeded"));
      req.close();
    }, deadlineMs);
    session.on(
      "error",
      (e: Error) => finish(new RawGrpcError(14, `No connection established: ${e.message}`)),
    );
    const headers: Record<string, string> = {
      ":method": "POST",
      ":path": "/walletrpc.WalletKit/ListUnspent",
      ":authority": ep.tlsServerName,
      "content-type": "application/grpc",
      te: "trailers",
    };
    if (ep.macaroon) headers.macaroon = hex(ep.macaroon);
    const req = session.request(headers);
    const body = encodeListUnspentRequest(request);
    const frame = new Uint8Array(5 + body.length);
    new DataView(frame.buffer).setUint32(1, body.length);
    frame.set(body, 5);
    req.end(Buffer.from(frame));
    let status: number | undefined;
    let message = "";
    const readStatus = (h: Record<string, unknown>) => {
      if (h["grpc-status"] !== undefined) {
        status = Number(h["grpc-status"]);
        message = decodeURIComponent(String(h["grpc-message"] ?? ""));
      }
    };
    req.on("response", (h: Record<string, unknown>) => readStatus(h)); // trailers-only answer (an error)
    req.on("trailers", (h: Record<string, unknown>) => readStatus(h));
    req.on("data", (chunk: Uint8Array) => {
      if (settled) return;
      try {
        parser.push(chunk);
      } catch (e) {
        finish(e as Error);
        req.close(http2.constants.NGHTTP2_CANCEL);
      }
    });
    req.on("error", (e: Error) => finish(new RawGrpcError(14, e.message)));
    req.on("close", () => {
      finish(new RawGrpcError(13, "stream closed before the answer was complete"));
      closeSession();
    });
    req.on("end", () => {
      if (status === undefined) return finish(new RawGrpcError(13, "answer ended without a gRPC status"));
      if (status !== 0) return finish(new RawGrpcError(status, message));
      try {
        parser.finish();
      } catch (e) {
        return finish(e as Error);
      }
      finish(null);
    });
  });
}
