// Checks the local swap server's L402 gate with a bare gRPC client and the npm `macaroon`
// package, independently of loopkit's own L402 client.
import * as grpc from "@grpc/grpc-js";
import type { MethodDefinition } from "@grpc/proto-loader";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { base64, hex } from "@scure/base";
import * as macaroonLib from "macaroon";
import { Buffer } from "node:buffer";
import { loadSwapServerProto } from "../../proto/mod.ts";
import { decodeInvoice } from "../../core/l402/bolt11.ts";
import { assert, assertEquals } from "../assert.ts";
import { InProcessLightning } from "./lightning.ts";
import { DEFAULT_L402_PRICE_SAT, LOOP_SERVICES_CAVEAT, startSwapServer } from "./server.ts";

// deno-lint-ignore no-explicit-any
type Msg = Record<string, any>;
interface CallResult {
  err?: grpc.ServiceError;
  res?: Msg;
}

const pkg = loadSwapServerProto();
const method = (service: string, name: string) =>
  (pkg[`looprpc.${service}`] as unknown as Record<string, MethodDefinition<Msg, Msg>>)[name];

function call(client: grpc.Client, def: MethodDefinition<Msg, Msg>, req: Msg, md = new grpc.Metadata()) {
  return new Promise<CallResult>((resolve) =>
    client.makeUnaryRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      req,
      md,
      { deadline: Date.now() + 5000 },
      (err, res) => resolve(err ? { err } : { res: res! }),
    )
  );
}

Deno.test("local swap server: challenge, credential forms, refusals and stubs", async () => {
  const ln = new InProcessLightning("regtest");
  const server = await startSwapServer({ invoices: ln });
  const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
  try {
    const newAddress = method("StaticAddressServer", "ServerNewAddress");
    const req = {
      protocolVersion: 0,
      clientKey: Buffer.from(secp256k1.getPublicKey(new Uint8Array(32).fill(5))),
    };

    // 1. No credential: trailers-only INTERNAL "payment required" with LSAT then L402 challenges.
    const first = await call(client, newAddress, req);
    assertEquals(first.err?.code, grpc.status.INTERNAL);
    assertEquals(first.err?.details, "payment required");
    const values = first.err!.metadata.get("www-authenticate").map(String).join(", ");
    const m = /^LSAT macaroon="([^"]+)", invoice="([^"]+)", L402 macaroon="\1", invoice="\2"$/.exec(values);
    assert(m, values);
    const mac = macaroonLib.importMacaroon(base64.decode(m[1]));
    const id: Uint8Array = mac.identifier;
    assertEquals(id.length, 66);
    assertEquals([id[0], id[1]], [0, 0]);
    const invoice = decodeInvoice(m[2], "regtest");
    assertEquals(invoice.amountMsat, DEFAULT_L402_PRICE_SAT * 1000n);
    assertEquals(hex.encode(id.subarray(2, 34)), hex.encode(invoice.paymentHash));
    assertEquals(mac.location, "lsat");
    assertEquals(mac.caveats.map((c: { identifier: Uint8Array }) => new TextDecoder().decode(c.identifier)), [
      LOOP_SERVICES_CAVEAT,
    ]);
    const preimage = ln.invoices.get(hex.encode(invoice.paymentHash))!.preimage;

    // 2. `macaroon` metadata with the preimage caveat: accepted.
    const paid = macaroonLib.importMacaroon(base64.decode(m[1]));
    paid.addFirstPartyCaveat(`preimage=${hex.encode(preimage)}`);
    const md = new grpc.Metadata();
    md.set("macaroon", hex.encode(paid.exportBinary()));
    const ok = await call(client, newAddress, req, md);
    assertEquals(ok.err, undefined);
    assertEquals(Uint8Array.from(ok.res!.params.serverKey), server.serverKeyAt(0));
    assertEquals(ok.res!.params.expiry, 14400);

    // 3. `authorization: L402 <base64>:<preimage>` (REST form): accepted too.
    const auth = new grpc.Metadata();
    auth.set("authorization", `L402 ${m[1]}:${hex.encode(preimage)}`);
    assertEquals((await call(client, newAddress, req, auth)).res?.params.expiry, 14400);
    assertEquals(server.calls.newAddresses.map((a) => a.keyIndex), [0, 1]);

    // 4. Wrong preimage, or a caveat added without the root key's chain: a fresh challenge.
    const wrong = macaroonLib.importMacaroon(base64.decode(m[1]));
    wrong.addFirstPartyCaveat(`preimage=${hex.encode(sha256(preimage))}`);
    const wrongMd = new grpc.Metadata();
    wrongMd.set("macaroon", hex.encode(wrong.exportBinary()));
    const refused = await call(client, newAddress, req, wrongMd);
    assertEquals(refused.err?.code, grpc.status.INTERNAL);
    assertEquals(server.calls.rejectedCredentials, 1);
    assertEquals(server.calls.challenges, 2);
    server.setMisbehaviour({ rejectInvalidCredential: "unauthenticated" });
    assertEquals((await call(client, newAddress, req, wrongMd)).err?.code, grpc.status.UNAUTHENTICATED);

    // 5. Behind the gate: terms answer the default knobs, FetchL402 answers empty, and a loop-in without a
    // chain source is refused as a precondition.
    const terms = await call(client, method("SwapServer", "LoopInTerms"), {}, md);
    assertEquals([terms.res?.minSwapAmount, terms.res?.maxSwapAmount], ["50000", "100000000"]);
    assertEquals((await call(client, method("SwapServer", "FetchL402"), {}, md)).res, {});
    const noChain = await call(client, method("StaticAddressServer", "ServerStaticAddressLoopIn"), {}, md);
    assertEquals(noChain.err?.code, grpc.status.FAILED_PRECONDITION);

    // 6. A bad client key or protocol version is refused by the server.
    const badKey = await call(client, newAddress, { protocolVersion: 0, clientKey: Buffer.alloc(33) }, md);
    assertEquals(badKey.err?.code, grpc.status.INVALID_ARGUMENT);
    const badVersion = await call(client, newAddress, { ...req, protocolVersion: 1 }, md);
    assertEquals(badVersion.err?.code, grpc.status.INVALID_ARGUMENT);
  } finally {
    client.close();
    await server.stop();
  }
});
