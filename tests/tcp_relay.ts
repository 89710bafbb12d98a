/**
 * A TCP relay on 127.0.0.1 in front of a test gRPC server (the fake lnd, the local swap server), so that
 * stopping the server drops its clients' connections (FIN), as a crashed peer does, instead of sending them
 * an HTTP/2 GOAWAY.
 *
 * Why: Deno 2.9.6 can abort the whole process inside nghttp2 when a `@grpc/grpc-js` client session that
 * has no call in flight receives a GOAWAY (denoland/deno#36788: `find_stream_on_goaway_func: Assertion
 * 'stream->closed_next == NULL' failed`, exit 134, or a silent exit 139). grpc-js' `Server.forceShutdown()`
 * and `tryShutdown()` send one to every open session; with a client in the same process (a unit test's
 * client, or one a failing test did not close) that kills the whole `deno test` process. Measured with
 * grpc-js 1.14.7 (lnd/README.md, "Known limitation"): an idle in-process client aborted in 5 of 8 runs at
 * `forceShutdown()`; none of 16 behind this relay closed first (`forceShutdown()` or `tryShutdown()`).
 *
 * Usage: bind the gRPC server to `127.0.0.1:0`, start the relay on its port, hand out `127.0.0.1:<relay
 * port>`; on stop, `await relay.close()` first, then shut the gRPC server down (its GOAWAYs then reach
 * no client). TLS passes through unchanged.
 *
 * Permissions: `--allow-net` (127.0.0.1).
 *
 * @module
 */

/** A TCP relay in front of a gRPC server (see the module doc). */
export interface TcpRelay {
  /** The 127.0.0.1 port clients connect to. */
  port: number;
  /** Stops accepting and drops every relayed connection (FIN, no HTTP/2 GOAWAY). Idempotent. */
  close(): Promise<void>;
  /** Client connections open right now (a closed client channel leaves none). */
  readonly connections: number;
}

/**
 * Relays 127.0.0.1:<free port> to 127.0.0.1:`target`, one upstream connection per client connection;
 * when either side closes, both are closed.
 *
 * @param target the gRPC server's port on 127.0.0.1
 * @returns the relay; its `port` is what clients dial
 */
export function startTcpRelay(target: number): TcpRelay {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const clients = new Set<Deno.Conn>();
  const pipes = new Set<Promise<void>>();
  const closeConn = (c: Deno.Conn) => {
    clients.delete(c);
    if (!conns.delete(c)) return;
    try {
      c.close();
    } catch { /* already closed */ }
  };
  const relay = async (client: Deno.Conn) => {
    conns.add(client);
    clients.add(client);
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: target });
    } catch {
      closeConn(client);
      return;
    }
    conns.add(upstream);
    if (!conns.has(client)) return closeConn(upstream); // closed while connecting
    const pipe = (from: Deno.Conn, to: Deno.Conn) =>
      from.readable.pipeTo(to.writable, { preventClose: true }).catch(() => {}).finally(() => {
        closeConn(from);
        closeConn(to);
      });
    await Promise.all([pipe(client, upstream), pipe(upstream, client)]);
  };
  const accepting = (async () => {
    try {
      for await (const c of listener) {
        const p = relay(c);
        pipes.add(p);
        p.finally(() => pipes.delete(p));
      }
    } catch { /* listener closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get connections() {
      return clients.size;
    },
    async close() {
      try {
        listener.close();
      } catch { /* already closed */ }
      await accepting;
      for (const c of [...conns]) closeConn(c);
      await Promise.all([...pipes]);
    },
  };
}
