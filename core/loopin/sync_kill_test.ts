/**
 * Bounded `kill -9` of `loopin sync` at every step of the unhappy paths (issue 9 acceptance: "kill -9 at every
 * step of the paths above (bounded), then reruns: deposit states and swap state agree, every deposit ends
 * spendable by alice or swept to her wallet, none stuck in LoopingIn behind a final swap").
 *
 * Per scenario (`_sync_kill_scenarios.ts`): one uninterrupted in-process run counts the lnd calls (N) and the
 * committed write transactions (W) and gives the expected outcome. Then, for every k, a child process runs the
 * scenario and stops for good at step k, and is killed with SIGKILL once it says so:
 *
 * - `lnd-before` k = 1..N: the k-th lnd call never reached lnd;
 * - `lnd-after` for every call that changes lnd (CancelInvoice, PublishTransaction): lnd acted, the answer was lost;
 * - `db-before-commit` k = 1..W: inside the k-th write transaction, all statements run, not committed;
 * - `db-after-commit` k = 1..W: right after the k-th write committed.
 *
 * After each kill the stored state and lnd's state are checked (`invariantViolations`), then the parent reruns the
 * scenario from the phase the child died in to the end (with another fee estimate, so a rebuilt timeout sweep
 * would differ), runs the last phase once more, and checks the invariants again, where the money is
 * (`moneyViolations`), that the outcome equals the uninterrupted run's, that a timeout sweep stored before the
 * kill is the one that ends up stored (and the only bytes ever published), and that every rerun exits 0.
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { syncExitCode } from "./sync.ts";
import {
  invariantViolations,
  type KillPlan,
  type KillScenario,
  killScenarios,
  moneyViolations,
  MUTATING_LND_METHODS,
  observe,
  outcome,
  prepareScenario,
  runScenario,
} from "./_sync_kill_scenarios.ts";
import { hexOf } from "./_sync_testing.ts";

const CHILD = new URL("./_sync_kill_step_child.ts", import.meta.url).pathname;
/** Children at once (the machine has 2 cores). */
const PARALLEL = 2;
/** How much later than the killed run its rerun comes, ms (past the fixture's 60 s payment timeout). */
const RERUN_LATER_MS = 600_000;
/** A child that neither stops nor ends within this is a failure, ms. */
const CHILD_TIMEOUT_MS = 60_000;

/** Runs the child until it reports the planned stop, then kills it with SIGKILL. */
async function killAt(dir: string, sc: KillScenario, plan: Exclude<KillPlan, { at: "none" }>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CHILD, dir, sc.name, plan.at, String(plan.k)],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  let blocked: string | null = null;
  const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
  try {
    while (blocked === null) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
      blocked = out.match(/^BLOCKED (.*)$/m)?.[1] ?? null;
    }
    if (blocked !== null) child.kill("SIGKILL");
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => {});
  }
  const status = await child.status;
  const err = await stderr;
  if (blocked === null) {
    throw new Error(
      `${sc.name} ${plan.at} #${plan.k}: the child never stopped (code ${status.code}): ${out}${err}`,
    );
  }
  assertEquals(status.signal, "SIGKILL", `${sc.name} ${plan.at} #${plan.k}: ${err}`);
  const phases = [...out.matchAll(/^PHASE (\d+)$/gm)].map((m) => Number(m[1]));
  return { phase: phases.at(-1) ?? 0, step: blocked };
}

/** Runs `fn` over `items`, `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

for (const sc of await killScenarios()) {
  Deno.test(`kill -9 at every step of loopin sync, then reruns: ${sc.name} (subprocesses)`, async () => {
    const started = performance.now();
    // The uninterrupted run: counts and the expected outcome.
    const base = await Deno.makeTempDir({ prefix: "loopkit-kill-base-" });
    let counts, expected;
    try {
      await prepareScenario(base, sc);
      counts = await runScenario(base, sc);
      assertEquals(counts.results.map((r) => r.swaps[0]?.state), sc.expectStates);
      assertEquals(counts.results.map(syncExitCode), sc.phases.map(() => 0));
      const obs = await observe(base);
      assertEquals(invariantViolations(obs), []);
      assertEquals(moneyViolations(obs), []);
      expected = outcome(obs);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
    const n = counts.lndCalls.length;
    const w = counts.dbWrites;
    assert(n > 0 && w > 0, `${sc.name}: ${n} lnd calls, ${w} writes`);
    const plans: Exclude<KillPlan, { at: "none" }>[] = [
      ...counts.lndCalls.map((_, i) => ({ at: "lnd-before" as const, k: i + 1 })),
      ...counts.lndCalls.flatMap((m, i) =>
        MUTATING_LND_METHODS.has(m) ? [{ at: "lnd-after" as const, k: i + 1 }] : []
      ),
      ...Array.from({ length: w }, (_, i) => ({ at: "db-before-commit" as const, k: i + 1 })),
      ...Array.from({ length: w }, (_, i) => ({ at: "db-after-commit" as const, k: i + 1 })),
    ];
    const failures: string[] = [];
    const seenAtKill = new Map<string, number>();
    await pool(plans, PARALLEL, async (plan) => {
      const dir = await Deno.makeTempDir({ prefix: `loopkit-kill-${sc.name}-` });
      const where = `${sc.name} ${plan.at} #${plan.k}`;
      try {
        await prepareScenario(dir, sc);
        const { phase, step } = await killAt(dir, sc, plan);
        // The child made the same calls as the uninterrupted run: it stopped at the step this plan names.
        const want = plan.at.startsWith("lnd")
          ? `${plan.at} #${plan.k} ${counts.lndCalls[plan.k - 1]}`
          : `${plan.at} #${plan.k}`;
        if (step !== want) failures.push(`${where}: the child stopped at ${step}, not ${want}`);
        const mid = await observe(dir);
        const atKill = `${mid.swap.state}/${mid.depositStates.join(",")}`;
        seenAtKill.set(atKill, (seenAtKill.get(atKill) ?? 0) + 1);
        for (const v of invariantViolations(mid)) failures.push(`${where} (${step}), after the kill: ${v}`);
        const storedSweep = mid.swap.timeoutSweep ? hexOf(mid.swap.timeoutSweep.tx) : null;
        const rerun = await runScenario(dir, sc, {
          fromPhase: phase,
          rerun: true,
          clockShiftMs: RERUN_LATER_MS,
        });
        const again = await runScenario(dir, sc, {
          fromPhase: sc.phases.length - 1,
          rerun: true,
          clockShiftMs: 2 * RERUN_LATER_MS,
        });
        for (const r of [...rerun.results, ...again.results]) {
          if (syncExitCode(r) !== 0) {
            failures.push(`${where}: a rerun exited ${syncExitCode(r)}: ${JSON.stringify(r.swaps)}`);
          }
        }
        const fin = await observe(dir);
        for (const v of invariantViolations(fin)) failures.push(`${where}, after the reruns: ${v}`);
        for (const v of moneyViolations(fin)) failures.push(`${where}, after the reruns: ${v}`);
        const got = outcome(fin);
        if (JSON.stringify(got) !== JSON.stringify(expected)) {
          failures.push(
            `${where}: outcome ${JSON.stringify(got)} is not the uninterrupted ${JSON.stringify(expected)}`,
          );
        }
        if (
          storedSweep !== null && (!fin.swap.timeoutSweep || hexOf(fin.swap.timeoutSweep.tx) !== storedSweep)
        ) {
          failures.push(`${where}: the timeout sweep stored before the kill was replaced`);
        }
      } catch (err) {
        failures.push(`${where}: ${(err as Error).stack ?? err}`);
      } finally {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    });
    console.log(
      `${sc.name}: ${n} lnd calls (${counts.lndCalls.join(" ")}), ${w} writes; ${plans.length} kills in ` +
        `${((performance.now() - started) / 1000).toFixed(1)} s; states at the kill: ` +
        [...seenAtKill].map(([k, v]) => `${k} ×${v}`).join("; "),
    );
    assertEquals(failures, []);
  });
}
