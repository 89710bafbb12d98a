import { sha256 } from "@noble/hashes/sha2.js";
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { exists, withTempDir } from "../../tests/fs.ts";
import { LoopkitError } from "../errors.ts";
import { encodeL402Identifier } from "./identifier.ts";
import { addFirstPartyCaveat, encodeMacaroonV2, mintMacaroon } from "./macaroon.ts";
import { L402TokenStore, TOKEN_LOCK_FILE_NAME } from "./store.ts";
import { encodeTokenFile, parseTokenFile, type TokenFileFields } from "./token_file.ts";

function tokenFields(seed: number, opts: { paid?: boolean } = {}): TokenFileFields {
  const preimage = sha256(new Uint8Array([seed, 1]));
  const paymentHash = sha256(preimage);
  const id = encodeL402Identifier({ version: 0, paymentHash, tokenId: sha256(new Uint8Array([seed, 2])) });
  const mac = addFirstPartyCaveat(mintMacaroon(new Uint8Array(32).fill(seed), id, "lsat"), "services=loop:0");
  return {
    macaroonBytes: encodeMacaroonV2(mac),
    paymentHash,
    preimage: opts.paid ? preimage : new Uint8Array(32),
    amountPaidMsat: opts.paid ? 10_000n : 0n,
    routingFeePaidMsat: opts.paid ? 1_000n : 0n,
    createdAtNs: 1_700_000_000_123_456_789n,
  };
}

/** Runs `fn` with a not yet existing network directory `<temp>/regtest`. */
const withDir = (fn: (dir: string) => Promise<void>): Promise<void> =>
  withTempDir((root) => fn(join(root, "regtest")));

async function codeOf(p: Promise<unknown>): Promise<string> {
  return (await assertRejects(() => p, LoopkitError)).code;
}

Deno.test("L402TokenStore.open() creates the network directory with mode 0700 and starts empty", async () => {
  await withDir(async (dir) => {
    const store = await L402TokenStore.open(dir);
    assertEquals((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assertEquals(await store.currentToken(), null);
    assertEquals(await store.pendingToken(), null);
  });
});

Deno.test("L402TokenStore writes a pending token to l402.token.pending with mode 0600", async () => {
  await withDir(async (dir) => {
    const store = await L402TokenStore.open(dir);
    const pending = tokenFields(1);
    assertEquals(await store.storeToken(pending), "written");
    assertEquals((await Deno.stat(store.pendingPath)).mode! & 0o777, 0o600);
    assert(!(await exists(store.paidPath)));
    const cur = await store.currentToken();
    assertEquals(cur?.paid, false);
    assertEquals(cur?.path, store.pendingPath);
    assertEquals(cur?.bytes, encodeTokenFile(pending));
  });
});

Deno.test("L402TokenStore replaces a pending token by the paid one with the same hash and removes the pending file", async () => {
  await withDir(async (dir) => {
    const store = await L402TokenStore.open(dir);
    await store.storeToken(tokenFields(1));
    assertEquals(await store.storeToken(tokenFields(1, { paid: true })), "written");
    assert(!(await exists(store.pendingPath)));
    assertEquals((await Deno.stat(store.paidPath)).mode! & 0o777, 0o600);
    const cur = await store.currentToken();
    assertEquals(cur?.paid, true);
    assertEquals(cur?.amountPaidMsat, 10_000n);
    assertEquals(
      parseTokenFile(await Deno.readFile(store.paidPath)).preimage,
      tokenFields(1, { paid: true }).preimage,
    );
  });
});

Deno.test("L402TokenStore refuses a paid token whose hash differs from the pending one and keeps the pending file", async () => {
  await withDir(async (dir) => {
    const store = await L402TokenStore.open(dir);
    await store.storeToken(tokenFields(1));
    assertEquals(await codeOf(store.storeToken(tokenFields(2, { paid: true }))), "l402_token_mismatch");
    assert(await exists(store.pendingPath));
    assert(!(await exists(store.paidPath)));
  });
});

Deno.test("L402TokenStore never overwrites a paid token, but rewriting identical bytes is a no-op", async () => {
  await withDir(async (dir) => {
    const store = await L402TokenStore.open(dir);
    await store.storeToken(tokenFields(1, { paid: true }));
    const before = await Deno.readFile(store.paidPath);
    assertEquals(await codeOf(store.storeToken(tokenFields(2, { paid: true }))), "l402_token_exists");
    assertEquals(await codeOf(store.storeToken(tokenFields(3))), "l402_token_exists");
    assertEquals(await store.storeToken(tokenFields(1, { paid: true })), "unchanged");
    assertEquals(await Deno.readFile(store.paidPath), before);
    assert(!(await exists(store.pendingPath)));
  });
});

Deno.test("L402TokenStore refuses a second pending token over a pending one", async () => {
  await withDir(async (dir) => {
    const store = await L402TokenStore.open(dir);
    await store.storeToken(tokenFields(1));
    const err = await assertRejects(() => store.storeToken(tokenFields(2)), LoopkitError, "won't replace");
    assertEquals(err.code, "l402_token_exists");
    assertEquals((await store.currentToken())?.paymentHash, tokenFields(1).paymentHash);
  });
});

Deno.test("L402TokenStore refuses a paid token whose preimage does not prove the payment", async () => {
  await withDir(async (dir) => {
    const store = await L402TokenStore.open(dir);
    const bad = { ...tokenFields(1, { paid: true }), preimage: new Uint8Array(32).fill(7) };
    assertEquals(await codeOf(store.storeToken(bad)), "l402_token_invalid");
    // A paid token whose hash is not the macaroon's is useless too.
    const other = tokenFields(2, { paid: true });
    const swapped = {
      ...tokenFields(1, { paid: true }),
      paymentHash: other.paymentHash,
      preimage: other.preimage,
    };
    assertEquals(await codeOf(store.storeToken(swapped)), "l402_token_invalid");
    assertEquals(await store.currentToken(), null);
  });
});

Deno.test("L402TokenStore reads the paid token when both files exist", async () => {
  await withDir(async (dir) => {
    const store = await L402TokenStore.open(dir);
    await Deno.writeFile(store.pendingPath, encodeTokenFile(tokenFields(2)));
    await Deno.writeFile(store.paidPath, encodeTokenFile(tokenFields(1, { paid: true })));
    const cur = await store.currentToken();
    assertEquals(cur?.paid, true);
    assertEquals(cur?.paymentHash, tokenFields(1).paymentHash);
  });
});

Deno.test("L402TokenStore.open() renames legacy lsat.token files, but never over an existing l402 file", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(dir, { recursive: true });
    const paid = encodeTokenFile(tokenFields(1, { paid: true }));
    await Deno.writeFile(join(dir, "lsat.token"), paid);
    await Deno.writeFile(join(dir, "lsat.token.pending"), encodeTokenFile(tokenFields(2)));
    await Deno.writeFile(join(dir, "l402.token.pending"), encodeTokenFile(tokenFields(3)));
    const store = await L402TokenStore.open(dir);
    assert(!(await exists(join(dir, "lsat.token"))));
    assertEquals(await Deno.readFile(store.paidPath), paid);
    // l402.token.pending existed: the legacy pending file stays where it is, untouched.
    assert(await exists(join(dir, "lsat.token.pending")));
    assertEquals((await store.pendingToken())?.paymentHash, tokenFields(3).paymentHash);
  });
});

Deno.test("L402TokenStore names the file when a token file does not parse", async () => {
  await withDir(async (dir) => {
    const store = await L402TokenStore.open(dir);
    await Deno.writeFile(store.pendingPath, new Uint8Array([0, 0, 0, 9, 1]));
    const err = await assertRejects(() => store.currentToken(), LoopkitError, store.pendingPath);
    assertEquals(err.code, "l402_token_invalid");
  });
});

Deno.test("L402TokenStore.removePendingToken() removes only the expected bytes", async () => {
  await withDir(async (dir) => {
    const store = await L402TokenStore.open(dir);
    await store.storeToken(tokenFields(1));
    assertEquals(await store.removePendingToken(encodeTokenFile(tokenFields(2))), false);
    assert(await exists(store.pendingPath));
    assertEquals(await store.removePendingToken(encodeTokenFile(tokenFields(1))), true);
    assert(!(await exists(store.pendingPath)));
    assertEquals(await store.removePendingToken(), false);
  });
});

Deno.test("L402TokenStore.withLock() runs sections one at a time and uses a file listauth ignores", async () => {
  await withDir(async (dir) => {
    const store = await L402TokenStore.open(dir);
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    const a = store.withLock(async () => {
      order.push("a start");
      await gate;
      order.push("a end");
    });
    await new Promise((r) => setTimeout(r, 20));
    const b = store.withLock(() => {
      order.push("b");
      return Promise.resolve();
    });
    await new Promise((r) => setTimeout(r, 50));
    release();
    await Promise.all([a, b]);
    assertEquals(order, ["a start", "a end", "b"]);
    assert(!TOKEN_LOCK_FILE_NAME.startsWith("l402.token"));
  });
});

Deno.test("L402TokenStore.open() removes token temp files a killed write left (copies of the token)", async () => {
  await withTempDir(async (dir) => {
    for (const n of ["l402.token.tmp", "l402.token.pending.tmp"]) {
      await Deno.writeFile(join(dir, n), new Uint8Array(9));
    }
    await Deno.writeFile(join(dir, "l402.token"), new Uint8Array(3));
    await L402TokenStore.open(dir);
    assertEquals(await exists(join(dir, "l402.token.tmp")), false);
    assertEquals(await exists(join(dir, "l402.token.pending.tmp")), false);
    assert(await exists(join(dir, "l402.token")), "the token itself stays");
  });
});
