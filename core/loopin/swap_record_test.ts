import { assert, assertEquals, assertNotEquals, assertThrows } from "../../tests/assert.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { ExitCode } from "../errors.ts";
import { BACKUP_HEADER_LENGTH, BACKUP_MAGIC, sealBackup } from "../backup/envelope.ts";
import { parseBackupFileName } from "../backup/file_name.ts";
import { txidOfRaw } from "./htlc_tx.ts";
import { HTLC_VARIANTS } from "./types.ts";
import {
  decodeSwapRecord,
  encodeSwapRecord,
  openSwapRecord,
  parseSwapRecordFileName,
  sealSwapRecord,
  SWAP_RECORD_KIND,
  swapRecordFileName,
  SwapRecordInvalidError,
  validateSwapRecord,
} from "./swap_record.ts";
import { sampleSwapRecord } from "./_swap_record_testing.ts";

const KEY = sha256(new TextEncoder().encode("swap record test key"));
const OTHER_KEY = sha256(new TextEncoder().encode("another lnd seed"));

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

/** The record's JSON as an object, to alter one field. */
function jsonOf(bytes: Uint8Array): Json {
  return JSON.parse(new TextDecoder().decode(bytes));
}
const bytesOf = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

Deno.test("swap record: encode → decode gives the same record, every field kept", () => {
  const r = sampleSwapRecord();
  const back = decodeSwapRecord(encodeSwapRecord(r), "test");
  assertEquals(back, r);
  // The facts the sweep needs, recomputed from the record rather than copied.
  assertEquals(bytesToHex(sha256(back.preimage)), bytesToHex(back.swapHash));
  for (const v of HTLC_VARIANTS) assertEquals(back.htlcTxids[v], txidOfRaw(back.htlcTxs[v]));
  assertEquals(back.changeSat, back.totalDepositSat - back.swapAmountSat);
  const json = jsonOf(encodeSwapRecord(r));
  assertEquals(json.kind, SWAP_RECORD_KIND);
  assertEquals(json.version, 1);
  assertEquals(json.htlc_key, { family: 42060, index: 5, pubkey: bytesToHex(r.htlcKey.pubkey) });
  assertEquals(json.deposits[0].value_sat, "300000");
});

Deno.test("swap record: seal → open with the same key gives the record; the envelope is the backup's", () => {
  const r = sampleSwapRecord({ seed: 9, values: [500_000n], changeSat: 0n });
  const sealed = sealSwapRecord(KEY, r);
  assertEquals(sealed.slice(0, BACKUP_MAGIC.length), BACKUP_MAGIC);
  assertEquals(openSwapRecord(KEY, sealed, `/d/${swapRecordFileName(r.swapHash)}`, "regtest"), r);
});

Deno.test("swap record file name: loopin_swap_<hash>.enc, never an L402 backup name", () => {
  const r = sampleSwapRecord();
  const name = swapRecordFileName(r.swapHash);
  assertEquals(name, `loopin_swap_${bytesToHex(r.swapHash)}.enc`);
  assertEquals(parseSwapRecordFileName(name), bytesToHex(r.swapHash));
  assertEquals(parseBackupFileName(name), null, "Loop's and loopkit's backup scans skip it");
  assertEquals(parseSwapRecordFileName(name.toUpperCase()), null);
  assertEquals(parseSwapRecordFileName(name + ".tmp"), null);
  assertEquals(parseSwapRecordFileName(`loopin_swap_${"ab".repeat(31)}.enc`), null);
  assertThrows(() => swapRecordFileName(new Uint8Array(31)), RangeError);
});

Deno.test("swap record: a truncated file is a clear error naming the file (exit 3)", () => {
  const r = sampleSwapRecord();
  const sealed = sealSwapRecord(KEY, r);
  const path = `/backups/${swapRecordFileName(r.swapHash)}`;
  for (const len of [0, 10, BACKUP_HEADER_LENGTH + 5, sealed.length - 1]) {
    const e = assertThrows(() => openSwapRecord(KEY, sealed.slice(0, len), path), SwapRecordInvalidError);
    assertEquals(e.code, "swap_record_invalid");
    assertEquals(e.exitCode, ExitCode.VerifyFailed);
    assert(e.message.includes(path), e.message);
  }
  const short = assertThrows(() => openSwapRecord(KEY, sealed.slice(0, 10), path), SwapRecordInvalidError);
  assert(short.message.includes("too short"), short.message);
});

Deno.test("swap record: an altered byte, another seed's key or another format is refused, naming the file", () => {
  const r = sampleSwapRecord();
  const sealed = sealSwapRecord(KEY, r);
  const path = "/backups/x/" + swapRecordFileName(r.swapHash);
  for (const i of [BACKUP_HEADER_LENGTH - 1, BACKUP_HEADER_LENGTH + 3, sealed.length - 1]) {
    const bad = sealed.slice();
    bad[i] ^= 0x01;
    const e = assertThrows(() => openSwapRecord(KEY, bad, path), SwapRecordInvalidError);
    assert(e.message.includes(path) && e.message.includes("unable to decrypt"), e.message);
  }
  const wrong = assertThrows(() => openSwapRecord(OTHER_KEY, sealed, path), SwapRecordInvalidError);
  assert(wrong.message.includes("another lnd seed"), wrong.message);
  const plain = sealed.slice();
  plain[0] = "X".charCodeAt(0);
  const fmt = assertThrows(() => openSwapRecord(KEY, plain, path), SwapRecordInvalidError);
  assert(fmt.message.includes("unknown format"), fmt.message);
});

Deno.test("swap record: another network, or a name whose swap hash differs, is refused", () => {
  const r = sampleSwapRecord();
  const sealed = sealSwapRecord(KEY, r);
  const e = assertThrows(() => openSwapRecord(KEY, sealed, "/d/f", "mainnet"), SwapRecordInvalidError);
  assert(e.message.includes("regtest") && e.message.includes("mainnet"), e.message);
  const other = swapRecordFileName(sha256(Uint8Array.of(1)));
  const n = assertThrows(() => openSwapRecord(KEY, sealed, `/d/${other}`), SwapRecordInvalidError);
  assert(n.message.includes(other) && n.message.includes("file name"), n.message);
});

Deno.test("swap record decode: every altered field is refused, the field named", () => {
  const r = sampleSwapRecord();
  const good = jsonOf(encodeSwapRecord(r));
  const cases: [string, (o: Json) => void, string][] = [
    ["kind", (o) => (o.kind = "L402_backup"), "kind"],
    ["version", (o) => (o.version = 2), "version"],
    ["network", (o) => (o.network = "moon"), "network"],
    ["preimage", (o) => (o.preimage = "00".repeat(32)), "sha256 of the preimage"],
    ["swap hash length", (o) => (o.swap_hash = "00"), "swap_hash"],
    ["htlc key", (o) => (o.htlc_key.pubkey = "02" + "00".repeat(32)), "htlc_key.pubkey"],
    ["server key missing", (o) => delete o.htlc_server_pubkey, "htlc_server_pubkey"],
    ["expiry", (o) => (o.htlc_expiry = o.htlc_expiry + 1), "output 0 does not pay the HTLC"],
    ["txid", (o) => (o.htlc_txids.high = o.htlc_txids.standard), "htlc_txids.high"],
    ["tx", (o) => (o.htlc_txs.extreme = o.htlc_txs.extreme.slice(0, 40)), "htlc_txs.extreme"],
    ["deposit value", (o) => (o.deposits[1].value_sat = "1"), "total_deposit_sat"],
    ["deposit negative", (o) => (o.deposits[1].value_sat = "-5"), "deposits[1].value_sat"],
    ["deposit order", (o) => o.deposits.reverse(), "input 0 is not deposit 0"],
    ["deposit pkScript", (o) => (o.deposits[0].pk_script = "5120" + "00".repeat(32)), "static address"],
    ["change", (o) => (o.change_sat = "0"), "change_sat"],
    ["hex case", (o) => (o.htlc_server_pubkey = o.htlc_server_pubkey.toUpperCase()), "lower-case hex"],
    ["time", (o) => (o.initiation_time = "yesterday"), "initiation_time"],
    ["fast", (o) => (o.fast = 1), "fast"],
    ["no deposits", (o) => (o.deposits = []), "no deposits"],
  ];
  for (const [name, alter, want] of cases) {
    const o = structuredClone(good);
    alter(o);
    let e: Error | undefined;
    try {
      decodeSwapRecord(bytesOf(o), 'Swap recovery record "f"');
    } catch (err) {
      e = err as Error;
    }
    assert(e instanceof SwapRecordInvalidError, `${name}: not refused (${e})`);
    assert(e.message.startsWith('Swap recovery record "f": '), `${name}: ${e.message}`);
    assert(e.message.includes(want), `${name}: ${e.message}`);
  }
  // The unaltered JSON still decodes: the cases fail for their alteration only.
  assertEquals(decodeSwapRecord(bytesOf(good), "f"), r);
  const e = assertThrows(() => decodeSwapRecord(new TextEncoder().encode("{"), "F"), SwapRecordInvalidError);
  assert(e.message.includes("not JSON"));
});

Deno.test("swap record: a sealed payload that is not a record (an L402 backup payload) is refused", () => {
  const sealed = sealBackup(KEY, bytesOf({ version: 1, network: "regtest", l402_token_id: "00" }));
  const e = assertThrows(() => openSwapRecord(KEY, sealed, "/d/f"), SwapRecordInvalidError);
  assert(e.message.includes('"kind"'), e.message);
});

Deno.test("swap record: encode validates first (an inconsistent record is never written)", () => {
  const r = sampleSwapRecord();
  const bad = { ...r, htlcExpiry: r.htlcExpiry + 1 };
  assertThrows(() => encodeSwapRecord(bad), SwapRecordInvalidError);
  assertThrows(
    () => validateSwapRecord({ ...r, deposits: [r.deposits[0], r.deposits[0]] }, "x"),
    SwapRecordInvalidError,
  );
  assertThrows(() => sealSwapRecord(KEY, bad), SwapRecordInvalidError);
  assertNotEquals(sampleSwapRecord({ seed: 1 }).swapHash, r.swapHash);
});
