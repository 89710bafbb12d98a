/**
 * The CLI with the loop-in initiation's test hooks (`setLoopInTestHooks`, cli/loopin.ts), configured from the
 * environment. The tests run this file instead of `cli/main.ts` when they set one of these; the shipped CLI
 * reads neither:
 *
 * - `LOOPKIT_TEST_STOP_AT=<step>[:<ms>]` stops the initiation at that step boundary: prints
 *   `loopkit-test: at <step>` on stderr, then waits until killed or interrupted (the initiation then goes on to
 *   its unwind), or `ms` milliseconds.
 * - `LOOPKIT_TEST_FLIP_SIG=<variant>` flips a byte of that HTLC variant's first partial signature before the
 *   push (the server must refuse it).
 *
 * `cliRunArgs` (`_harness.ts`, whose list of these names is the one that decides) picks this file when one is set.
 *
 * @module
 */
import { setLoopInTestHooks } from "../../cli/loopin.ts";
import { runProcess } from "../../cli/main.ts";
import type { HtlcVariant } from "../../core/loopin/types.ts";

if (import.meta.main) {
  const [stopAt, pauseMs] = (Deno.env.get("LOOPKIT_TEST_STOP_AT") ?? "").split(":");
  const flip = Deno.env.get("LOOPKIT_TEST_FLIP_SIG") as HtlcVariant | undefined;
  setLoopInTestHooks({
    onStep: async (step, signal) => {
      if (!stopAt || step !== stopAt) return;
      console.error(`loopkit-test: at ${step}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pauseMs ? Number(pauseMs) : 3_600_000);
        signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
    beforePush: flip
      ? (signing) => {
        const sig = signing[flip]?.sigs[0];
        if (sig) sig[sig.length - 1] ^= 0x01;
      }
      : undefined,
  });
  await runProcess(Deno.args);
}
