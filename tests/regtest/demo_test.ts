/**
 * `deno task demo` (the README's main-job command) exits 0 and shows the address, both deposits and the
 * verified backup. Ignored without the regtest binaries unless CI=true (then missing binaries fail).
 */
import { assertEquals, assertStringIncludes } from "../assert.ts";
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
    assertEquals((text.match(/^created +[0-9a-f]{64}:\d+/gm) ?? []).length, 2);
    assertEquals((text.match(/^[0-9a-f]{64}:\d+ +\d+ +Deposited +unconfirmed/gm) ?? []).length, 1);
    assertStringIncludes(text, "1 valid, 0 invalid");
  },
});
