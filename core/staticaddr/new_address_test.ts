import { assertEquals, assertRejects } from "../../tests/assert.ts";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import type { ImportTapscriptResult, KeyDescriptor, LndInfo } from "../../lnd/types.ts";
import { openDb } from "../db/db.ts";
import { listStaticAddresses } from "../db/static_addresses.ts";
import { LoopkitError } from "../errors.ts";
import {
  type AddressServer,
  ensureStaticAddress,
  type NewAddressDeps,
  takeCreationLock,
} from "./new_address.ts";
import type { ServerAddressParamsMessage } from "./script.ts";

const pub = (k: number) =>
  secp256k1.getPublicKey(Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? k : 0)), true);

class LndStandIn {
  nextIndex = 0;
  derived = 0;
  imports: Uint8Array[] = [];
  deriveNextKey(family: number): Promise<KeyDescriptor> {
    this.derived++;
    const index = this.nextIndex++;
    return Promise.resolve({ rawKeyBytes: pub(index + 1), keyLocator: { family, index } });
  }
  importTapscript(xonly: Uint8Array): Promise<ImportTapscriptResult> {
    this.imports.push(xonly);
    return Promise.resolve({ imported: true });
  }
  getInfo(): Promise<LndInfo> {
    return Promise.resolve({
      identityPubkey: "",
      blockHeight: 500,
      blockHash: "",
      chains: [{ chain: "bitcoin", network: "regtest" }],
      syncedToChain: true,
      version: "",
    });
  }
}

class ServerStandIn implements AddressServer {
  calls = 0;
  paid = 0;
  answer: () => ServerAddressParamsMessage | null = () => ({ serverKey: pub(1000), expiry: 14400 });
  ensurePaidToken() {
    this.paid++;
    return Promise.resolve();
  }
  serverNewAddress() {
    this.calls++;
    return Promise.resolve(this.answer());
  }
}

async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-addr-" });
  const db = await openDb({ url: `file:${dir}/loopkit.db`, network: "regtest" });
  const lnd = new LndStandIn();
  const server = new ServerStandIn();
  const deps: NewAddressDeps = { db, lnd, server, network: "regtest" };
  return {
    deps,
    lnd,
    server,
    db,
    async [Symbol.asyncDispose]() {
      db.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("ensureStaticAddress() creates one address, then returns it without calling the server", async () => {
  await using t = await setup();
  const first = await ensureStaticAddress(t.deps);
  assertEquals(first.created, true);
  assertEquals(first.row.clientKeyFamily, 42060);
  assertEquals(first.row.initiationHeight, 500);
  assertEquals(first.address.address.startsWith("bcrt1p"), true);
  const again = await ensureStaticAddress(t.deps);
  assertEquals(again.created, false);
  assertEquals(again.address.address, first.address.address);
  assertEquals(t.server.calls, 1);
  assertEquals(t.lnd.derived, 1);
  assertEquals(t.lnd.imports.length, 2); // re-import on every call, like Loop
  assertEquals((await listStaticAddresses(t.db)).length, 1);
});

for (
  const [name, answer] of [
    ["expiry 0", { serverKey: pub(1000), expiry: 0 }],
    ["expiry above 28800", { serverKey: pub(1000), expiry: 28801 }],
    ["a key off the curve", {
      serverKey: Uint8Array.from([2, ...new Uint8Array(32).fill(0xff)]),
      expiry: 144,
    }],
    ["no parameters", null],
  ] as const
) {
  Deno.test(`ensureStaticAddress() stores and imports nothing on a server answer with ${name}`, async () => {
    await using t = await setup();
    t.server.answer = () => answer;
    await assertRejects(() => ensureStaticAddress(t.deps), LoopkitError, "staticAddress:");
    assertEquals((await listStaticAddresses(t.db)).length, 0);
    assertEquals(t.lnd.imports.length, 0);
  });
}

Deno.test("ensureStaticAddress() reuses the derived client key after a failed attempt", async () => {
  await using t = await setup();
  t.server.answer = () => ({ serverKey: pub(1000), expiry: 0 });
  for (let i = 0; i < 3; i++) await assertRejects(() => ensureStaticAddress(t.deps));
  t.server.answer = () => ({ serverKey: pub(1000), expiry: 144 });
  const ok = await ensureStaticAddress(t.deps);
  assertEquals(t.lnd.derived, 1);
  assertEquals(ok.row.clientKeyIndex, 0);
});

Deno.test("ensureStaticAddress() pays the L402 before deriving a key", async () => {
  await using t = await setup();
  t.server.ensurePaidToken = () => Promise.reject(new Error("payment failed"));
  await assertRejects(() => ensureStaticAddress(t.deps), Error, "payment failed");
  assertEquals(t.lnd.derived, 0);
});

Deno.test("ensureStaticAddress() refuses while another invocation holds a fresh claim (exit 75)", async () => {
  await using t = await setup();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  t.server.ensurePaidToken = () => gate;
  const first = ensureStaticAddress(t.deps);
  await new Promise((r) => setTimeout(r, 50));
  const err = await assertRejects(() => ensureStaticAddress(t.deps), LoopkitError);
  assertEquals(err.exitCode, 75);
  release();
  assertEquals((await first).created, true);
});

Deno.test("ensureStaticAddress() refuses to create an address when a backup of this generation exists", async () => {
  await using t = await setup();
  const err = await assertRejects(
    () =>
      ensureStaticAddress({ ...t.deps, generationBackup: () => Promise.resolve("/data/L402_backup_x.enc") }),
    LoopkitError,
    "loopkit recover",
  );
  assertEquals(err.code, "recover_first");
  assertEquals(t.server.calls, 0);
  assertEquals(t.lnd.derived, 0);
  assertEquals(t.server.paid, 0);
});

Deno.test("ensureStaticAddress() warns when lnd hands out client key index 21 (past Loop's restore window 0..20)", async () => {
  await using t = await setup();
  t.lnd.nextIndex = 21;
  const r = await ensureStaticAddress(t.deps);
  assertEquals(r.row.clientKeyIndex, 21);
  assertEquals(r.warnings.length, 1);
  assertEquals(r.warnings[0].includes("42060/21") && r.warnings[0].includes("Loop's own restore"), true);
  const again = await ensureStaticAddress(t.deps);
  assertEquals(again.warnings, r.warnings, "the stored address keeps the warning");
});

Deno.test("ensureStaticAddress() gives no warning at index 20, the last one Loop's restore finds", async () => {
  await using t = await setup();
  t.lnd.nextIndex = 20;
  assertEquals((await ensureStaticAddress(t.deps)).warnings, []);
});

Deno.test("ensureStaticAddress() refuses a paid token this database did not acquire: no server call, nothing stored", async () => {
  await using t = await setup();
  const deps: NewAddressDeps = { ...t.deps, paidTokenId: () => Promise.resolve("ab".repeat(32)) };
  const err = await assertRejects(() => ensureStaticAddress(deps), LoopkitError, "recover --backup-file");
  assertEquals((err as LoopkitError).code, "l402_token_not_ours");
  assertEquals((err as LoopkitError).exitCode, 1);
  assertEquals([t.server.paid, t.server.calls, t.lnd.derived, t.lnd.imports.length], [0, 0, 0, 0]);
  assertEquals(await listStaticAddresses(t.db), []);
  await assertRejects(() => ensureStaticAddress(deps), LoopkitError, "was not acquired by this database");
});

Deno.test("ensureStaticAddress() resumes a creation interrupted after this database paid the token", async () => {
  await using t = await setup();
  let token: string | null = null;
  t.server.ensurePaidToken = () => {
    t.server.paid++;
    token ??= "cd".repeat(32); // this run pays the token
    return Promise.resolve();
  };
  t.server.answer = () => {
    throw new LoopkitError("server_down", "swap server unreachable", 75);
  };
  const deps: NewAddressDeps = { ...t.deps, paidTokenId: () => Promise.resolve(token) };
  await assertRejects(() => ensureStaticAddress(deps), LoopkitError, "unreachable");
  assertEquals(token, "cd".repeat(32));
  t.server.answer = () => ({ serverKey: pub(1000), expiry: 14400 });
  const r = await ensureStaticAddress(deps);
  assertEquals(r.created, true);
  assertEquals(t.lnd.derived, 1, "the client key of the first attempt is reused");
  // A different token later is another generation: the stored address is simply returned.
  token = "ef".repeat(32);
  assertEquals((await ensureStaticAddress(deps)).created, false);
});

Deno.test("ensureStaticAddress() resumes when the token was paid but the run died before recording it", async () => {
  await using t = await setup();
  let token: string | null = null;
  // First run: claimed (the "acquiring" mark is set), paid, then died before anything else.
  t.server.ensurePaidToken = () => {
    token = "12".repeat(32);
    return Promise.reject(new Error("killed"));
  };
  const deps: NewAddressDeps = { ...t.deps, paidTokenId: () => Promise.resolve(token) };
  await assertRejects(() => ensureStaticAddress(deps), Error, "killed");
  t.server.ensurePaidToken = () => Promise.resolve();
  assertEquals((await ensureStaticAddress(deps)).created, true);
});

Deno.test("ensureStaticAddress() takes over at once a claim whose holder's creation lock is free (kill -9)", async () => {
  await using t = await setup();
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/.loopkit-address.lock`;
    // The killed run: it held the lock and left its claim; its death released the lock.
    t.server.ensurePaidToken = () => new Promise(() => {});
    const ghost = await takeCreationLock(path);
    void ensureStaticAddress({ ...t.deps, creationLock: () => Promise.resolve(ghost) });
    await new Promise((r) => setTimeout(r, 50));
    ghost!.release();
    t.server.ensurePaidToken = () => Promise.resolve();
    const r = await ensureStaticAddress({ ...t.deps, creationLock: () => takeCreationLock(path) });
    assertEquals(r.created, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ensureStaticAddress() exits 75 while another process holds the creation lock; a claim of another lock waits for the TTL", async () => {
  await using t = await setup();
  const err = await assertRejects(
    () => ensureStaticAddress({ ...t.deps, creationLock: () => Promise.resolve(null) }),
    LoopkitError,
    "holds the data directory's creation lock",
  );
  assertEquals(err.exitCode, 75);

  let now = new Date("2026-01-01T00:00:00Z");
  t.server.ensurePaidToken = () => new Promise(() => {});
  const lockOf = (lock: string) => () => Promise.resolve({ lock, release() {} });
  void ensureStaticAddress({
    ...t.deps,
    now: () => now,
    creationLock: lockOf("node2:/data/.loopkit-address.lock"),
  });
  await new Promise((r) => setTimeout(r, 50));
  t.server.ensurePaidToken = () => Promise.resolve();
  const deps = { ...t.deps, now: () => now, creationLock: lockOf("node1:/data/.loopkit-address.lock") };
  const busy = await assertRejects(() => ensureStaticAddress(deps), LoopkitError, "lock node2:");
  assertEquals(busy.exitCode, 75, "another host's claim: its liveness is unknown here");
  now = new Date(now.getTime() + 10 * 60 * 1000 + 1);
  assertEquals((await ensureStaticAddress(deps)).created, true);
});

Deno.test("takeCreationLock() gives the lock to one process at a time and again after it is released", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/.loopkit-address.lock`;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `const f = await Deno.open(${JSON.stringify(path)}, { read: true, write: true, create: true });
        await f.lock(true); console.log("locked"); setInterval(() => {}, 1000);`,
      ],
      stdout: "piped",
    }).spawn();
    const reader = child.stdout.getReader();
    await reader.read(); // "locked"
    assertEquals(await takeCreationLock(path, 200), null, "held by a live process");
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel();
    const mine = await takeCreationLock(path, 2000);
    assertEquals(mine !== null, true, "the kernel released the dead process's lock");
    mine!.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
