/**
 * The owner of an in-progress loop-in initiation: which process on which host runs it, and whether that
 * process is still alive. `loopin sync` leaves a swap in `InitHtlcTx` / `SignHtlcTx` alone while its owner
 * runs, and unwinds it once the owner is gone (spec/static-loop-in.md §2.5, §2.6 item 1;
 * spec/static-loop-in-review.md §1.1).
 *
 * A pid alone is not an identity: pids are reused. The owner tag is `(host, pid, start)` where `start` is
 * the kernel's boot id plus the process start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
 * A process with that pid but another start time (or after a reboot) is another process. An owner on
 * another host (a database restored or shared elsewhere) is treated as gone: this host cannot see it, and
 * the initiation's MuSig2 sessions lived in that host's lnd.
 *
 * Linux (`/proc`). Where `/proc` is not readable (another OS) liveness cannot be checked: the owner counts as
 * alive until {@linkcode OWNER_MAX_AGE_MS} after the initiation started (an initiation is bounded by its
 * server deadlines, a few minutes), then as gone.
 *
 * @module
 */

/** Who runs an initiation. */
export interface OwnerTag {
  /** `Deno.hostname()` of the owner's host. */
  host: string;
  /** Process id. */
  pid: number;
  /** `<boot id>:<start time in clock ticks>`, or `""` when `/proc` is not readable. */
  start: string;
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "";
  }
}

function bootId(): string {
  try {
    return Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
  } catch {
    return "";
  }
}

/**
 * The start tag of process `pid`: `<boot id>:<starttime>` from `/proc`, `""` when unreadable, null when the
 * process does not exist.
 */
export function processStart(pid: number): string | null {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound && procReadable()) return null;
    return ""; // no /proc or no permission: cannot tell
  }
  // Field 2 (comm) is in parentheses and may contain spaces or ')': split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); field 22 (starttime) is rest[19].
  const starttime = rest[19];
  if (!starttime || !/^\d+$/.test(starttime)) return "";
  return `${bootId()}:${starttime}`;
}

/** How long an owner whose liveness cannot be checked (no `/proc`) counts as alive, ms: one hour. */
export const OWNER_MAX_AGE_MS = 3_600_000;

function procReadable(): boolean {
  try {
    Deno.statSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
}

/** This process's owner tag. */
export function currentOwner(): OwnerTag {
  return { host: hostname(), pid: Deno.pid, start: processStart(Deno.pid) ?? "" };
}

/**
 * The owner tag for an owner string as `initiate.ts` passes it: `pid:<n>` (this host), or a tag of this
 * process when the string is anything else.
 */
export function ownerOf(owner: string | OwnerTag | undefined): OwnerTag {
  if (owner && typeof owner === "object") return owner;
  const m = /^pid:(\d+)$/.exec(owner ?? "");
  if (m) {
    const pid = Number(m[1]);
    return { host: hostname(), pid, start: processStart(pid) ?? "" };
  }
  return currentOwner();
}

/**
 * True while the owner process runs on this host: same host name, the pid exists and (when both are known)
 * has the same start tag. When liveness cannot be checked, true until `ageMs` reaches
 * {@linkcode OWNER_MAX_AGE_MS}.
 *
 * @param owner the stored tag (null: nobody owns the swap)
 * @param ageMs how long ago the initiation started, ms
 */
export function ownerAlive(owner: OwnerTag | null, ageMs = 0): boolean {
  if (!owner) return false;
  if (owner.host !== hostname()) return false;
  const start = processStart(owner.pid);
  if (start === null) return false;
  if (owner.start === "" || start === "") return ageMs < OWNER_MAX_AGE_MS; // cannot tell apart
  return start === owner.start;
}
