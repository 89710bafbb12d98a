/**
 * `deno task demo` (the README's main-job command) exits 0 and shows the address, both deposits, the
 * verified backup and the loop-in: Succeeded, swept cooperatively, the change back as a deposit. Ignored
 * without the regtest binaries unless CI=true (then missing binaries fail).
 */
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { assertBinaries, skipRegtest } from "./suite.ts";

Deno.test({
  name: "deno task demo runs the main job end to end and exits 0",
  ignore: skipRegtest,
  async fn() {
    assertBinaries();
    const root = new URL("../..", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "demo"],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, text + new TextDecoder().decode(out.stderr));
    assertStringIncludes(text, "static address: bcrt1p");
    // Two deposits, then the loop-in's change as a third.
    assertEquals((text.match(/^created +[0-9a-f]{64}:\d+/gm) ?? []).length, 3);
    assertEquals((text.match(/^[0-9a-f]{64}:\d+ +\d+ +Deposited +unconfirmed/gm) ?? []).length, 1);
    assertStringIncludes(text, "1 valid, 0 invalid");
    // The loop-in: Succeeded, the cooperative sweep confirmed, the 50 000 sat change a new deposit.
    assertStringIncludes(text, "state Succeeded");
    assert(
      /^sweep [0-9a-f]{64} confirmed in block \d+$/m.test(text),
      "no confirmed sweep in the demo output",
    );
    assert(/^[0-9a-f]{64}:\d+ +50000 +Deposited /m.test(text), "the change is not listed as a new deposit");
  },
});
