import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { LoopkitError } from "../errors.ts";
import { parseDbUrl } from "./url.ts";

Deno.test("parseDbUrl(): file: paths as libSQL opens them (relative, absolute, three slashes, localhost, percent-decoded)", () => {
  const path = (u: string) => {
    const l = parseDbUrl(u);
    return l.kind === "file" ? l.path : l.kind;
  };
  assertEquals(path("file:loopkit.db"), "loopkit.db");
  assertEquals(path("file:/var/lib/loop/loopkit.db"), "/var/lib/loop/loopkit.db");
  assertEquals(path("file:///var/lib/loop/loopkit.db"), "/var/lib/loop/loopkit.db");
  assertEquals(path("file://localhost/var/lib/loopkit.db"), "/var/lib/loopkit.db");
  assertEquals(path("file:/tmp/my%20dir/loopkit.db"), "/tmp/my dir/loopkit.db");
  assertEquals(path(":memory:"), "memory");
  assertEquals(path("libsql://db.example.com"), "remote");
  assertEquals(path("https://db.example.com"), "remote");
});

Deno.test("parseDbUrl(): query parameters, fragments, hosts and other schemes are exit-2 errors naming --db, never part of a path", () => {
  for (
    const [u, why] of [
      ["file:/tmp/loopkit.db?mode=ro", "query parameters"],
      ["file:/tmp/loopkit.db#x", "query parameters"],
      ["file://otherhost/tmp/loopkit.db", "no host"],
      ["file:", "empty"],
      ["file:/tmp/%zz.db", "percent"],
      ["/tmp/loopkit.db", "expected a URL"],
      ["postgres://x/y", "unsupported scheme"],
    ]
  ) {
    const e = assertThrows(() => parseDbUrl(u), LoopkitError, why);
    assertEquals(e.exitCode, 2, u);
    assertEquals(e.message.includes("--db"), true, u);
  }
});
