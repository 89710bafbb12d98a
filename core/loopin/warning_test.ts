import { assertEquals } from "../../tests/assert.ts";
import { formatLowConfirmationWarning, lowConfirmationDeposits } from "./warning.ts";
import type { SelectableDeposit } from "./select.ts";
import { op } from "./_testing.ts";

const CSV = 14_400;
const TIP = 900_000;

/** Confirmations the way a node counts them: the confirming block is the first. */
const confsAt = (confirmationHeight: number) => TIP - confirmationHeight + 1;

function dep(n: number, valueSat: bigint, confirmationHeight: number): SelectableDeposit {
  return { outpoint: op(n), valueSat, confirmationHeight };
}

Deno.test("warning lists confirmed deposits below 6 confirmations and labels unconfirmed ones (scenario 53)", () => {
  const five = dep(1, 100_000n, TIP - 4); // 5 confirmations
  const six = dep(2, 100_000n, TIP - 5); // 6: not listed
  const one = dep(3, 100_000n, TIP); // 1
  const none = dep(4, 100_000n, 0);
  assertEquals(confsAt(five.confirmationHeight), 5);
  assertEquals(confsAt(six.confirmationHeight), 6);
  const entries = lowConfirmationDeposits({
    deposits: [five, six, one, none],
    csvExpiry: CSV,
    tipHeight: TIP,
    outpoints: [five.outpoint, six.outpoint, one.outpoint, none.outpoint, op(99)],
  });
  assertEquals(entries, [
    { outpoint: five.outpoint, confirmations: confsAt(five.confirmationHeight) },
    { outpoint: one.outpoint, confirmations: confsAt(one.confirmationHeight) },
    { outpoint: none.outpoint, confirmations: null },
  ]);
  const text = formatLowConfirmationWarning(entries);
  const expected = [
    "",
    "WARNING: The following deposits are below the conservative 6-confirmation threshold:",
    `  - ${five.outpoint} (5 confirmations)`,
    `  - ${one.outpoint} (1 confirmations)`,
    `  - ${none.outpoint} (unconfirmed)`,
    "The swap payment for these deposits may wait for more confirmations depending on the server's confirmation-risk policy.",
    "",
  ].join("\n");
  assertEquals(text, expected);
  assertEquals(formatLowConfirmationWarning([]), "");
  // Without the CSV expiry confirmed deposits cannot be judged and are skipped, like Loop.
  assertEquals(
    lowConfirmationDeposits({
      deposits: [five, none],
      csvExpiry: 0,
      tipHeight: TIP,
      outpoints: [five.outpoint, none.outpoint],
    }),
    [{ outpoint: none.outpoint, confirmations: null }],
  );
});

Deno.test("warning auto-selection prefers confirmed deposits and includes unconfirmed ones when needed (scenario 54)", () => {
  const mempoolHuge = dep(10, 10_000_000n, 0);
  const laterExpiry = dep(11, 1_000_000n, TIP - 2); // 3 confs
  const earlierExpiry = dep(12, 1_000_000n, TIP - 3); // 4 confs, expires first
  const small = dep(13, 50_000n, TIP - 1); // 2 confs
  const tooClose = dep(14, 5_000_000n, TIP - CSV + 1_000); // 1000 blocks left: filtered
  const listing = [mempoolHuge, laterExpiry, earlierExpiry, small, tooClose];
  // 1 000 000 exactly: the earlier-expiring of the two equal confirmed deposits.
  assertEquals(
    lowConfirmationDeposits({ deposits: listing, csvExpiry: CSV, tipHeight: TIP, targetSat: 1_000_000n }),
    [
      { outpoint: earlierExpiry.outpoint, confirmations: confsAt(earlierExpiry.confirmationHeight) },
    ],
  );
  // 2 050 000: all three confirmed ones (sum 2 050 000), the unconfirmed giant is not needed.
  assertEquals(
    lowConfirmationDeposits({ deposits: listing, csvExpiry: CSV, tipHeight: TIP, targetSat: 2_050_000n })
      .map((e) => e.outpoint),
    [earlierExpiry.outpoint, laterExpiry.outpoint, small.outpoint],
  );
  // 3 000 000: the confirmed ones are not enough, so the unconfirmed one joins; the too-close one never does.
  assertEquals(
    lowConfirmationDeposits({ deposits: listing, csvExpiry: CSV, tipHeight: TIP, targetSat: 3_000_000n })
      .map((e) => e.outpoint),
    [earlierExpiry.outpoint, laterExpiry.outpoint, small.outpoint, mempoolHuge.outpoint],
  );
  // No selection possible → nothing checked.
  assertEquals(
    lowConfirmationDeposits({ deposits: listing, csvExpiry: CSV, tipHeight: TIP, targetSat: 10n ** 12n }),
    [],
  );
  assertEquals(lowConfirmationDeposits({ deposits: listing, csvExpiry: CSV, tipHeight: TIP }), []);
});
