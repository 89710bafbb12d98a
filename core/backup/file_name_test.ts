import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { backupFileName, parseBackupFileName } from "./file_name.ts";
import { vector } from "./_testing.ts";

const ID = vector.token_id as string;

Deno.test("backupFileName() equals the vector file name", () => {
  assertEquals(backupFileName(BigInt(vector.token_created_at_ns), ID), vector.file_name);
  assertEquals(
    backupFileName(1776159001000000000n, ID),
    "L402_backup_1776159001000000000_" + "01" + "0".repeat(62) + ".enc",
  );
});

Deno.test("backupFileName() zero-pads to 19 digits like Go %019d", () => {
  assertEquals(backupFileName(5n, ID), `L402_backup_${"0".repeat(18)}5_${ID}.enc`);
  assertEquals(backupFileName(0n, ID), `L402_backup_${"0".repeat(19)}_${ID}.enc`);
  assertEquals(backupFileName((1n << 63n) - 1n, ID), `L402_backup_9223372036854775807_${ID}.enc`);
});

Deno.test("backupFileName() refuses negative times and non-canonical token IDs", () => {
  assertThrows(() => backupFileName(-1n, ID), RangeError, "out of range");
  assertThrows(() => backupFileName(1n << 63n, ID), RangeError);
  assertThrows(() => backupFileName(1n, "AB".repeat(32)), RangeError, "lower-case hex");
  assertThrows(() => backupFileName(1n, ID.slice(2)), RangeError);
});

Deno.test("parseBackupFileName() round-trips canonical names with exact bigint timestamps", () => {
  for (const t of [0n, 1776159001000000123n, (1n << 63n) - 1n]) {
    assertEquals(parseBackupFileName(backupFileName(t, "ab".repeat(32))), {
      ok: true,
      createdAtNs: t,
      tokenId: "ab".repeat(32),
    });
  }
});

Deno.test("parseBackupFileName() returns null where Loop's parser rejects the name too", () => {
  const notOurs = [
    "l402.token",
    "loop.db",
    `l402_backup_1776159001000000000_${ID}.enc`,
    `L402_backup_1776159001000000000_${ID}.ENC`,
    `L402_backup_1776159001000000000_${ID}.enc.tmp`,
    `L402_backup_1776159001000000000${ID}.enc`,
    "L402_backup_not-an-id.enc",
    `L402_backup__${ID}.enc`,
    `L402_backup_17761590010000000x0_${ID}.enc`,
    `L402_backup_9223372036854775808_${ID}.enc`,
    `L402_backup_1_000_${ID}.enc`,
    `L402_backup_1776159001000000000_${ID}0.enc`,
    `L402_backup_1776159001000000000_${"g".repeat(64)}.enc`,
    `L402_backup_1776159001000000000_${ID}_x.enc`,
    "L402_backup_.enc",
  ];
  for (const n of notOurs) assertEquals(parseBackupFileName(n), null, n);
});

Deno.test("parseBackupFileName() flags names only Go's lax parser accepts (decision 4)", () => {
  const cases: [string, string][] = [
    [`L402_backup_5_${ID}.enc`, "timestamp is not 19 digits"],
    [`L402_backup_+1776159001000000000_${ID}.enc`, "timestamp is not 19 digits"],
    [`L402_backup_-000000000000000001_${ID}.enc`, "timestamp is not 19 digits"],
    [`L402_backup_01776159001000000000_${ID}.enc`, "timestamp is not 19 digits"],
    [`L402_backup_1776159001000000000_${"AB".repeat(32)}.enc`, "token ID is not lower-case hex"],
  ];
  for (const [name, why] of cases) {
    const r = parseBackupFileName(name);
    assertEquals(
      r,
      { ok: false, message: `Cannot parse backup file name ${JSON.stringify(name)}: ${why}` },
      name,
    );
  }
});
