import { assert, assertEquals } from "../../tests/assert.ts";
import {
  blocksUntilExpiry,
  checkManualSelection,
  hasLoopInRunway,
  reportedBlocksUntilExpiry,
  type SelectableDeposit,
  selectDeposits,
  totalValueSat,
} from "./select.ts";
import { MIN_RUNWAY_BLOCKS } from "./types.ts";
import { assertLoopkitError, op } from "./_testing.ts";

const DUST = 330n;
const CSV = 14_400;
const TIP = 5_100;

function dep(n: number, valueSat: bigint, confirmationHeight: number, state?: string): SelectableDeposit {
  return state === undefined
    ? { outpoint: op(n), valueSat, confirmationHeight }
    : { outpoint: op(n), valueSat, confirmationHeight, state };
}

// Loop's manager_test.go deposits (scenario 32).
const d1 = dep(1, 1_000_000n, 5_000);
const d2 = dep(2, 2_000_000n, 5_001);
const d3 = dep(3, 3_000_000n, 5_002);
const d4 = dep(4, 3_000_000n, 5_003);

Deno.test("MIN_RUNWAY_BLOCKS is Loop's 1000 + 50 (spec §3.2)", () => {
  assertEquals(MIN_RUNWAY_BLOCKS, 1000 + 50);
});

Deno.test("blocksUntilExpiry: conf + csv − tip, floored at 0; unconfirmed is null, listed as the full CSV", () => {
  assertEquals(blocksUntilExpiry(850_000, 14_400, 860_000), 850_000 + 14_400 - 860_000);
  assertEquals(blocksUntilExpiry(850_000, 14_400, 864_400), 0);
  assertEquals(blocksUntilExpiry(850_000, 14_400, 900_000), 0);
  assertEquals(blocksUntilExpiry(0, 14_400, 900_000), null);
  assertEquals(reportedBlocksUntilExpiry(0, 14_400, 900_000), 14_400); // scenario 68
  assertEquals(reportedBlocksUntilExpiry(850_000, 14_400, 900_000), 0);
  assertLoopkitError(() => blocksUntilExpiry(-1, 1, 1), "loopin_invalid_argument", 1);
  assertLoopkitError(() => blocksUntilExpiry(1, 1.5, 1), "loopin_invalid_argument", 1);
});

Deno.test("runway: CSV 14 400 confirmed at 850 000 is refused at tip 863 351 and allowed at 863 350", () => {
  const expiryHeight = 850_000 + 14_400;
  assertEquals(expiryHeight - 863_350, 1050);
  assert(hasLoopInRunway(850_000, 14_400, 863_350));
  assert(!hasLoopInRunway(850_000, 14_400, 863_351));
  assert(hasLoopInRunway(0, 14_400, 10_000_000)); // unconfirmed: CSV has not started
  const d = { outpoint: op(9), valueSat: 1_000_000n, confirmationHeight: 850_000 };
  assertEquals(checkManualSelection([d.outpoint], [d], 14_400, 863_350), [d]);
  assertLoopkitError(
    () => checkManualSelection([d.outpoint], [d], 14_400, 863_351),
    "loopin_deposit_too_close_to_expiry",
    2,
    "expires in 1049 blocks",
    "1050",
  );
  assertEquals(selectDeposits(500_000n, [d], 14_400, 863_350), [d]);
  assertLoopkitError(() => selectDeposits(500_000n, [d], 14_400, 863_351), "loopin_insufficient_deposits", 2);
});

// Scenario 32, with the expected selection stated by Loop's test names.
const autoCases: {
  name: string;
  deposits: SelectableDeposit[];
  target: bigint;
  csv?: number;
  tip?: number;
  want: SelectableDeposit[] | null;
}[] = [
  { name: "single deposit exact target", deposits: [d1], target: 1_000_000n, want: [d1] },
  { name: "prefer larger deposit when both cover", deposits: [d1, d2], target: 1_000_000n, want: [d2] },
  { name: "prefer largest among three", deposits: [d1, d2, d3], target: 1_000_000n, want: [d3] },
  {
    name: "prefer confirmed over larger unconfirmed",
    deposits: [dep(5, 2_000_000n, 0), dep(6, 1_500_000n, 5_004)],
    target: 1_000_000n,
    want: [dep(6, 1_500_000n, 5_004)],
  },
  { name: "insufficient by 1 sat", deposits: [d1], target: 1_000_001n, want: null },
  { name: "change exactly 330", deposits: [d1], target: 1_000_000n - DUST, want: [d1] },
  { name: "change 329", deposits: [d1], target: 1_000_000n - DUST + 1n, want: null },
  { name: "all deposits exactly", deposits: [d1, d2, d3], target: 6_000_000n, want: [d3, d2, d1] },
  { name: "sum − 330 allowed", deposits: [d1, d2, d3], target: 6_000_000n - DUST, want: [d3, d2, d1] },
  { name: "sum − 329 fails", deposits: [d1, d2, d3], target: 6_000_000n - DUST + 1n, want: null },
  { name: "equal values → earlier expiry first", deposits: [d4, d3], target: 3_000_000n - DUST, want: [d3] },
  {
    name: "deposits within 1050 blocks of expiry are filtered",
    deposits: [dep(7, 3_000_000n, 3_000), dep(8, 2_000_000n, 3_050)],
    target: 1_000_000n,
    csv: 1_000,
    tip: 3_000,
    want: [dep(8, 2_000_000n, 3_050)],
  },
  {
    name: "unconfirmed deposits are swappable (scenario 37) and used when needed",
    deposits: [dep(5, 2_000_000n, 0), d1],
    target: 2_500_000n,
    want: [d1, dep(5, 2_000_000n, 0)],
  },
  {
    name: "non-Deposited deposits are never picked",
    deposits: [dep(10, 5_000_000n, 5_000, "LoopingIn"), d1],
    target: 1_000_000n,
    want: [d1],
  },
];

for (const c of autoCases) {
  Deno.test(`selectDeposits: ${c.name}`, () => {
    const csv = c.csv ?? CSV, tip = c.tip ?? TIP;
    if (c.want === null) {
      // The error names the sum of every eligible deposit and the target.
      const have = c.deposits.filter((d) => hasLoopInRunway(d.confirmationHeight, csv, tip))
        .reduce((s, d) => s + d.valueSat, 0n);
      assertLoopkitError(
        () => selectDeposits(c.target, c.deposits, csv, tip),
        "loopin_insufficient_deposits",
        2,
        "not enough deposits to cover requested amount or prevent dust change",
        `have ${have} sat but need ${c.target} sat`,
      );
      return;
    }
    const got = selectDeposits(c.target, c.deposits, csv, tip);
    assertEquals(got, c.want);
    const sum = totalValueSat(got);
    assert(sum === c.target || sum - c.target >= DUST, "dust rule");
  });
}

Deno.test("selectDeposits: properties on random listings (dust rule, runway, minimal prefix, priority order)", () => {
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
  for (let round = 0; round < 300; round++) {
    const tip = 20_000;
    const deposits: SelectableDeposit[] = [];
    const count = 1 + rand(7);
    for (let i = 0; i < count; i++) {
      const conf = rand(4) === 0 ? 0 : 4_000 + rand(2_000); // some expire within the runway (CSV 16 000)
      deposits.push(dep(round * 10 + i, BigInt(330 + rand(5) * 1_000), conf));
    }
    const target = BigInt(1 + rand(12_000));
    const csv = 16_000;
    const eligible = deposits.filter((d) =>
      d.confirmationHeight === 0 || d.confirmationHeight + csv - tip >= 1050
    );
    let got: SelectableDeposit[] | null;
    try {
      got = selectDeposits(target, deposits, csv, tip);
    } catch {
      got = null;
    }
    const ok = (s: bigint) => s === target || s - target >= DUST;
    // The rule written out: priority order (confirmed first, larger value, earlier expiry), shortest
    // prefix obeying the dust rule. Equal-rank deposits have equal values, so prefix sums do not depend
    // on how ties are ordered.
    const rankOf = (d: SelectableDeposit) => [
      d.confirmationHeight > 0 ? 0 : 1,
      -Number(d.valueSat),
      d.confirmationHeight === 0 ? Infinity : d.confirmationHeight,
    ];
    const cmp = (a: SelectableDeposit, b: SelectableDeposit) => {
      const ra = rankOf(a), rb = rankOf(b);
      for (let i = 0; i < 3; i++) if (ra[i] !== rb[i]) return ra[i] < rb[i] ? -1 : 1;
      return 0;
    };
    const ordered = [...eligible].sort(cmp);
    let expectedLen = -1;
    for (let k = 1, s = 0n; k <= ordered.length; k++) {
      s += ordered[k - 1].valueSat;
      if (ok(s)) {
        expectedLen = k;
        break;
      }
    }
    if (got === null) {
      assertEquals(expectedLen, -1, "refused although a prefix works");
      continue;
    }
    assertEquals(got.length, expectedLen);
    assertEquals(totalValueSat(got), totalValueSat(ordered.slice(0, expectedLen)));
    assert(ok(totalValueSat(got)), "result obeys the dust rule");
    for (const d of got) assert(eligible.includes(d), "only eligible deposits");
    // Minimal: no shorter prefix satisfies the rule.
    for (let k = 1; k < got.length; k++) assert(!ok(totalValueSat(got.slice(0, k))), "minimal prefix");
    // Priority: confirmed first, then larger values, then earlier expiry; nothing left out ranks above a pick.
    const rank = (
      d: SelectableDeposit,
    ) => [
      d.confirmationHeight > 0 ? 0 : 1,
      -Number(d.valueSat),
      d.confirmationHeight === 0 ? Infinity : d.confirmationHeight,
    ];
    const before = (a: SelectableDeposit, b: SelectableDeposit) => {
      const ra = rank(a), rb = rank(b);
      for (let i = 0; i < 3; i++) if (ra[i] !== rb[i]) return ra[i] < rb[i];
      return false;
    };
    for (let i = 1; i < got.length; i++) assert(!before(got[i], got[i - 1]), "sorted by priority");
    const last = got[got.length - 1];
    for (const d of eligible.filter((e) => !got!.includes(e))) {
      assert(!before(d, last), "no skipped better deposit");
    }
  }
});

Deno.test("selectDeposits: ties keep the listing's order by confirmation height (stable)", () => {
  const a = dep(20, 1_000n, 0), b = dep(21, 1_000n, 0), c = dep(22, 1_000n, 0);
  assertEquals(selectDeposits(3_000n, [b, c, a], CSV, TIP), [b, c, a]);
  assertEquals(selectDeposits(3_000n, [a, b, c], CSV, TIP), [a, b, c]);
});

Deno.test("selectDeposits refuses a non-positive target and duplicate outpoints", () => {
  assertLoopkitError(() => selectDeposits(0n, [d1], CSV, TIP), "loopin_amount_invalid", 2);
  assertLoopkitError(() => selectDeposits(-5n, [d1], CSV, TIP), "loopin_amount_invalid", 2);
  assertLoopkitError(
    () => selectDeposits(5n, [d1, d1], CSV, TIP),
    "loopin_duplicate_outpoints",
    2,
    "duplicate outpoints detected",
  );
});

Deno.test("checkManualSelection keeps the given order and checks duplicates, existence, state, runway in that order", () => {
  assertEquals(checkManualSelection([d2.outpoint, d1.outpoint], [d1, d2], CSV, TIP), [d2, d1]);
  // Scenario 60: duplicate --utxo.
  assertLoopkitError(
    () => checkManualSelection([d1.outpoint, d1.outpoint], [d1], CSV, TIP),
    "loopin_duplicate_outpoints",
    2,
    "duplicate outpoints detected",
  );
  assertLoopkitError(
    () => checkManualSelection([d1.outpoint, op(99)], [d1], CSV, TIP),
    "loopin_outpoint_not_found",
    2,
    "not all outpoints found in deposits",
    op(99),
  );
  // Scenario 68: a non-DEPOSITED outpoint is "not currently available".
  const busy = dep(30, 1_000_000n, 5_000, "LoopingIn");
  assertLoopkitError(
    () => checkManualSelection([busy.outpoint], [busy], CSV, TIP),
    "loopin_deposit_not_available",
    2,
    `deposit ${busy.outpoint} is not currently available`,
  );
  // A deposit missing from the wallet view (decision 2) is listed but not selectable.
  const hidden = { ...dep(32, 1_000_000n, 5_000), walletVisible: false };
  assertLoopkitError(
    () => checkManualSelection([hidden.outpoint], [hidden], CSV, TIP),
    "loopin_deposit_not_available",
    2,
    "missing from the lnd wallet view",
  );
  assertEquals(selectDeposits(1_000_000n, [hidden, d1], CSV, TIP), [d1]);
  // Unconfirmed is always fine; an explicit "Deposited" state too.
  const fresh = dep(31, 1_000n, 0, "Deposited");
  assertEquals(checkManualSelection([fresh.outpoint], [fresh], CSV, 10_000_000), [fresh]);
  assertLoopkitError(() => checkManualSelection([], [d1], CSV, TIP), "loopin_no_outpoints", 2);
  assertLoopkitError(() => checkManualSelection(["nope"], [d1], CSV, TIP), "invalid_outpoint", 2);
  // Duplicates are reported before a missing outpoint.
  assertLoopkitError(
    () => checkManualSelection([op(99), op(99)], [d1], CSV, TIP),
    "loopin_duplicate_outpoints",
    2,
  );
});
