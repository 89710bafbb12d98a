import { join } from "node:path";
import { assertEquals } from "../../tests/assert.ts";
import { withTempDir } from "../../tests/fs.ts";
import { isLoopkitTempName, listStaleTempFiles, removeStaleTempFiles } from "./temp_files.ts";

const BACKUP = `L402_backup_${"1".repeat(19)}_${"ab".repeat(32)}.enc`;

Deno.test("isLoopkitTempName() matches exactly the temp names loopkit's writers use", () => {
  for (
    const n of [
      ".loopkit-recover-0123456789abcdef.tmp",
      "l402.token.tmp",
      "l402.token.pending.tmp",
      `${BACKUP}.tmp`,
    ]
  ) {
    assertEquals(isLoopkitTempName(n), true, n);
  }
  for (
    const n of ["l402.token", BACKUP, ".loopkit-recover-xyz.tmp", "notes.tmp", "lsat.token.tmp", "loopkit.db"]
  ) {
    assertEquals(isLoopkitTempName(n), false, n);
  }
});

Deno.test("removeStaleTempFiles() removes loopkit's temp files only; listStaleTempFiles() only reports", async () => {
  await withTempDir(async (dir) => {
    const stale = [".loopkit-recover-0123456789abcdef.tmp", "l402.token.tmp", `${BACKUP}.tmp`];
    const kept = ["l402.token", BACKUP, "other.tmp"];
    for (const n of [...stale, ...kept]) await Deno.writeFile(join(dir, n), new Uint8Array([1]));
    await Deno.mkdir(join(dir, "l402.token.pending.tmp")); // a directory is never touched
    const expected = stale.map((n) => join(dir, n)).sort();
    assertEquals(await listStaleTempFiles(dir), expected);
    assertEquals(await listStaleTempFiles(dir), expected, "listing removes nothing");
    assertEquals(await removeStaleTempFiles(dir), expected);
    const left = [];
    for await (const e of Deno.readDir(dir)) left.push(e.name);
    assertEquals(left.sort(), [...kept, "l402.token.pending.tmp"].sort());
    assertEquals(await removeStaleTempFiles(join(dir, "missing")), []);
  });
});
