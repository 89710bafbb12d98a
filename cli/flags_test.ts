import { assertEquals, assertThrows } from "../tests/assert.ts";
import { LoopkitError } from "../core/errors.ts";
import { MAX_WHOLE_FLAG, parseWholeFlag } from "./flags.ts";

Deno.test("parseWholeFlag: decimal digits from 0 to 2^63 - 1; anything else is exit 2 naming the flag", () => {
  assertEquals(parseWholeFlag("--max-swap-fee-sat", undefined, "sat"), undefined);
  assertEquals(parseWholeFlag("--max-swap-fee-sat", "0", "sat"), 0n);
  assertEquals(parseWholeFlag("--max-swap-fee-sat", "1000", "sat"), 1000n);
  const max = (2n ** 63n - 1n).toString();
  assertEquals(parseWholeFlag("--max-swap-fee-ppm", max, "ppm"), MAX_WHOLE_FLAG);
  for (
    const bad of [(2n ** 63n).toString(), "99999999999999999999", "-1", "+1", "1e3", "0x10", "1.5", "", " 1"]
  ) {
    const err = assertThrows(() => parseWholeFlag("--max-l402-cost-sat", bad, "sat"), LoopkitError);
    assertEquals(err.exitCode, 2, bad);
    assertEquals(err.message.includes(`--max-l402-cost-sat "${bad}"`), true, err.message);
  }
});
