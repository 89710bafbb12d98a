import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { withTempDir } from "../../tests/fs.ts";
import { atomicWriteFile } from "./atomic_write.ts";
import { type BackupFs, denoBackupFs } from "./fs.ts";

const te = new TextEncoder();

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

async function readOrNull(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

type Step = "lock" | "remove_stale" | "open" | "write" | "fsync" | "close" | "rename" | "dir_fsync";
const STEPS: Step[] = ["lock", "remove_stale", "open", "write", "fsync", "close", "rename", "dir_fsync"];

class InjectedFault extends Error {}

/** The real fs with one step made to fail. A failing write first writes a few bytes (a torn write). */
function faulty(step: Step): BackupFs {
  const boom = () => new InjectedFault(`injected ${step} failure`);
  return {
    ...denoBackupFs,
    async lockDir(p) {
      if (step === "lock") throw boom();
      const d = await denoBackupFs.lockDir(p);
      return {
        sync: () => step === "dir_fsync" ? Promise.reject(boom()) : d.sync(),
        close: () => d.close(),
      };
    },
    async remove(p) {
      // Only the stale-temp removal (before anything was created) fails; cleanup removals work.
      if (step === "remove_stale" && p.endsWith(".tmp")) {
        await Deno.lstat(p); // NotFound passes through as "nothing stale"
        throw boom();
      }
      return denoBackupFs.remove(p);
    },
    async createExclusive(p, mode) {
      if (step === "open") throw boom();
      const f = await denoBackupFs.createExclusive(p, mode);
      return {
        async write(b) {
          if (step === "write") {
            await f.write(b.subarray(0, Math.min(3, b.length)));
            throw boom();
          }
          return f.write(b);
        },
        sync: () => step === "fsync" ? Promise.reject(boom()) : f.sync(),
        close: () => {
          f.close();
          if (step === "close") throw boom();
        },
      };
    },
    rename: (a, b) => step === "rename" ? Promise.reject(boom()) : denoBackupFs.rename(a, b),
  };
}

Deno.test("atomicWriteFile() creates a 0600 file with the exact bytes and no temp file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "f.enc");
    await atomicWriteFile(path, te.encode("new content"));
    assertEquals(await Deno.readFile(path), te.encode("new content"));
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    assertEquals(await names(dir), ["f.enc"]);
  });
});

Deno.test("atomicWriteFile() replaces an existing file and makes it 0600", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "f.enc");
    await Deno.writeFile(path, te.encode("old"), { mode: 0o644 });
    await Deno.chmod(path, 0o644);
    await atomicWriteFile(path, te.encode("new"));
    assertEquals(await Deno.readFile(path), te.encode("new"));
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
  });
});

Deno.test("atomicWriteFile() replaces a stale 0644 temp file left by a crash; the result is 0600", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "f.enc");
    await Deno.writeFile(path + ".tmp", te.encode("stale partial junk that is longer"));
    await Deno.chmod(path + ".tmp", 0o644);
    await atomicWriteFile(path, te.encode("new"));
    assertEquals(await Deno.readFile(path), te.encode("new"));
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    assertEquals(await names(dir), ["f.enc"]);
  });
});

for (const previous of [null, "previous complete content"]) {
  for (const step of STEPS) {
    Deno.test(`atomicWriteFile() fault at ${step} (${previous ? "file existed" : "no file"}): old or new, never partial, no .tmp`, async () => {
      await withTempDir(async (dir) => {
        const path = join(dir, "f.enc");
        if (previous) await Deno.writeFile(path, te.encode(previous), { mode: 0o600 });
        // The stale-temp removal only runs when a crash left a temp file behind.
        const stale = step === "remove_stale" ? te.encode("stale") : null;
        if (stale) await Deno.writeFile(path + ".tmp", stale);
        const next = te.encode("the complete new content ".repeat(20));
        await assertRejects(
          () => atomicWriteFile(path, next, faulty(step)),
          InjectedFault,
          `injected ${step}`,
        );
        const now = await readOrNull(path);
        if (step === "dir_fsync") {
          assertEquals(now, next); // renamed before the directory sync failed
          assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
        } else {
          assertEquals(now, previous === null ? null : te.encode(previous));
        }
        // No temp file of ours is left; a stale one we failed to remove is untouched.
        assertEquals(await readOrNull(path + ".tmp"), stale);
        const expected = [...(now === null ? [] : ["f.enc"]), ...(stale ? ["f.enc.tmp"] : [])];
        assertEquals(await names(dir), expected);
      });
    });
  }
}

Deno.test("atomicWriteFile() keeps writing after a short write", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "f.enc");
    const fs: BackupFs = {
      ...denoBackupFs,
      async createExclusive(p, mode) {
        const f = await denoBackupFs.createExclusive(p, mode);
        return { write: (b) => f.write(b.subarray(0, 1)), sync: () => f.sync(), close: () => f.close() };
      },
    };
    await atomicWriteFile(path, te.encode("abcdef"), fs);
    assertEquals(await Deno.readFile(path), te.encode("abcdef"));
  });
});

Deno.test("atomicWriteFile() onto a directory fails and leaves no temp file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "f.enc");
    await Deno.mkdir(path);
    await assertRejects(() => atomicWriteFile(path, te.encode("x")));
    assertEquals(await names(dir), ["f.enc"]);
    assert((await Deno.stat(path)).isDirectory);
  });
});

Deno.test("atomicWriteFile() into a missing directory fails without creating anything", async () => {
  await withTempDir(async (dir) => {
    await assertRejects(
      () => atomicWriteFile(join(dir, "missing", "f.enc"), te.encode("x")),
      Deno.errors.NotFound,
    );
    assertEquals(await names(dir), []);
  });
});

Deno.test("atomicWriteFile() serializes concurrent writers of one path: the result is one complete version", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "f.enc");
    const versions = Array.from({ length: 6 }, (_, i) => te.encode(String(i).repeat(5000 + i)));
    await Promise.all(versions.map((v) => atomicWriteFile(path, v)));
    const final = await Deno.readFile(path);
    assert(versions.some((v) => v.length === final.length && v.every((b, i) => b === final[i])));
    assertEquals(await names(dir), ["f.enc"]);
  });
});
