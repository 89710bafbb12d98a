import { assertEquals, assertRejects } from "../tests/assert.ts";
import { LoopkitError } from "./errors.ts";
import {
  interruptible,
  requestInterrupt,
  resetInterruptForTests,
  rollbackActive,
  withRollback,
} from "./interrupt.ts";

Deno.test("interruptible() rejects a stalled wait with the interrupted error (exit 130) when a signal arrives", async () => {
  resetInterruptForTests();
  const never = new Promise<number>(() => {});
  const p = withRollback(() => interruptible(never));
  assertEquals(rollbackActive(), true);
  requestInterrupt();
  const err = await assertRejects(() => p, LoopkitError);
  assertEquals([(err as LoopkitError).code, (err as LoopkitError).exitCode], ["interrupted", 130]);
  assertEquals(rollbackActive(), false);
  resetInterruptForTests();
});

Deno.test("withRollback() reports a section that completed despite a signal as interrupted, saying what is kept", async () => {
  resetInterruptForTests();
  const err = await assertRejects(
    () =>
      withRollback(() => {
        requestInterrupt();
        return Promise.resolve(1);
      }, "the rows are stored"),
    LoopkitError,
    "the rows are stored",
  );
  assertEquals((err as LoopkitError).exitCode, 130);
  resetInterruptForTests();
  assertEquals(await withRollback(() => interruptible(Promise.resolve(2))), 2);
});
