import { hexToBytes } from "@noble/hashes/utils.js";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { vector, vectorStaticAddressBackup } from "./_testing.ts";
import { decodeBackupPayload, encodeBackupPayload } from "./payload.ts";
import { BackupInvalidError, type BackupPayload } from "./types.ts";

const te = new TextEncoder();
const td = new TextDecoder();

function base(): BackupPayload {
  return {
    version: 1,
    network: "testnet",
    l402TokenId: vector.token_id,
    l402TokenCreatedAtNs: 1776159001000000000n,
    staticAddress: vectorStaticAddressBackup(),
    tokenFiles: [{ name: "l402.token", data: hexToBytes(vector.l402_token_file) }],
  };
}

function dec(s: string): BackupPayload {
  return decodeBackupPayload(te.encode(s));
}

function rejects(s: string, msg: string): void {
  const e = assertThrows(() => dec(s), BackupInvalidError, msg);
  assertEquals(e.reason, "bad_payload");
  assertEquals(e.code, "bad_payload");
}

Deno.test("decodeBackupPayload() reads the vector plaintext with exact values", () => {
  const p = dec(vector.plaintext_json);
  assertEquals(p, base());
});

Deno.test("encodeBackupPayload() reproduces the vector plaintext byte for byte", () => {
  assertEquals(td.decode(encodeBackupPayload(base())), vector.plaintext_json);
});

Deno.test("decode then encode of the vector plaintext is the identity", () => {
  const bytes = te.encode(vector.plaintext_json);
  assertEquals(encodeBackupPayload(decodeBackupPayload(bytes)), bytes);
});

Deno.test("l402_token_created_at 1776159001000000123 round-trips exactly (no float rounding)", () => {
  const p = { ...base(), l402TokenCreatedAtNs: 1776159001000000123n };
  const text = td.decode(encodeBackupPayload(p));
  assert(text.includes('"l402_token_created_at":1776159001000000123,'));
  assertEquals(decodeBackupPayload(te.encode(text)).l402TokenCreatedAtNs, 1776159001000000123n);
  // JSON.parse would have rounded it: the test would be meaningless if it did not.
  assert(BigInt(JSON.parse(text).l402_token_created_at) !== 1776159001000000123n);
});

Deno.test("int64 bounds are accepted and exceeded bounds rejected", () => {
  const max = "9223372036854775807", min = "-9223372036854775808";
  assertEquals(dec(`{"l402_token_created_at":${max}}`).l402TokenCreatedAtNs, (1n << 63n) - 1n);
  assertEquals(dec(`{"l402_token_created_at":${min}}`).l402TokenCreatedAtNs, -(1n << 63n));
  rejects(
    `{"l402_token_created_at":9223372036854775808}`,
    '"l402_token_created_at": 9223372036854775808 is out of range',
  );
  const p = { ...base(), l402TokenCreatedAtNs: 1n << 63n };
  assertThrows(() => encodeBackupPayload(p), RangeError);
});

Deno.test("encodeBackupPayload() applies Loop's omitempty rules", () => {
  const p = base();
  p.staticAddress = {
    protocolVersion: 0,
    clientPubkey: new Uint8Array(0),
    serverPubkey: null,
    expiry: 0,
    legacyClientKeyFamily: 0,
    mainKeyFamily: 0,
    changeKeyFamily: 0,
    legacyFirstHeight: 0,
    multiAddressFirstHeight: 0,
  };
  p.tokenFiles = [{ name: "l402.token", data: null }, { name: "x", data: new Uint8Array(0) }];
  assertEquals(
    td.decode(encodeBackupPayload(p)),
    `{"version":1,"network":"testnet","l402_token_id":"${vector.token_id}","l402_token_created_at":1776159001000000000,` +
      `"static_address":{"protocol_version":0,"server_pubkey":null,"expiry":0,"main_key_family":0,"change_key_family":0},` +
      `"token_files":[{"name":"l402.token","data":null},{"name":"x","data":""}]}`,
  );
  const q: BackupPayload = {
    version: 0,
    network: "",
    l402TokenId: "",
    l402TokenCreatedAtNs: 0n,
    tokenFiles: [],
  };
  assertEquals(
    td.decode(encodeBackupPayload(q)),
    `{"version":0,"network":"","l402_token_id":"","l402_token_created_at":0}`,
  );
});

Deno.test("encodeBackupPayload() escapes strings like Go encoding/json (HTML-safe)", () => {
  const p: BackupPayload = {
    version: 1,
    network: '<a&b>\u2028\u2029"\\\n\r\t\b\f\x01\x1f\x7f/é😀',
    l402TokenId: "",
    l402TokenCreatedAtNs: -5n,
    tokenFiles: [],
  };
  const expected = '"\\u003ca\\u0026b\\u003e\\u2028\\u2029\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f\x7f/é😀"';
  const text = td.decode(encodeBackupPayload(p));
  assert(text.includes(`"network":${expected},`), text);
  assert(text.includes(`"l402_token_created_at":-5}`), text);
  assertEquals(dec(text).network, p.network);
  assertThrows(() => encodeBackupPayload({ ...p, network: "\ud800" }), RangeError, "lone surrogate");
});

Deno.test("encodeBackupPayload() refuses values outside their Go types", () => {
  assertThrows(() => encodeBackupPayload({ ...base(), version: -1 }), RangeError, '"version"');
  assertThrows(() => encodeBackupPayload({ ...base(), version: 2 ** 32 }), RangeError);
  assertThrows(() => encodeBackupPayload({ ...base(), version: 1.5 }), RangeError);
  const p = base();
  p.staticAddress!.legacyFirstHeight = 2 ** 31;
  assertThrows(() => encodeBackupPayload(p), RangeError, "legacy_first_height");
});

Deno.test("decodeBackupPayload() ignores unknown keys at every level", () => {
  const p = dec(
    `{"x":{"deep":[1,{"y":null}]},"version":1,"static_address":{"zzz":true},"token_files":[{"name":"l402.token","data":null,"extra":1}]}`,
  );
  assertEquals(p.version, 1);
  assertEquals(p.staticAddress?.serverPubkey, null);
  assertEquals(p.tokenFiles, [{ name: "l402.token", data: null }]);
});

Deno.test("decodeBackupPayload() gives Go zero values for missing keys and null objects", () => {
  assertEquals(dec("{}"), {
    version: 0,
    network: "",
    l402TokenId: "",
    l402TokenCreatedAtNs: 0n,
    tokenFiles: [],
  });
  const p = dec(`{"static_address":null,"token_files":null}`);
  assertEquals(p.staticAddress, undefined);
  assertEquals(p.tokenFiles, []);
  const a = dec(`{"static_address":{"client_pubkey":null,"server_pubkey":null}}`).staticAddress!;
  assertEquals(a.clientPubkey, undefined);
  assertEquals(a.serverPubkey, null);
  assertEquals(dec(`{"token_files":[{}]}`).tokenFiles, [{ name: "", data: null }]);
  assertEquals(dec(`{"token_files":[{"name":"a","data":""}]}`).tokenFiles[0].data, new Uint8Array(0));
});

Deno.test("decodeBackupPayload() rejects keys that match only case-insensitively (Go would accept)", () => {
  rejects(`{"Version":1}`, 'field "Version": key differs from "version" only in case');
  rejects(`{"NETWORK":"testnet"}`, '"NETWORK"');
  rejects(`{"ver\u017fion":1}`, "only in case"); // U+017F LATIN SMALL LETTER LONG S folds to s
  rejects(`{"to\u212aen_files":[]}`, "only in case"); // U+212A KELVIN SIGN folds to k
  rejects(`{"static_address":{"Expiry":1}}`, 'field "static_address.Expiry"');
  rejects(`{"token_files":[{"Name":"l402.token"}]}`, 'field "token_files[0].Name"');
});

Deno.test("decodeBackupPayload() rejects null entries in token_files and null scalars", () => {
  rejects(`{"token_files":[null]}`, 'field "token_files[0]": entry is null');
  rejects(`{"token_files":[{"name":"l402.token","data":"AA=="},null]}`, '"token_files[1]"');
  rejects(`{"version":null}`, 'field "version": expected an integer, got null');
  rejects(`{"network":null}`, 'field "network": expected a string');
  rejects(`{"token_files":[{"name":null}]}`, '"token_files[0].name"');
});

Deno.test("decodeBackupPayload() rejects fractional, exponent and out-of-range numbers", () => {
  rejects(`{"version":1.0}`, '"version": 1.0 is not an integer');
  rejects(`{"version":1e0}`, "is not an integer");
  rejects(`{"version":-1}`, "out of range");
  rejects(`{"version":-0}`, "out of range");
  rejects(`{"version":4294967296}`, "out of range");
  rejects(`{"static_address":{"expiry":4294967296}}`, '"static_address.expiry"');
  rejects(`{"static_address":{"main_key_family":2147483648}}`, '"static_address.main_key_family"');
  rejects(`{"static_address":{"legacy_first_height":-2147483649}}`, "out of range");
  rejects(`{"l402_token_created_at":1776159001000000000.5}`, "is not an integer");
  rejects(`{"version":"1"}`, "expected an integer, got string");
  assertEquals(dec(`{"version":4294967295}`).version, 4294967295);
  assertEquals(
    dec(`{"static_address":{"legacy_first_height":-2147483648}}`).staticAddress!.legacyFirstHeight,
    -(2 ** 31),
  );
});

Deno.test("decodeBackupPayload() accepts only canonical padded standard base64", () => {
  rejects(`{"static_address":{"server_pubkey":"AA"}}`, "not padded standard base64");
  rejects(`{"static_address":{"server_pubkey":"A-=="}}`, "not padded standard base64");
  rejects(`{"static_address":{"server_pubkey":"_w=="}}`, "not padded standard base64");
  rejects(`{"static_address":{"server_pubkey":"AA==\\r\\n"}}`, "not padded standard base64");
  rejects(`{"static_address":{"server_pubkey":"AB=="}}`, "not canonical");
  rejects(`{"static_address":{"server_pubkey":"AA==AA=="}}`, "base64");
  rejects(`{"token_files":[{"name":"l402.token","data":12}]}`, "expected a base64 string");
  // A JSON escape inside the string is decoded first, like Go: "\/" is "/".
  assertEquals(
    dec(`{"static_address":{"server_pubkey":"\\/w=="}}`).staticAddress!.serverPubkey,
    Uint8Array.from([0xff]),
  );
});

Deno.test("decodeBackupPayload() rejects duplicate keys, non-object roots and broken JSON", () => {
  rejects(`{"version":1,"version":2}`, "duplicate key");
  rejects(`null`, "expected an object, got null");
  rejects(`[]`, "expected an object, got array");
  rejects(`{"version":1`, "invalid JSON");
  rejects(`{"version":1} x`, "invalid JSON");
  rejects(`{"static_address":[]}`, '"static_address": expected an object, got array');
  rejects(`{"token_files":{}}`, '"token_files": expected an array, got object');
  const e = assertThrows(() => decodeBackupPayload(Uint8Array.from([0x7b, 0xff, 0x7d])), BackupInvalidError);
  assertEquals(e.reason, "bad_payload");
});
