/**
 * A newcomer's first `deno install` (or first run) in a fresh clone asks nothing (issue item 17): every npm
 * lifecycle script in the dependency tree is decided in deno.json's `allowScripts`. The only one today is
 * protobufjs's `postinstall` (a version check of the separate protobufjs-cli package, which loopkit does not
 * use): denied.
 */
import { assert, assertEquals } from "./assert.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("deno install in a fresh copy of deno.json and deno.lock prints no 'Ignored build scripts … approve-scripts' box", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-fresh-" });
  try {
    for (const f of ["deno.json", "deno.lock"]) {
      await Deno.copyFile(new URL(f, ROOT), `${dir}/${f}`);
    }
    const o = await new Deno.Command(Deno.execPath(), {
      args: ["install"],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr);
    assertEquals(o.code, 0, text);
    assert(!/Ignored build scripts|approve-scripts/.test(text), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
