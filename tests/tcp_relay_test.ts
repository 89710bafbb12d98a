/**
 * The test gRPC servers (local swap server, fake lnd) stop without sending an HTTP/2 GOAWAY: a GOAWAY to an
 * idle `@grpc/grpc-js` client session can abort Deno 2.9.6 (denoland/deno#36788). The peer here is a raw
 * HTTP/2 speaker over a plain socket (no nghttp2 on this side, so nothing here can hit that abort): it
 * opens a session (preface, SETTINGS, SETTINGS ACK), the server is stopped, and every frame read until
 * EOF is listed by type. The first test is the control: without the relay grpc-js does send a GOAWAY, so
 * the others would see one if the relay let it through.
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import net from "node:net";
import nodeTls from "node:tls";
import { assert, assertEquals } from "./assert.ts";
import { startFakeLnd } from "./fakelnd/server.ts";
import { InProcessLightning } from "./swapserver/lightning.ts";
import { startSwapServer } from "./swapserver/server.ts";
import { startTcpRelay } from "./tcp_relay.ts";

const FRAME_SETTINGS = 0x4;
const FRAME_GOAWAY = 0x7;
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** One HTTP/2 frame header (RFC 9113 §4.1) with an empty payload. */
function frame(type: number, flags: number): Buffer {
  return Buffer.from([0, 0, 0, type, flags, 0, 0, 0, 0]);
}

/** A raw HTTP/2 client session: frame types received, in order, until the server closes the connection. */
class RawSession {
  readonly types: number[] = [];
  #buf = Buffer.alloc(0);
  #settingsSeen!: () => void;
  /** Resolves once the server's first SETTINGS frame arrived (the session is up). */
  readonly ready = new Promise<void>((r) => this.#settingsSeen = r);
  /** Resolves when the connection is gone (end, close or error). */
  readonly closed: Promise<void>;

  constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    this.closed = new Promise<void>((r) => {
      socket.on("close", () => r());
      socket.on("error", () => r());
    });
  }

  async open(): Promise<void> {
    this.socket.write(Buffer.concat([PREFACE, frame(FRAME_SETTINGS, 0)]));
    await this.ready;
    this.socket.write(frame(FRAME_SETTINGS, 0x1)); // ACK
  }

  #onData(chunk: Buffer): void {
    const all = Buffer.concat([this.#buf, chunk]);
    let at = 0;
    while (all.length - at >= 9) {
      const len = (all[at] << 16) | (all[at + 1] << 8) | all[at + 2];
      if (all.length - at < 9 + len) break;
      const type = all[at + 3];
      this.types.push(type);
      if (type === FRAME_SETTINGS && (all[at + 4] & 0x1) === 0) this.#settingsSeen();
      at += 9 + len;
    }
    this.#buf = all.subarray(at);
  }
}

/**
 * Opens a raw session to `127.0.0.1:port`, over TLS (ALPN h2) when `tls`. The certificate is not checked:
 * this is about frames, and Deno's TLS refuses lnd-style self-signed certificates outside grpc-js.
 */
async function rawSession(port: number, tls = false): Promise<RawSession> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s: net.Socket = tls
      ? nodeTls.connect(
        { host: "127.0.0.1", port, ALPNProtocols: ["h2"], rejectUnauthorized: false },
        () => resolve(s),
      )
      : net.connect({ host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
  });
  const session = new RawSession(socket);
  await session.open();
  return session;
}

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(":") + 1));

Deno.test("control: grpc-js forceShutdown() sends a GOAWAY to an open session; behind startTcpRelay() none arrives", async () => {
  const bind = async () => {
    const server = new grpc.Server();
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => e ? rej(e) : res(p))
    );
    return { server, port };
  };

  const direct = await bind();
  const s1 = await rawSession(direct.port);
  direct.server.forceShutdown();
  await s1.closed;
  assert(s1.types.includes(FRAME_GOAWAY), `frames ${s1.types}`);

  const relayed = await bind();
  const relay = startTcpRelay(relayed.port);
  const s2 = await rawSession(relay.port);
  await relay.close();
  relayed.server.forceShutdown();
  await s2.closed;
  assertEquals(s2.types.filter((t) => t === FRAME_GOAWAY), [], `frames ${s2.types}`);
  assert(s2.types.includes(FRAME_SETTINGS), "the relayed session was up");
});

Deno.test("the local swap server's stop() drops an open session without a GOAWAY (plaintext and TLS)", async () => {
  for (const tls of [false, true]) {
    const server = await startSwapServer({ invoices: new InProcessLightning("regtest"), tls });
    const s = await rawSession(portOf(server.address), tls);
    await server.stop();
    await s.closed;
    assertEquals(s.types.filter((t) => t === FRAME_GOAWAY), [], `tls ${tls}: frames ${s.types}`);
  }
});

Deno.test("the fake lnd's stop() drops an open session without a GOAWAY", async () => {
  const lnd = await startFakeLnd({ network: "regtest", blockHeight: 100 });
  const s = await rawSession(portOf(lnd.rpcServer), true);
  await lnd.stop();
  await s.closed;
  assertEquals(s.types.filter((t) => t === FRAME_GOAWAY), [], `frames ${s.types}`);
});
