/**
 * `deno task test`: every test file in its own `deno test` process, two (or `LOOPKIT_TEST_JOBS`) at a time, with
 * one summary line in `deno test`'s format at the end (`ok | N passed | M failed | K ignored (…)`).
 *
 * Why not one `deno test --parallel`: Deno 2.9.6 can abort the whole process inside nghttp2 when an HTTP/2 peer
 * sends GOAWAY (denoland/deno#36788, `find_stream_on_goaway_func: Assertion … failed`, exit 134, or a silent
 * exit 139). In one process that abort ends every test file's run with no result at all (seen once in CI). Here
 * it ends one file's process: that file is run once more, and the rerun is reported. A file whose process
 * crashes twice, or whose tests fail, fails the run. Test failures are never retried.
 *
 * Usage: `deno run --allow-all tests/run_all.ts [deno test flags…] [files or directories…]` (default: the whole
 * tree, without `node_modules`, `dist`, `.cache`). Flags (e.g. `--filter x`) go to every `deno test`.
 *
 * @module
 */

/** The counts of one `deno test` summary line. */
export interface TestSummary {
  ok: boolean;
  passed: number;
  failed: number;
  ignored: number;
  filtered: number;
}

// deno-lint-ignore no-control-regex -- the ESC of ANSI colour codes, which deno test prints without NO_COLOR
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * The last summary line of `deno test` output (`ok | 3 passed | 0 failed | 1 ignored (2s)` or `FAILED | …`), or
 * `null` when there is none (the process died before it printed one).
 */
export function parseSummary(output: string): TestSummary | null {
  const lines = output.replace(ANSI, "").split("\n").filter((l) => /^(ok|FAILED) \| \d+ passed/.test(l));
  const line = lines.at(-1);
  if (!line) return null;
  const n = (what: string) => Number(new RegExp(`(\\d+) ${what}`).exec(line)?.[1] ?? 0);
  return {
    ok: line.startsWith("ok"),
    passed: n("passed"),
    failed: n("failed"),
    ignored: n("ignored"),
    filtered: n("filtered out"),
  };
}

/**
 * True when a `deno test` process died of the runtime's HTTP/2 abort (denoland/deno#36788) rather than of a test:
 * killed by SIGABRT / SIGSEGV (or exit 134 / 139) without a summary line, or with nghttp2's assertion text.
 */
export function isRuntimeCrash(
  status: { code: number; signal: Deno.Signal | null },
  output: string,
): boolean {
  if (parseSummary(output) !== null) return false;
  if (/nghttp2.*Assertion/.test(output)) return true;
  return status.signal === "SIGABRT" || status.signal === "SIGSEGV" || status.code === 134 ||
    status.code === 139;
}

const EXCLUDED = new Set(["node_modules", "dist", ".cache", ".git"]);
const TEST_FILE = /(^|[_.])test\.(ts|tsx|mts|js|mjs|jsx)$/;

/** Test files below `path` (or `path` itself), sorted. */
async function testFiles(path: string): Promise<string[]> {
  const info = await Deno.stat(path);
  if (info.isFile) return [path];
  const found: string[] = [];
  for await (const e of Deno.readDir(path)) {
    if (EXCLUDED.has(e.name)) continue;
    const p = path === "." ? `./${e.name}` : `${path}/${e.name}`;
    if (e.isDirectory) found.push(...await testFiles(p));
    else if (e.isFile && TEST_FILE.test(e.name)) found.push(p);
  }
  return found.sort();
}

/** Runs one file's tests; output is stdout and stderr as they arrive. */
async function runFile(file: string, flags: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", ...flags, file],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const chunks: string[] = [];
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s.pipeThrough(new TextDecoderStream())) chunks.push(c);
  };
  const [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
  return { status, output: chunks.join("") };
}

if (import.meta.main) {
  const t0 = performance.now();
  const flags: string[] = [];
  const paths: string[] = [];
  for (let i = 0; i < Deno.args.length; i++) {
    const a = Deno.args[i];
    if (a.startsWith("-")) {
      flags.push(a);
      // Flags of `deno test` that take a separate value.
      if (
        ["--filter", "--reporter", "--junit-path", "--shuffle", "--seed"].includes(a) &&
        i + 1 < Deno.args.length
      ) {
        flags.push(Deno.args[++i]);
      }
    } else paths.push(a);
  }
  const files = [...new Set((await Promise.all((paths.length ? paths : ["."]).map(testFiles))).flat())];
  // Regtest files first: they take longest, so the two slots stay busy to the end.
  files.sort((a, b) =>
    Number(b.includes("/regtest/")) - Number(a.includes("/regtest/")) || a.localeCompare(b)
  );
  const jobs = Math.max(
    1,
    Number(Deno.env.get("LOOPKIT_TEST_JOBS") ?? 0) || navigator.hardwareConcurrency || 2,
  );
  const total: TestSummary = { ok: true, passed: 0, failed: 0, ignored: 0, filtered: 0 };
  const failedFiles: string[] = [];
  const reruns: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++];
      let r = await runFile(file, flags);
      if (isRuntimeCrash(r.status, r.output)) {
        reruns.push(file);
        console.log(r.output);
        console.log(
          `run_all: ${file}: the deno runtime crashed (exit ${r.status.code}, signal ${r.status.signal}; ` +
            "denoland/deno#36788, nghttp2 GOAWAY abort), not a test: running this file once more",
        );
        r = await runFile(file, flags);
      }
      console.log(r.output);
      const s = parseSummary(r.output);
      if (!s) {
        total.failed++;
        failedFiles.push(`${file} (no result: exit ${r.status.code}, signal ${r.status.signal})`);
        continue;
      }
      total.passed += s.passed;
      total.failed += s.failed;
      total.ignored += s.ignored;
      total.filtered += s.filtered;
      if (!s.ok || !r.status.success) failedFiles.push(file);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker));
  total.ok = failedFiles.length === 0;
  if (reruns.length) console.log(`run_all: rerun after a runtime crash: ${reruns.join(", ")}`);
  if (failedFiles.length) console.log(`run_all: failed: ${failedFiles.join(", ")}`);
  const secs = Math.round((performance.now() - t0) / 1000);
  console.log(
    `${total.ok ? "ok" : "FAILED"} | ${total.passed} passed | ${total.failed} failed` +
      (total.ignored ? ` | ${total.ignored} ignored` : "") +
      (total.filtered ? ` | ${total.filtered} filtered out` : "") +
      ` (${Math.floor(secs / 60)}m${secs % 60}s)`,
  );
  Deno.exit(total.ok ? 0 : 1);
}
