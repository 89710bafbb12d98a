import { assert, assertEquals } from "./assert.ts";
import { isRuntimeCrash, parseSummary } from "./run_all.ts";

const RUNNER = new URL("./run_all.ts", import.meta.url).pathname;

Deno.test("run_all parseSummary reads deno test's last summary line, with or without colour", () => {
  assertEquals(parseSummary("x ... ok\n\nok | 3 passed | 0 failed | 1 ignored (2s)\n"), {
    ok: true,
    passed: 3,
    failed: 0,
    ignored: 1,
    filtered: 0,
  });
  assertEquals(
    parseSummary("\x1b[0m\x1b[31mFAILED\x1b[0m | 2 passed | 1 failed | 4 filtered out (1s)"),
    { ok: false, passed: 2, failed: 1, ignored: 0, filtered: 4 },
  );
  assertEquals(parseSummary("running 2 tests\n"), null);
});

Deno.test("run_all isRuntimeCrash: only a death without a result (SIGABRT/SIGSEGV, 134/139, nghttp2's assertion)", () => {
  const abort =
    "deno: nghttp2/lib/nghttp2_session.c:2402: int find_stream_on_goaway_func(void *, void *): Assertion";
  assert(isRuntimeCrash({ code: 134, signal: null }, `a ... ok\n${abort}\n`));
  assert(isRuntimeCrash({ code: 1, signal: "SIGSEGV" }, ""));
  assert(isRuntimeCrash({ code: 1, signal: "SIGABRT" }, ""));
  assert(!isRuntimeCrash({ code: 1, signal: null }, "FAILED | 0 passed | 1 failed (1s)"), "a failed test");
  assert(!isRuntimeCrash({ code: 1, signal: null }, "error: Module not found"), "a load error");
  assert(!isRuntimeCrash({ code: 134, signal: null }, `${abort}\nok | 1 passed | 0 failed (1s)`), "finished");
});

/** Runs the runner on `files` (name → source) in a temp directory. */
async function runOn(files: Record<string, string>) {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-run-all-" });
  try {
    for (const [name, src] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, src);
    const o = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", RUNNER, dir],
      env: { NO_COLOR: "1", LOOPKIT_TEST_JOBS: "2" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: o.code, out: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const ABORT_ONCE = `
const marker = new URL("./crashed", import.meta.url);
Deno.test("aborts the process the first time", () => {
  try {
    Deno.statSync(marker);
  } catch {
    Deno.writeTextFileSync(marker, "");
    Deno.kill(Deno.pid, "SIGABRT");
  }
});
`;

Deno.test("run_all: sums the files, reruns a file whose runtime crashed once, and fails on a test failure or a second crash", async () => {
  const good = 'Deno.test("one", () => {});\nDeno.test("two", () => {});\n';
  let r = await runOn({ "a_test.ts": good, "b_test.ts": ABORT_ONCE });
  assertEquals(r.code, 0, r.out);
  assert(r.out.includes("running this file once more"), r.out);
  assert(/^ok \| 3 passed \| 0 failed/m.test(r.out), r.out);

  r = await runOn({
    "a_test.ts": good,
    "c_test.ts": 'Deno.test("x", () => Deno.kill(Deno.pid, "SIGABRT"));\n',
  });
  assertEquals(r.code, 1, r.out);
  assert(/^FAILED \| 2 passed \| 1 failed/m.test(r.out), r.out);
  assert(r.out.includes("no result"), r.out);

  r = await runOn({
    "a_test.ts": good,
    "d_test.ts": 'Deno.test("x", () => { throw new Error("boom"); });\n',
  });
  assertEquals(r.code, 1, r.out);
  assert(/^FAILED \| 2 passed \| 1 failed/m.test(r.out), r.out);
  assert(!r.out.includes("once more"), "a failing test is never rerun");
});
