import { sha256 } from "@noble/hashes/sha2.js";
import { base64, hex } from "@scure/base";
import * as macaroonLib from "macaroon";
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/assert.ts";
import { encodeInvoice, InProcessLightning } from "../../tests/swapserver/lightning.ts";
import { LoopkitError } from "../errors.ts";
import {
  credentialFor,
  isPaymentRequired,
  L402Client,
  type L402Credential,
  parseChallenge,
} from "./client.ts";
import { decodeL402Identifier } from "./identifier.ts";
import { decodeMacaroonV2 } from "./macaroon.ts";
import { L402TokenStore } from "./store.ts";

const ROOT_KEY = sha256(new TextEncoder().encode("l402 client test root key"));

/** A base macaroon minted by the npm `macaroon` package (go-macaroon compatible), as Aperture mints. */
function mintWithNpm(paymentHash: Uint8Array): Uint8Array {
  const id = new Uint8Array(66);
  id.set(paymentHash, 2);
  id.set(sha256(paymentHash), 34);
  const m = macaroonLib.newMacaroon({ identifier: id, location: "lsat", rootKey: ROOT_KEY, version: 2 });
  m.addFirstPartyCaveat("services=loop:0");
  return m.exportBinary();
}

/** A "payment required" status error carrying a challenge, as the gRPC client surfaces it. */
function challengeError(values: string[], code = 13, details = "payment required") {
  return { code, details, metadata: { get: (k: string) => k === "www-authenticate" ? values : [] } };
}

function header(scheme: string, mac: Uint8Array, invoice: string): string {
  return `${scheme} macaroon="${base64.encode(mac)}", invoice="${invoice}"`;
}

async function withStore(fn: (store: L402TokenStore) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "loopkit-l402-client-" });
  try {
    await fn(await L402TokenStore.open(join(root, "regtest")));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("credentialFor() chains the preimage caveat exactly like the npm macaroon package (go-macaroon)", () => {
  const preimage = sha256(new Uint8Array([42]));
  const base = mintWithNpm(sha256(preimage));
  const cred = credentialFor({ macaroonBytes: base, preimage });
  assertEquals(cred.key, "macaroon");
  assert(/^[0-9a-f]+$/.test(cred.value));

  const expected = macaroonLib.importMacaroon(base);
  expected.addFirstPartyCaveat(`preimage=${hex.encode(preimage)}`);
  assertEquals(cred.value, hex.encode(expected.exportBinary()));

  const imported = macaroonLib.importMacaroon(hex.decode(cred.value));
  const seen: string[] = [];
  imported.verify(ROOT_KEY, (c: string) => {
    seen.push(c);
    return null;
  });
  assertEquals(seen, ["services=loop:0", `preimage=${hex.encode(preimage)}`]);
  assertThrows(() => imported.verify(new Uint8Array(32), () => null));
  assertEquals(cred.tokenId, hex.encode(sha256(sha256(preimage))));
});

Deno.test("credentialFor() refuses an unpaid token", () => {
  const err = assertThrows(
    () => credentialFor({ macaroonBytes: mintWithNpm(new Uint8Array(32)), preimage: new Uint8Array(32) }),
    LoopkitError,
  );
  assertEquals(err.code, "l402_token_invalid");
});

Deno.test("isPaymentRequired() needs code Internal or Unknown and the message, in any case", () => {
  assert(isPaymentRequired({ code: 13, details: "payment required" }));
  assert(isPaymentRequired({ code: 2, details: "rpc error: Payment Required" }));
  assert(!isPaymentRequired({ code: 14, details: "payment required" }));
  assert(!isPaymentRequired({ code: 13, details: "internal error" }));
  assert(!isPaymentRequired(new Error("payment required")));
  assert(!isPaymentRequired(null));
});

Deno.test("parseChallenge() takes the first matching value, also from a comma-joined line", async () => {
  const ln = new InProcessLightning("regtest");
  const { paymentRequest, paymentHash } = await ln.addInvoice(10n, "x");
  const mac = mintWithNpm(paymentHash);
  const lsat = header("LSAT", mac, paymentRequest);
  const l402 = header("L402", mac, paymentRequest);

  const c = parseChallenge(["Basic realm=x", lsat, l402]);
  assertEquals(c.scheme, "LSAT");
  assertEquals(c.invoice, paymentRequest);
  assertEquals(c.macaroonBytes, mac);
  assertEquals(c.identifier.paymentHash, paymentHash);
  assertEquals(parseChallenge([`${lsat}, ${l402}`]).scheme, "LSAT");
  // Newer Aperture: `token=` and an optional version prefix.
  const newer = `L402 version="0", token="${base64.encode(mac)}", invoice="${paymentRequest}"`;
  assertEquals(parseChallenge([newer]).invoice, paymentRequest);
});

Deno.test("parseChallenge() reports Aperture's errors and bad macaroons", () => {
  assertThrows(() => parseChallenge([]), LoopkitError, "auth header not found in response");
  assertThrows(
    () => parseChallenge(["Bearer x", "Basic y"]),
    LoopkitError,
    "invalid auth header format: Bearer x",
  );
  assertThrows(() => parseChallenge(['L402 macaroon="!!", invoice="lnbc1"']), LoopkitError, "base64");
  assertThrows(
    () => parseChallenge([`L402 macaroon="${base64.encode(new Uint8Array([2, 0]))}", invoice="lnbc1"`]),
    LoopkitError,
    "macaroon is invalid",
  );
});

Deno.test("call() passes any other error through untouched and never tracks a pending token for it", async () => {
  await withStore(async (store) => {
    const ln = new InProcessLightning("regtest");
    const payer = ln.payer();
    const client = new L402Client({ store, payer, network: "regtest" });
    const { paymentHash } = await ln.addInvoice(10n, "x");
    await store.storeToken({
      macaroonBytes: mintWithNpm(paymentHash),
      paymentHash,
      preimage: new Uint8Array(32),
      amountPaidMsat: 0n,
      routingFeePaidMsat: 0n,
      createdAtNs: 1n,
    });
    const boom = { code: 5, details: "not found" };
    const err = await assertRejects(() => client.call("X", () => Promise.reject(boom)));
    assert(err === boom as unknown);
    assertEquals(payer.trackCalls.length + payer.sendCalls.length, 0);
    // A pending token is never sent as a credential.
    assertEquals(await client.call("X", (cred) => Promise.resolve(cred)), null);
    assertEquals(payer.trackCalls.length + payer.sendCalls.length, 0);
    assertEquals((await store.currentToken())?.paid, false);
  });
});

Deno.test("call() refuses a challenge whose invoice is for another network, or pays another hash, or has no amount", async () => {
  await withStore(async (store) => {
    const ln = new InProcessLightning("regtest");
    const payer = ln.payer();
    const client = new L402Client({ store, payer, network: "regtest" });
    const { paymentHash } = await ln.addInvoice(10n, "x");
    const mac = mintWithNpm(paymentHash);
    const invoiceFor = (network: "mainnet" | "regtest", hash: Uint8Array, amountMsat?: bigint) =>
      encodeInvoice({ network, amountMsat, paymentHash: hash, nodeKey: ln.nodeKey });
    const attempt = (invoice: string) =>
      assertRejects(
        () => client.call("X", () => Promise.reject(challengeError([header("L402", mac, invoice)]))),
        LoopkitError,
      );

    assertEquals((await attempt(invoiceFor("mainnet", paymentHash, 10_000n))).code, "invoice_invalid");
    const other = await attempt(invoiceFor("regtest", sha256(paymentHash), 10_000n));
    assertEquals(other.code, "l402_bad_challenge");
    assertEquals((await attempt(invoiceFor("regtest", paymentHash))).code, "l402_bad_challenge");
    assertEquals(payer.sendCalls.length, 0);
    assertEquals(await store.currentToken(), null);
  });
});

Deno.test("call() tracks the payment when lnd says it already exists, and pays nothing more", async () => {
  await withStore(async (store) => {
    const ln = new InProcessLightning("regtest");
    const payer = ln.payer();
    const client = new L402Client({ store, payer, network: "regtest" });
    const { paymentRequest, paymentHash } = await ln.addInvoice(10n, "x");
    const mac = mintWithNpm(paymentHash);
    // lnd already settled this invoice (e.g. an earlier run paid it and lost its files).
    payer.onSend = () => payer.recordPayment(paymentHash, "SUCCEEDED");
    const seen: (L402Credential | null)[] = [];
    const res = await client.call("X", (cred) => {
      seen.push(cred);
      return cred
        ? Promise.resolve("ok")
        : Promise.reject(challengeError([header("L402", mac, paymentRequest)]));
    });
    assertEquals(res, "ok");
    assertEquals(seen.length, 2);
    assertEquals(payer.trackCalls, [hex.encode(paymentHash)]);
    assertEquals(payer.paidCount, 1);
    const token = await store.currentToken();
    assert(token?.paid);
    const sent = decodeMacaroonV2(hex.decode(seen[1]!.value));
    assertEquals(decodeL402Identifier(sent.identifier).paymentHash, paymentHash);
  });
});

Deno.test("call() keeps the pending token when lnd reports success without the matching preimage", async () => {
  await withStore(async (store) => {
    const ln = new InProcessLightning("regtest");
    const payer = ln.payer();
    const { paymentRequest, paymentHash } = await ln.addInvoice(10n, "x");
    const mac = mintWithNpm(paymentHash);
    const lying = {
      sendPaymentV2: () =>
        Promise.resolve({
          paymentHash: hex.encode(paymentHash),
          status: "SUCCEEDED" as const,
          preimage: new Uint8Array(32).fill(1),
          feeMsat: 0n,
          valueMsat: 10_000n,
          failureReason: "FAILURE_REASON_NONE",
        }),
      trackPaymentV2: payer.trackPaymentV2.bind(payer),
    };
    const client = new L402Client({ store, payer: lying, network: "regtest" });
    const err = await assertRejects(
      () => client.call("X", () => Promise.reject(challengeError([header("LSAT", mac, paymentRequest)]))),
      LoopkitError,
    );
    assertEquals(err.code, "l402_payment_failed");
    const cur = await store.currentToken();
    assertEquals(cur?.paid, false);
    assertEquals(cur?.path, store.pendingPath);
  });
});
