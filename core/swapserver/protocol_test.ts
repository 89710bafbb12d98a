/**
 * A --swapserver that is not a gRPC server (a web server, a raw TCP service) is named as such: exit 2
 * `swap_server_protocol`, never "RESOURCE_EXHAUSTED: Received message larger than max", "Protocol error" or
 * an empty "Resolution note:" (issue item 15).
 */
import { assertEquals, assertRejects, assertStringIncludes } from "../../tests/assert.ts";
import { generateTestCert } from "../../tests/fakelnd/tls.ts";
import { LoopkitError } from "../errors.ts";
import { L402TokenStore } from "../l402/store.ts";
import type { L402Payer } from "../l402/client.ts";
import { openSwapServer } from "./client.ts";

async function expectProtocolError(
  address: string,
  tls: boolean,
  tlsCert: Uint8Array | undefined,
  dir: string,
) {
  const store = await L402TokenStore.open(dir);
  const payer = {} as L402Payer; // never asked: no L402 challenge gets this far
  const server = openSwapServer({ address, tls, tlsCert, network: "regtest", l402: { store, payer } });
  try {
    const e = await assertRejects(() => server.serverNewAddress(new Uint8Array(33).fill(2)), LoopkitError);
    assertEquals(e.code, "swap_server_protocol", e.message);
    assertEquals(e.exitCode, 2);
    assertStringIncludes(e.message, "--swapserver");
    assertStringIncludes(e.message, "did not answer ServerNewAddress in gRPC");
    assertEquals(/Resolution note/.test(e.message), false, e.message);
  } finally {
    server.close();
  }
}

Deno.test("a web server (HTTP/2 over TLS, HTML 404) at --swapserver is swap_server_protocol, exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-swapproto-" });
  const cert = await generateTestCert(dir);
  const dec = new TextDecoder();
  const web = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      cert: dec.decode(cert.certPem),
      key: dec.decode(cert.keyPem),
      onListen() {},
    },
    () => new Response("<html>not found</html>", { status: 404, headers: { "content-type": "text/html" } }),
  );
  try {
    await expectProtocolError(`127.0.0.1:${web.addr.port}`, true, cert.certPem, dir);
  } finally {
    await web.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a raw TCP service answering garbage at a plaintext loopback --swapserver is swap_server_protocol, exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-swapproto-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serve = (async () => {
    for await (const conn of listener) {
      (async () => {
        await conn.read(new Uint8Array(1024)).catch(() => null);
        await conn.write(new TextEncoder().encode("\x00\x00\x04\x07\x00\x00\x00\x00\x00garbage garbage"))
          .catch(() => 0);
        await new Promise((r) => setTimeout(r, 100));
        try {
          conn.close();
        } catch {
          // already closed by the client
        }
      })();
    }
  })();
  try {
    await expectProtocolError(`127.0.0.1:${(listener.addr as Deno.NetAddr).port}`, false, undefined, dir);
  } finally {
    listener.close();
    await serve.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
