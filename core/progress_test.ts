import { assertEquals } from "../tests/assert.ts";
import { NO_PROGRESS, progressFor, type ProgressTerminal } from "./progress.ts";

function term(isTty: boolean, columns: number | undefined) {
  const written: string[] = [];
  const t: ProgressTerminal = {
    isTerminal: () => isTty,
    columns: () => columns,
    write: (s) => written.push(s),
  };
  return { t, written };
}

Deno.test("progress: nothing with --json, without a terminal, or on a terminal reporting 0 columns", () => {
  for (
    const [json, tty, cols] of [[true, true, 80], [false, false, 80], [false, true, 0], [
      false,
      true,
      undefined,
    ]] as const
  ) {
    const { t, written } = term(tty, cols);
    const p = progressFor({ json, term: t });
    assertEquals(p, NO_PROGRESS);
    p.update(1, 2, "x");
    p.end();
    assertEquals(written, []);
  }
});

Deno.test("progress: a terminal gets one redrawn line, cut to its width, throttled except the last update, cleared at the end", () => {
  const { t, written } = term(true, 20);
  let clock = 0;
  const p = progressFor({ json: false, term: t, now: () => clock });
  p.update(200, 1000, "creating deposits");
  clock = 50;
  p.update(400, 1000, "creating deposits"); // within 100 ms: skipped
  clock = 200;
  p.update(1000, 1000, "creating deposits");
  p.end();
  assertEquals(written, [
    "\rcreating deposits: \x1b[K",
    "\rcreating deposits: \x1b[K",
    "\r\x1b[K",
  ]);
  const wide = term(true, 80);
  const q = progressFor({ json: false, term: wide.t, now: () => 0 });
  q.update(1, 4, "creating deposits");
  assertEquals(wide.written, ["\rcreating deposits: 1/4 (25%)\x1b[K"]);
});
