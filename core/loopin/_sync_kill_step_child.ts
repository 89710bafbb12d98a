/**
 * Child process of sync_kill_test.ts: runs one kill scenario (`_sync_kill_scenarios.ts`) from phase 0 over the
 * database and lnd state the test prepared in `<dir>`, stopping for good at the planned step. Prints
 * `PHASE <i>` as each phase starts and `BLOCKED <step>` where it stops, then waits to be killed.
 *
 * Usage: `deno run --allow-all _sync_kill_step_child.ts <dir> <scenario> <lnd-before|lnd-after|db-before-commit|db-after-commit> <k>`
 *
 * @module
 */
import { type KillPlan, killScenarios, runScenario } from "./_sync_kill_scenarios.ts";

const [dir, name, at, k] = Deno.args;
const sc = (await killScenarios()).find((s) => s.name === name);
if (!sc) throw new Error(`unknown scenario ${name}`);
await runScenario(dir, sc, {
  plan: { at, k: Number(k) } as KillPlan,
  onPhase: (i) => console.log(`PHASE ${i}`),
});
console.log("DONE");
