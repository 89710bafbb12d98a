import { assertEquals, assertNotEquals, assertRejects } from "./assert.ts";
import { exists, treeHash, withTempDir } from "./fs.ts";

/** A small tree: `a` (0600), `sub/b`, and a symlink `link` → `a`. */
async function tree(dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/a`, "alpha", { mode: 0o600 });
  await Deno.mkdir(`${dir}/sub`);
  await Deno.writeTextFile(`${dir}/sub/b`, "beta");
  await Deno.symlink("a", `${dir}/link`);
}

Deno.test("treeHash() changes with a file's bytes, a mode, a new file and a symlink target", async () => {
  await withTempDir(async (dir) => {
    await tree(dir);
    const h = await treeHash(dir);
    assertEquals(await treeHash(dir), h);
    assertEquals(h.length, 64);

    await Deno.writeTextFile(`${dir}/sub/b`, "betA");
    assertNotEquals(await treeHash(dir), h);
    await Deno.writeTextFile(`${dir}/sub/b`, "beta");
    assertEquals(await treeHash(dir), h);

    await Deno.chmod(`${dir}/a`, 0o644);
    assertNotEquals(await treeHash(dir), h);
    await Deno.chmod(`${dir}/a`, 0o600);
    assertEquals(await treeHash(dir), h);

    await Deno.writeTextFile(`${dir}/sub/c`, "");
    assertNotEquals(await treeHash(dir), h);
    await Deno.remove(`${dir}/sub/c`);
    assertEquals(await treeHash(dir), h, "a file created and removed again leaves the content hash alone");

    await Deno.remove(`${dir}/link`);
    await Deno.symlink("sub/b", `${dir}/link`);
    assertNotEquals(await treeHash(dir), h);
  });
});

Deno.test("treeHash() with mtimes also sees a changed mtime; paths are relative to the root", async () => {
  await withTempDir(async (one) => {
    await withTempDir(async (two) => {
      await tree(one);
      await tree(two);
      assertEquals(await treeHash(one), await treeHash(two));
      const strict = await treeHash(one, { mtimes: true });
      const mtime = new Date((await Deno.stat(`${one}/a`)).mtime!.getTime() - 60_000);
      await Deno.utime(`${one}/a`, mtime, mtime);
      assertNotEquals(await treeHash(one, { mtimes: true }), strict);
      assertEquals(await treeHash(one), await treeHash(two));
    });
  });
});

Deno.test("exists() is true for a file and a dangling symlink, false for a missing path", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/f`, "");
    await Deno.symlink(`${dir}/missing`, `${dir}/dangling`);
    assertEquals(await exists(`${dir}/f`), true);
    assertEquals(await exists(`${dir}/dangling`), true);
    assertEquals(await exists(`${dir}/missing`), false);
  });
});

Deno.test("withTempDir() returns fn's value and removes the directory, also when fn throws", async () => {
  let kept = "";
  assertEquals(
    await withTempDir(async (dir) => {
      kept = dir;
      await Deno.writeTextFile(`${dir}/f`, "");
      return 7;
    }),
    7,
  );
  assertEquals([kept !== "", await exists(kept)], [true, false]);
  let thrown = "";
  await assertRejects(
    () =>
      withTempDir((dir) => {
        thrown = dir;
        return Promise.reject(new Error("boom"));
      }),
    Error,
    "boom",
  );
  assertEquals([thrown !== "", await exists(thrown)], [true, false]);
});
