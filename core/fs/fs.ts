/**
 * The file-system operations of loopkit's durable writes (backups, the L402 token), as a small
 * interface so tests can inject a fault at any step. {@linkcode denoBackupFs} is the real implementation.
 *
 * @module
 */

/** A file opened for writing. */
export interface WritableFile {
  /** Writes some bytes at the current position; returns how many were written (may be fewer). */
  write(bytes: Uint8Array): Promise<number>;
  /** fsync. */
  sync(): Promise<void>;
  /** Closes the file. */
  close(): void;
}

/** An open, exclusively locked directory. */
export interface LockedDir {
  /** fsync the directory (makes a rename in it durable). */
  sync(): Promise<void>;
  /** Releases the lock and closes the directory. */
  close(): void;
}

/** One directory entry (no recursion, no stat of symlink targets, like Go's `os.ReadDir`). */
export interface DirEntry {
  /** Base name. */
  name: string;
  /** True for a directory (a symlink to a directory is not one, like Go's `DirEntry.IsDir`). */
  isDirectory: boolean;
}

/** File-system operations of core/backup. Errors are Deno's (`Deno.errors.NotFound`, …). */
export interface BackupFs {
  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array>;
  /** Lists a directory, in no particular order. */
  readDir(path: string): Promise<DirEntry[]>;
  /**
   * Opens a directory read-only and takes an exclusive advisory lock on it (`flock`), waiting
   * for other holders. Serializes loopkit writers of the same directory across processes.
   */
  lockDir(path: string): Promise<LockedDir>;
  /** Creates a new file for writing (`O_CREAT|O_EXCL|O_WRONLY`) with `mode` (umask applies). */
  createExclusive(path: string, mode: number): Promise<WritableFile>;
  /** rename(2): atomically replaces `to` if it is a file. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file. */
  remove(path: string): Promise<void>;
}

/**
 * Writes all of `bytes` to `file` (looping over short writes) and fsyncs it. Does not close it.
 * @param name the file's path, for the error message
 * @throws Error when a write makes no progress; the file system's error of a failing write or fsync
 */
export async function writeAllAndSync(file: WritableFile, bytes: Uint8Array, name: string): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    const n = await file.write(bytes.subarray(off));
    if (!(n > 0)) throw new Error(`Cannot write "${name}": write made no progress`);
    off += n;
  }
  await file.sync();
}

/** Largest backup or token file read, in bytes (real ones are a few KiB). */
export const MAX_READ_BYTES = 1 << 20;

/**
 * The real file system. Needs `--allow-read` for reads and listing, `--allow-write` for the rest.
 */
export const denoBackupFs: BackupFs = {
  async readFile(path) {
    // Bounded and regular files only: a FIFO would block forever, /dev/zero or a huge file would
    // exhaust memory (a real backup or token file is a few KiB).
    const st = await Deno.stat(path);
    if (!st.isFile) throw new Deno.errors.InvalidData(`"${path}" is not a regular file`);
    if (st.size > MAX_READ_BYTES) {
      throw new Deno.errors.InvalidData(
        `"${path}" is ${st.size} bytes, more than the ${MAX_READ_BYTES} allowed`,
      );
    }
    const data = await Deno.readFile(path);
    if (data.length > MAX_READ_BYTES) {
      throw new Deno.errors.InvalidData(`"${path}" grew past ${MAX_READ_BYTES} bytes while being read`);
    }
    return data;
  },
  async readDir(path) {
    const out: DirEntry[] = [];
    for await (const e of Deno.readDir(path)) out.push({ name: e.name, isDirectory: e.isDirectory });
    return out;
  },
  async lockDir(path) {
    const dir = await Deno.open(path, { read: true });
    try {
      await dir.lock(true);
    } catch (e) {
      dir.close();
      throw e;
    }
    return { sync: () => dir.sync(), close: () => dir.close() };
  },
  createExclusive: (path, mode) => Deno.open(path, { write: true, createNew: true, mode }),
  rename: (from, to) => Deno.rename(from, to),
  remove: (path) => Deno.remove(path),
};
