/**
 * The backup payload JSON (spec/backup-and-recovery.md §2), byte-compatible with Go
 * `encoding/json` as Loop writes it, with a strict decoder that keeps int64 as `bigint`.
 *
 * Encoder: compact, fields in Loop's struct order, Loop's `omitempty` rules (§2.1–§2.3), `[]byte`
 * as padded standard base64 (`null` for a nil slice), Go's string escaping (`\u003c`, `\u003e`,
 * `\u0026`, `\u2028`, `\u2029`, short escapes for `\b \f \n \r \t`, `\u00XX` for other control
 * characters).
 *
 * Decoder (project decisions 3 and 4) — what it accepts beyond Go's own rules and where it is
 * stricter:
 * - unknown keys are ignored, like Go;
 * - a key that equals a known key only under Go's case-insensitive matching (`"Version"`,
 *   `"ver\u017Fion"`) is rejected instead of silently filling the field;
 * - a repeated key in any object is rejected (Go: last one wins);
 * - `null` is accepted where Go gives it a meaning (`static_address`, `token_files`, byte fields:
 *   absent / nil) and rejected for numbers and strings (Go: silently zero) and for `token_files`
 *   entries (Go: nil dereference);
 * - a missing key yields Go's zero value, so the envelope/generation checks report it with Loop's
 *   wording (`unsupported backup version 0`, `backup file is missing a network`, …);
 * - numbers must be integer literals in the field's range (no fraction or exponent, like Go);
 * - base64 must be canonical padded standard base64 (Go also skips `\r`/`\n` and ignores non-zero
 *   trailing bits);
 * - the text must be valid UTF-8 without lone surrogates (Go substitutes U+FFFD);
 * - the top level must be an object (Go accepts `null` as "all zero").
 *
 * @module
 */
import { base64 } from "@scure/base";
import { JsonSyntaxError, type JsonValue, parseJson } from "./_json.ts";
import {
  BackupInvalidError,
  type BackupPayload,
  type StaticAddressBackup,
  type TokenFileEntry,
} from "./types.ts";

const U32_MAX = 0xffffffffn;
const I32_MIN = -(1n << 31n);
const I32_MAX = (1n << 31n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

// ---------------------------------------------------------------------------------------------
// Encoding

/** Go `encoding/json` string encoding with HTML escaping (the `json.Marshal` default). */
function goString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const lo = s.charCodeAt(i + 1);
      if (c > 0xdbff || !(lo >= 0xdc00 && lo <= 0xdfff)) {
        throw new RangeError(`String ${JSON.stringify(s)} contains a lone surrogate`);
      }
      out += s[i] + s[i + 1];
      i++;
      continue;
    }
    switch (c) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += "\\\\";
        break;
      case 0x08:
        out += "\\b";
        break;
      case 0x0c:
        out += "\\f";
        break;
      case 0x0a:
        out += "\\n";
        break;
      case 0x0d:
        out += "\\r";
        break;
      case 0x09:
        out += "\\t";
        break;
      case 0x3c:
      case 0x3e:
      case 0x26:
      case 0x2028:
      case 0x2029:
        out += "\\u" + c.toString(16).padStart(4, "0");
        break;
      default:
        out += c < 0x20 ? "\\u" + c.toString(16).padStart(4, "0") : s[i];
    }
  }
  return out + '"';
}

function intText(field: string, v: number | bigint, min: bigint, max: bigint): string {
  if (typeof v === "number" && !Number.isSafeInteger(v)) {
    throw new RangeError(`Backup payload field "${field}" is not an integer: ${v}`);
  }
  const b = BigInt(v);
  if (b < min || b > max) throw new RangeError(`Backup payload field "${field}" is out of range: ${b}`);
  return b.toString();
}

const u32 = (f: string, v: number) => intText(f, v, 0n, U32_MAX);
const i32 = (f: string, v: number) => intText(f, v, I32_MIN, I32_MAX);

function bytesJson(b: Uint8Array | null): string {
  return b === null ? "null" : '"' + base64.encode(b) + '"';
}

function encodeStaticAddress(a: StaticAddressBackup): string {
  const parts = [`"protocol_version":${u32("static_address.protocol_version", a.protocolVersion)}`];
  if (a.clientPubkey !== undefined && a.clientPubkey.length > 0) {
    parts.push(`"client_pubkey":${bytesJson(a.clientPubkey)}`);
  }
  parts.push(`"server_pubkey":${bytesJson(a.serverPubkey)}`);
  parts.push(`"expiry":${u32("static_address.expiry", a.expiry)}`);
  if (a.legacyClientKeyFamily !== 0) {
    parts.push(
      `"legacy_client_key_family":${i32("static_address.legacy_client_key_family", a.legacyClientKeyFamily)}`,
    );
  }
  parts.push(`"main_key_family":${i32("static_address.main_key_family", a.mainKeyFamily)}`);
  parts.push(`"change_key_family":${i32("static_address.change_key_family", a.changeKeyFamily)}`);
  if (a.legacyFirstHeight !== 0) {
    parts.push(`"legacy_first_height":${i32("static_address.legacy_first_height", a.legacyFirstHeight)}`);
  }
  if (a.multiAddressFirstHeight !== 0) {
    parts.push(
      `"multi_address_first_height":${
        i32("static_address.multi_address_first_height", a.multiAddressFirstHeight)
      }`,
    );
  }
  return "{" + parts.join(",") + "}";
}

/**
 * Encodes a payload exactly as Loop's Go `json.Marshal(backupPayload)` does.
 *
 * @param p the payload
 * @returns UTF-8 JSON bytes (the plaintext that gets sealed)
 * @throws {RangeError} a number outside its Go type (uint32, int32, int64) or a string with a
 *   lone surrogate
 * @example
 * ```ts
 * import { encodeBackupPayload } from "./payload.ts";
 * const bytes = encodeBackupPayload({
 *   version: 1, network: "testnet", l402TokenId: "01".padEnd(64, "0"),
 *   l402TokenCreatedAtNs: 1776159001000000123n, tokenFiles: [],
 * });
 * new TextDecoder().decode(bytes).includes('"l402_token_created_at":1776159001000000123'); // true
 * ```
 */
export function encodeBackupPayload(p: BackupPayload): Uint8Array {
  const parts = [
    `"version":${u32("version", p.version)}`,
    `"network":${goString(p.network)}`,
    `"l402_token_id":${goString(p.l402TokenId)}`,
    `"l402_token_created_at":${intText("l402_token_created_at", p.l402TokenCreatedAtNs, I64_MIN, I64_MAX)}`,
  ];
  if (p.staticAddress !== undefined) parts.push(`"static_address":${encodeStaticAddress(p.staticAddress)}`);
  if (p.tokenFiles.length > 0) {
    const entries = p.tokenFiles.map((e) => `{"name":${goString(e.name)},"data":${bytesJson(e.data)}}`);
    parts.push(`"token_files":[${entries.join(",")}]`);
  }
  return new TextEncoder().encode("{" + parts.join(",") + "}");
}

// ---------------------------------------------------------------------------------------------
// Decoding

function bad(field: string, detail: string): BackupInvalidError {
  return new BackupInvalidError("bad_payload", `Cannot decode backup payload: field "${field}": ${detail}`);
}

/** Go matches struct keys with Unicode simple case folding; this approximates it for ASCII field names. */
function fold(k: string): string {
  return k.toUpperCase().toLowerCase();
}

type Handler = (v: JsonValue, field: string) => void;

/** Walks an object's entries, dispatching known keys and rejecting case-folded near-misses. */
function walkObject(v: JsonValue, field: string, handlers: Record<string, Handler>): void {
  if (v.kind !== "object") throw bad(field, `expected an object, got ${describe(v)}`);
  const folded = new Map(Object.keys(handlers).map((k) => [fold(k), k]));
  for (const [key, value] of v.entries) {
    const sub = field === "" ? key : `${field}.${key}`;
    const h = Object.hasOwn(handlers, key) ? handlers[key] : undefined;
    if (h) {
      h(value, sub);
      continue;
    }
    const near = folded.get(fold(key));
    if (near !== undefined) throw bad(sub, `key differs from "${near}" only in case`);
    // unknown key: ignored, like Go
  }
}

function describe(v: JsonValue): string {
  return v.kind === "number" ? `number ${v.text}` : v.kind;
}

function intField(v: JsonValue, field: string, min: bigint, max: bigint): bigint {
  if (v.kind !== "number") throw bad(field, `expected an integer, got ${describe(v)}`);
  if (!/^-?(?:0|[1-9][0-9]*)$/.test(v.text)) throw bad(field, `${v.text} is not an integer`);
  const n = BigInt(v.text);
  if (n < min || n > max || (min === 0n && v.text.startsWith("-"))) {
    throw bad(field, `${v.text} is out of range [${min}, ${max}]`);
  }
  return n;
}

const u32Field = (v: JsonValue, f: string) => Number(intField(v, f, 0n, U32_MAX));
const i32Field = (v: JsonValue, f: string) => Number(intField(v, f, I32_MIN, I32_MAX));

function stringField(v: JsonValue, field: string): string {
  if (v.kind !== "string") throw bad(field, `expected a string, got ${describe(v)}`);
  return v.value;
}

function bytesField(v: JsonValue, field: string): Uint8Array | null {
  if (v.kind === "null") return null;
  if (v.kind !== "string") throw bad(field, `expected a base64 string, got ${describe(v)}`);
  if (v.value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v.value)) {
    throw bad(field, "not padded standard base64");
  }
  let b: Uint8Array;
  try {
    b = base64.decode(v.value);
  } catch (e) {
    throw bad(field, `not canonical standard base64 (${(e as Error).message})`);
  }
  if (base64.encode(b) !== v.value) throw bad(field, "not canonical standard base64");
  return b;
}

function decodeStaticAddress(v: JsonValue, field: string): StaticAddressBackup {
  const a: StaticAddressBackup = {
    protocolVersion: 0,
    serverPubkey: null,
    expiry: 0,
    legacyClientKeyFamily: 0,
    mainKeyFamily: 0,
    changeKeyFamily: 0,
    legacyFirstHeight: 0,
    multiAddressFirstHeight: 0,
  };
  walkObject(v, field, {
    protocol_version: (x, f) => a.protocolVersion = u32Field(x, f),
    client_pubkey: (x, f) => {
      const b = bytesField(x, f);
      if (b === null) delete a.clientPubkey;
      else a.clientPubkey = b;
    },
    server_pubkey: (x, f) => a.serverPubkey = bytesField(x, f),
    expiry: (x, f) => a.expiry = u32Field(x, f),
    legacy_client_key_family: (x, f) => a.legacyClientKeyFamily = i32Field(x, f),
    main_key_family: (x, f) => a.mainKeyFamily = i32Field(x, f),
    change_key_family: (x, f) => a.changeKeyFamily = i32Field(x, f),
    legacy_first_height: (x, f) => a.legacyFirstHeight = i32Field(x, f),
    multi_address_first_height: (x, f) => a.multiAddressFirstHeight = i32Field(x, f),
  });
  return a;
}

function decodeTokenFiles(v: JsonValue, field: string): TokenFileEntry[] {
  if (v.kind === "null") return [];
  if (v.kind !== "array") throw bad(field, `expected an array, got ${describe(v)}`);
  return v.items.map((item, i) => {
    const f = `${field}[${i}]`;
    if (item.kind === "null") throw bad(f, "entry is null");
    const e: TokenFileEntry = { name: "", data: null };
    walkObject(item, f, {
      name: (x, ff) => e.name = stringField(x, ff),
      data: (x, ff) => e.data = bytesField(x, ff),
    });
    return e;
  });
}

/**
 * Decodes the backup plaintext strictly (see the module doc for every rule).
 *
 * @param bytes the decrypted plaintext
 * @returns the payload; missing keys hold Go's zero values; `l402TokenCreatedAtNs` is exact
 * @throws {BackupInvalidError} reason `bad_payload`, message naming the field, e.g.
 *   `Cannot decode backup payload: field "static_address.expiry": 1.5 is not an integer`
 */
export function decodeBackupPayload(bytes: Uint8Array): BackupPayload {
  let root: JsonValue;
  try {
    root = parseJson(bytes);
  } catch (e) {
    if (e instanceof JsonSyntaxError) {
      throw new BackupInvalidError(
        "bad_payload",
        `Cannot decode backup payload: invalid JSON: ${e.message}`,
        {
          cause: e,
        },
      );
    }
    throw e;
  }
  const p: BackupPayload = {
    version: 0,
    network: "",
    l402TokenId: "",
    l402TokenCreatedAtNs: 0n,
    tokenFiles: [],
  };
  if (root.kind !== "object") {
    throw new BackupInvalidError(
      "bad_payload",
      `Cannot decode backup payload: expected an object, got ${describe(root)}`,
    );
  }
  walkObject(root, "", {
    version: (x, f) => p.version = u32Field(x, f),
    network: (x, f) => p.network = stringField(x, f),
    l402_token_id: (x, f) => p.l402TokenId = stringField(x, f),
    l402_token_created_at: (x, f) => p.l402TokenCreatedAtNs = intField(x, f, I64_MIN, I64_MAX),
    static_address: (x, f) => {
      if (x.kind === "null") delete p.staticAddress;
      else p.staticAddress = decodeStaticAddress(x, f);
    },
    token_files: (x, f) => p.tokenFiles = decodeTokenFiles(x, f),
  });
  return p;
}
