import { bytesToHex } from "@noble/hashes/utils.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { LoopkitError } from "../errors.ts";
import { staticAddress } from "../staticaddr/script.ts";
import {
  type BranchScanInput,
  checkKeyScanLimit,
  checkScanGap,
  DERIVE_WINDOW,
  findClientKey,
  scanBranches,
  scanFamilies,
} from "./scan.ts";
import { lndFailure, MemLnd } from "./_restore_testing.ts";

const SERVER = secp256k1.getPublicKey(Uint8Array.from({ length: 32 }, (_, i) => i + 7), true);
const EXPIRY = 144;

function input(lnd: MemLnd, hits: [number, number][], over: Partial<BranchScanInput> = {}): BranchScanInput {
  const scripts = new Set(hits.map(([f, i]) => bytesToHex(lnd.childAddress(f, i, SERVER, EXPIRY).pkScript)));
  return {
    families: [42061, 42062],
    gap: 20,
    walletPkScripts: scripts,
    serverPubkey: SERVER,
    csvExpiry: EXPIRY,
    network: "regtest",
    lnd,
    ...over,
  };
}

Deno.test("findClientKey() finds the client key at index 7 of family 42060 and stops within one window", async () => {
  const lnd = new MemLnd();
  const key = await findClientKey(lnd, 42060, lnd.keyRing.publicKey(42060, 7));
  assertEquals(key?.keyLocator, { family: 42060, index: 7 });
  const asked = lnd.derived.map((l) => l.index);
  assertEquals(asked, Array.from({ length: asked.length }, (_, i) => i), "indexes asked in order from 0");
  assert(asked.length <= 32, `the window opens gradually: ${asked.length} asked for a key at index 7`);
  assert(lnd.derived.every((l) => l.family === 42060), "only the legacy family is searched");
  assertEquals(lnd.calls.deriveNextKey, 0);
});

Deno.test("findClientKey() finds index 22 (past Loop's 0..20) by default and searches exactly 0..limit", async () => {
  const lnd = new MemLnd();
  // The reported case: lnd's DeriveNextKey had reached 22; Loop's window (0..20) misses it.
  assertEquals((await findClientKey(lnd, 42060, lnd.keyRing.publicKey(42060, 22)))?.keyLocator.index, 22);
  assertEquals(await findClientKey(lnd, 42060, lnd.keyRing.publicKey(42060, 22), 20), null);
  const other = new MemLnd();
  assertEquals(await findClientKey(other, 42060, other.keyRing.publicKey(42060, 1001)), null);
  assertEquals(other.derived.length, 1001, "default limit 1000: indexes 0..1000");
  assertEquals(Math.max(...other.derived.map((l) => l.index)), 1000);
  assertEquals(
    (await findClientKey(other, 42060, other.keyRing.publicKey(42060, 1000)))?.keyLocator.index,
    1000,
  );
});

Deno.test("findClientKey() pipelines: 1 001 derivations take about 1001/window round trips (11, not 1 001)", async () => {
  const lnd = new MemLnd();
  let inFlight = 0;
  let maxInFlight = 0;
  let rounds = 0;
  const inner = lnd.deriveKey.bind(lnd);
  // Each call answers after a macrotask (a "round trip"); calls issued together share one.
  let tick: Promise<void> | null = null;
  lnd.deriveKey = async (loc) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    tick ??= new Promise<void>((r) =>
      setTimeout(() => {
        rounds++;
        tick = null;
        r();
      }, 1)
    );
    await tick;
    inFlight--;
    return inner(loc);
  };
  assertEquals(await findClientKey(lnd, 42060, lnd.keyRing.publicKey(42060, 5000)), null);
  assertEquals(maxInFlight, DERIVE_WINDOW);
  // The window opens 8, 16, 32, 64, then 128: 4 ramp rounds, then full windows.
  assert(rounds <= Math.ceil(1001 / DERIVE_WINDOW) + 5, `${rounds} round trips for 1 001 derivations`);
});

Deno.test("checkKeyScanLimit() accepts 20..1 000 000 only", () => {
  checkKeyScanLimit(20);
  checkKeyScanLimit(1_000_000);
  for (const bad of [19, 1_000_001, 1.5, -1]) {
    assertEquals(assertThrowsLoopkit(() => checkKeyScanLimit(bad)).exitCode, 2);
  }
});

function assertThrowsLoopkit(fn: () => void): LoopkitError {
  try {
    fn();
  } catch (e) {
    if (e instanceof LoopkitError) return e;
    throw e;
  }
  throw new Error("did not throw");
}

Deno.test("findClientKey() skips a failing DeriveKey like Loop but rethrows an unreachable lnd", async () => {
  const lnd = new MemLnd();
  lnd.deriveErrors.set("42060/2", lndFailure("WalletKit.DeriveKey", "some lnd error"));
  assertEquals((await findClientKey(lnd, 42060, lnd.keyRing.publicKey(42060, 5)))?.keyLocator.index, 5);

  const down = new MemLnd();
  down.deriveErrors.set("42060/0", lndFailure("WalletKit.DeriveKey", "connection refused", true));
  const err = await assertRejects(() => findClientKey(down, 42060, down.keyRing.publicKey(42060, 5)));
  assertEquals((err as LoopkitError).exitCode, 75);
});

Deno.test("findClientKey() refuses an lnd that answers for another locator", async () => {
  const lnd = new MemLnd();
  lnd.deriveKey = (loc) =>
    Promise.resolve({ rawKeyBytes: lnd.keyRing.publicKey(42060, 0), keyLocator: { ...loc, index: 9 } });
  await assertRejects(
    () => findClientKey(lnd, 42060, lnd.keyRing.publicKey(42060, 3)),
    LoopkitError,
    "answered for locator",
  );
});

Deno.test("scanBranches() with gap 20 finds receive hits at 19, 39, 59 and change 19, misses 80 (case 45)", async () => {
  const lnd = new MemLnd();
  const scans = await scanBranches(
    input(lnd, [[42061, 19], [42061, 39], [42061, 59], [42061, 80], [42062, 19]]),
  );
  assertEquals(scans.map((s) => s.family), [42061, 42062]);
  assertEquals(scans[0].hits.map((h) => h.keyLocator.index), [19, 39, 59]);
  assertEquals(scans[0].firstIndex, 0);
  assertEquals(scans[0].lastIndex, 79);
  assertEquals(scans[1].hits.map((h) => h.keyLocator), [{ family: 42062, index: 19 }]);
  assertEquals(scans[1].lastIndex, 39);
  assertEquals(lnd.calls.deriveKey, 80 + 40);
  assertEquals(lnd.calls.deriveNextKey, 0);
  // Each hit is the address the backup's server key and expiry produce for that child key.
  const h = scans[0].hits[1];
  assertEquals(
    h.address.pkScript,
    staticAddress({
      clientPubkey: lnd.keyRing.publicKey(42061, 39),
      serverPubkey: SERVER,
      csvExpiry: EXPIRY,
      network: "regtest",
    })
      .pkScript,
  );
  assertEquals(h.clientPubkey, lnd.keyRing.publicKey(42061, 39));
});

Deno.test("scanBranches() without hits derives exactly gap children per family", async () => {
  const lnd = new MemLnd();
  const other = secp256k1.getPublicKey(Uint8Array.from({ length: 32 }, () => 9), true);
  const scans = await scanBranches({ ...input(lnd, []), walletPkScripts: new Set([bytesToHex(other)]) });
  assertEquals(scans.map((s) => [s.lastIndex, s.hits.length]), [[19, 0], [19, 0]]);
  assertEquals(lnd.calls.deriveKey, 40);
});

Deno.test("scanBranches() with gap 2 finds receive 0 and change 1 and stops before receive 3 and 22", async () => {
  const lnd = new MemLnd();
  const hits: [number, number][] = [[42061, 0], [42061, 3], [42061, 22], [42062, 1]];
  const scans = await scanBranches(input(lnd, hits, { gap: 2 }));
  assertEquals(scans[0].hits.map((h) => h.keyLocator.index), [0]);
  assertEquals(scans[0].lastIndex, 2);
  assertEquals(scans[1].hits.map((h) => h.keyLocator.index), [1]);
  assertEquals(scans[1].lastIndex, 3);
  const wide = await scanBranches(input(new MemLnd(), hits, { gap: 20 }));
  assertEquals(wide[0].hits.map((h) => h.keyLocator.index), [0, 3, 22]);
  assertEquals(wide[0].lastIndex, 42);
  assertEquals(wide[1].hits.map((h) => h.keyLocator.index), [1]);
});

Deno.test("scanBranches() derives nothing when the wallet snapshot is empty", async () => {
  const lnd = new MemLnd();
  const scans = await scanBranches(input(lnd, []));
  assertEquals(scans.map((s) => s.lastIndex), [null, null]);
  assertEquals(lnd.calls.deriveKey, 0);
});

Deno.test("scanBranches() drops zero and duplicate families and keeps their order", async () => {
  assertEquals(scanFamilies([42061, 42062]), [42061, 42062]);
  assertEquals(scanFamilies([42062, 0, 42062, -5, 42061]), [42062, 42061]);
  assertEquals(scanFamilies([0, 0]), []);
  const lnd = new MemLnd();
  assertEquals(await scanBranches(input(lnd, [[42061, 0]], { families: [0, 0] })), []);
  assertEquals(lnd.calls.deriveKey, 0);
});

Deno.test("scanBranches() fails on a DeriveKey error, naming the child (unlike the client-key search)", async () => {
  const lnd = new MemLnd();
  lnd.deriveErrors.set("42062/4", lndFailure("WalletKit.DeriveKey", "boom"));
  const err = await assertRejects(
    () => scanBranches(input(lnd, [[42061, 0]])),
    LoopkitError,
    "unable to derive multi-address child 42062:4",
  );
  assertEquals((err as LoopkitError).exitCode, 1);
  const down = new MemLnd();
  down.deriveErrors.set("42061/0", lndFailure("WalletKit.DeriveKey", "unreachable", true));
  const e2 = await assertRejects(() => scanBranches(input(down, [[42061, 0]])));
  assertEquals((e2 as LoopkitError).exitCode, 75);
});

Deno.test("checkScanGap() accepts 1..10000 and refuses anything else with Loop's wording", () => {
  checkScanGap(1);
  checkScanGap(10_000);
  for (const bad of [0, -1, 2.5, 10_001, Number.NaN]) {
    let err: unknown;
    try {
      checkScanGap(bad);
    } catch (e) {
      err = e;
    }
    assert(err instanceof LoopkitError, `gap ${bad} accepted`);
    assertEquals(err.exitCode, 2);
    assert(err.message.startsWith(`invalid multi-address scan gap ${bad}`), err.message);
  }
});

Deno.test("MemLnd's cached derivation equals the fake lnd key ring (lnd's paths)", () => {
  const lnd = new MemLnd();
  for (const [f, i] of [[42060, 0], [42061, 22], [42062, 1]]) {
    assertEquals(lnd.publicKey(f, i), lnd.keyRing.publicKey(f, i));
  }
});
