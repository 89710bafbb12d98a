/**
 * `deno task demo` (the README's main-job command) exits 0 and shows the address, both deposits and the
 * verified backup. Ignored without the regtest binaries unless CI=true.
 */
import { assertEquals, assertStringIncludes } from "../assert.ts";
import { regtestBinaries } from "./harness.ts";

const bins = await regtestBinaries();
const skip = bins.missing.length > 0 && Deno.env.get("CI") !== "true";

Deno.test({
  name: "deno task demo runs the main job end to end and exits 0",
  ignore: skip,
  async fn() {
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
