/**
 * A small strict JSON (RFC 8259) parser that keeps numbers as their source text, so 64-bit
 * integers never pass through `number`. Private to core/backup (payload decoding).
 *
 * Strictness: input must be valid UTF-8 without BOM; no comments, trailing commas, leading zeros,
 * control characters in strings or lone surrogates (`\uD800`); duplicate keys in one object are
 * rejected; nesting deeper than {@linkcode MAX_DEPTH} is rejected; only whitespace may follow the
 * top-level value.
 *
 * @module
 */

/** A parsed JSON value; numbers keep their literal text. */
export type JsonValue =
  | { kind: "null" }
  | { kind: "bool"; value: boolean }
  | { kind: "number"; text: string }
  | { kind: "string"; value: string }
  | { kind: "array"; items: JsonValue[] }
  | { kind: "object"; entries: [string, JsonValue][] };

/** Maximum nesting depth of arrays/objects. */
export const MAX_DEPTH = 64;

/** A JSON syntax error; `offset` is the UTF-16 offset in the decoded text. */
export class JsonSyntaxError extends SyntaxError {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at offset ${offset}`);
    this.name = "JsonSyntaxError";
    this.offset = offset;
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses UTF-8 JSON bytes.
 *
 * @param bytes the JSON text as UTF-8
 * @returns the value tree
 * @throws {JsonSyntaxError} any deviation from RFC 8259 or the strictness rules above
 */
export function parseJson(bytes: Uint8Array): JsonValue {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new JsonSyntaxError("invalid UTF-8", 0);
  }
  const p = new Parser(text);
  p.ws();
  const v = p.value(0);
  p.ws();
  if (p.pos !== text.length) throw new JsonSyntaxError("unexpected data after top-level value", p.pos);
  return v;
}

class Parser {
  pos = 0;
  constructor(readonly s: string) {}

  fail(msg: string): never {
    throw new JsonSyntaxError(msg, this.pos);
  }

  ws(): void {
    const s = this.s;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else break;
    }
  }

  value(depth: number): JsonValue {
    const c = this.s[this.pos];
    switch (c) {
      case "{":
        return this.object(depth + 1);
      case "[":
        return this.array(depth + 1);
      case '"':
        return { kind: "string", value: this.string() };
      case "t":
        this.literal("true");
        return { kind: "bool", value: true };
      case "f":
        this.literal("false");
        return { kind: "bool", value: false };
      case "n":
        this.literal("null");
        return { kind: "null" };
      default:
        if (c === "-" || (c >= "0" && c <= "9")) return { kind: "number", text: this.number() };
        return this.fail(
          c === undefined ? "unexpected end of input" : `unexpected character ${JSON.stringify(c)}`,
        );
    }
  }

  literal(word: string): void {
    if (!this.s.startsWith(word, this.pos)) this.fail(`invalid literal, expected ${word}`);
    this.pos += word.length;
  }

  number(): string {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = this.pos;
    const r = m.exec(this.s);
    if (!r || r[0] === "-" || r[0].length === 0) this.fail("invalid number");
    const end = this.pos + r[0].length;
    // A digit right after "0" (leading zero) or a dangling "." / "e" is invalid.
    const next = this.s[end];
    if (next !== undefined && /[0-9.eE+-]/.test(next)) {
      this.pos = end;
      this.fail("invalid number");
    }
    this.pos = end;
    return r[0];
  }

  string(): string {
    const s = this.s;
    this.pos++; // opening quote
    let out = "";
    let start = this.pos;
    for (;;) {
      if (this.pos >= s.length) this.fail("unterminated string");
      const c = s.charCodeAt(this.pos);
      if (c === 0x22) {
        out += s.slice(start, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail("control character in string");
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += s.slice(start, this.pos);
      this.pos++;
      const e = s[this.pos];
      switch (e) {
        case '"':
        case "\\":
        case "/":
          out += e;
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "t":
          out += "\t";
          break;
        case "u": {
          const hi = this.hex4(this.pos + 1);
          this.pos += 4;
          if (hi >= 0xd800 && hi <= 0xdbff) {
            if (s[this.pos + 1] !== "\\" || s[this.pos + 2] !== "u") this.fail("lone surrogate in string");
            const lo = this.hex4(this.pos + 3);
            if (lo < 0xdc00 || lo > 0xdfff) this.fail("lone surrogate in string");
            this.pos += 6;
            out += String.fromCharCode(hi, lo);
          } else if (hi >= 0xdc00 && hi <= 0xdfff) {
            this.fail("lone surrogate in string");
          } else {
            out += String.fromCharCode(hi);
          }
          break;
        }
        default:
          this.fail("invalid escape in string");
      }
      this.pos++;
      start = this.pos;
    }
  }

  hex4(at: number): number {
    const h = this.s.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) {
      this.pos = at;
      this.fail("invalid \\u escape");
    }
    return parseInt(h, 16);
  }

  array(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail("nesting too deep");
    this.pos++;
    const items: JsonValue[] = [];
    this.ws();
    if (this.s[this.pos] === "]") {
      this.pos++;
      return { kind: "array", items };
    }
    for (;;) {
      this.ws();
      items.push(this.value(depth));
      this.ws();
      const c = this.s[this.pos];
      this.pos++;
      if (c === "]") return { kind: "array", items };
      if (c !== ",") {
        this.pos--;
        this.fail("expected ',' or ']' in array");
      }
    }
  }

  object(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail("nesting too deep");
    this.pos++;
    const entries: [string, JsonValue][] = [];
    const seen = new Set<string>();
    this.ws();
    if (this.s[this.pos] === "}") {
      this.pos++;
      return { kind: "object", entries };
    }
    for (;;) {
      this.ws();
      if (this.s[this.pos] !== '"') this.fail("expected string key in object");
      const keyAt = this.pos;
      const key = this.string();
      if (seen.has(key)) {
        this.pos = keyAt;
        this.fail(`duplicate key ${JSON.stringify(key)}`);
      }
      seen.add(key);
      this.ws();
      if (this.s[this.pos] !== ":") this.fail("expected ':' after object key");
      this.pos++;
      this.ws();
      entries.push([key, this.value(depth)]);
      this.ws();
      const c = this.s[this.pos];
      this.pos++;
      if (c === "}") return { kind: "object", entries };
      if (c !== ",") {
        this.pos--;
        this.fail("expected ',' or '}' in object");
      }
    }
  }
}
