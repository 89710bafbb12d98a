/**
 * File-system helpers shared by the unit and CLI tests: whether a path exists, and a hash of a directory
 * tree for "nothing was written" assertions.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

/** True when `path` exists (a dangling symlink counts: `lstat`, not `stat`). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * SHA-256 (hex) over every entry below `dir`, recursively in name order: its path relative to `dir`, type
 * (d, f, l; o for a socket or FIFO), mode, and the SHA-256 of a file's bytes or a symlink's target. Equal
 * before and after ⇒ the same entries with the same modes and bytes, even if some were created and removed
 * in between.
 *
 * With `mtimes: true` each entry's size and modification time are hashed too, so equal also means nothing
 * was rewritten in place or added and removed again (a directory's mtime moves when an entry comes or goes).
 */
export async function treeHash(dir: string, opts: { mtimes?: boolean } = {}): Promise<string> {
  const lines: string[] = [];
  const walk = async (d: string, rel: string) => {
    const entries: Deno.DirEntry[] = [];
    for await (const e of Deno.readDir(d)) entries.push(e);
    entries.sort((a, b) => a.name < b.name ? -1 : 1);
    for (const e of entries) {
      const p = `${d}/${e.name}`;
      const st = await Deno.lstat(p);
      const head = `${rel}/${e.name} ${
        e.isDirectory ? "d" : e.isSymlink ? "l" : e.isFile ? "f" : "o"
      } ${st.mode}${opts.mtimes ? ` ${st.size} ${st.mtime?.getTime()}` : ""}`;
      if (e.isDirectory) {
        lines.push(head);
        await walk(p, `${rel}/${e.name}`);
      } else if (e.isSymlink) {
        lines.push(`${head} -> ${await Deno.readLink(p)}`);
      } else if (e.isFile) {
        lines.push(`${head} ${bytesToHex(sha256(await Deno.readFile(p)))}`);
      } else {
        lines.push(head); // a socket or FIFO: never opened
      }
    }
  };
  await walk(dir, "");
  return bytesToHex(sha256(new TextEncoder().encode(lines.join("\n"))));
}

/** Runs `fn` with a new temporary directory, removed afterwards whether `fn` passes or throws. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>, prefix = "loopkit-test-"): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
