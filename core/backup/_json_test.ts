import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { JsonSyntaxError, type JsonValue, MAX_DEPTH, parseJson } from "./_json.ts";

const te = new TextEncoder();

/** Converts our tree to plain JS (numbers via Number) to compare with JSON.parse on small inputs. */
function plain(v: JsonValue): unknown {
  switch (v.kind) {
    case "null":
      return null;
    case "bool":
      return v.value;
    case "number":
      return Number(v.text);
    case "string":
      return v.value;
    case "array":
      return v.items.map(plain);
    case "object":
      return Object.fromEntries(v.entries.map(([k, x]) => [k, plain(x)]));
  }
}

Deno.test("parseJson() agrees with JSON.parse on valid documents", () => {
  const docs = [
    "{}",
    "[]",
    ' { "a" : [ 1 , -0 , 2.5e-3 , 1E+2 , true , false , null ] } ',
    '"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\"\\\\"',
    '{"k":{"n":{"m":[[],[{}]]}}}',
    "0",
    '"é😀"',
  ];
  for (const d of docs) assertEquals(plain(parseJson(te.encode(d))), JSON.parse(d), d);
});

Deno.test("parseJson() keeps number text exactly (no float rounding)", () => {
  const v = parseJson(te.encode('{"t":1776159001000000123}'));
  assertEquals(v, { kind: "object", entries: [["t", { kind: "number", text: "1776159001000000123" }]] });
});

Deno.test("parseJson() rejects what RFC 8259 forbids", () => {
  const bad = [
    "",
    " ",
    "{",
    "[1,]",
    '{"a":1,}',
    "01",
    "-",
    "1.",
    ".5",
    "1e",
    "+1",
    "NaN",
    "'a'",
    '"a',
    '"\t"',
    '"\\x"',
    '"\\u12"',
    "{a:1}",
    '{"a" 1}',
    "[1 2]",
    "nul",
    "truex",
    "{} {}",
    "/*c*/{}",
    "\ufeff{}",
  ];
  for (const d of bad) assertThrows(() => parseJson(te.encode(d)), JsonSyntaxError, undefined);
});

Deno.test("parseJson() rejects duplicate keys, lone surrogates and invalid UTF-8", () => {
  assertThrows(() => parseJson(te.encode('{"a":1,"a":2}')), JsonSyntaxError, "duplicate key");
  assertThrows(() => parseJson(te.encode('{"a":{"b":1,"b":1}}')), JsonSyntaxError, "duplicate key");
  assertThrows(() => parseJson(te.encode('"\\ud800"')), JsonSyntaxError, "lone surrogate");
  assertThrows(() => parseJson(te.encode('"\\udc00"')), JsonSyntaxError, "lone surrogate");
  assertThrows(() => parseJson(te.encode('"\\ud800\\u0041"')), JsonSyntaxError, "lone surrogate");
  assertThrows(() => parseJson(Uint8Array.from([0x22, 0xff, 0x22])), JsonSyntaxError, "invalid UTF-8");
  assertThrows(
    () => parseJson(Uint8Array.from([0x22, 0xed, 0xa0, 0x80, 0x22])),
    JsonSyntaxError,
    "invalid UTF-8",
  );
});

Deno.test("parseJson() bounds nesting depth instead of overflowing the stack", () => {
  parseJson(te.encode("[".repeat(MAX_DEPTH) + "]".repeat(MAX_DEPTH)));
  assertThrows(
    () => parseJson(te.encode("[".repeat(MAX_DEPTH + 1) + "]".repeat(MAX_DEPTH + 1))),
    JsonSyntaxError,
  );
  assertThrows(() => parseJson(te.encode("[".repeat(100000))), JsonSyntaxError, "nesting too deep");
});
