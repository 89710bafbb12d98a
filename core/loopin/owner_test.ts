import { assert, assertEquals } from "../../tests/assert.ts";
import { currentOwner, ownerAlive, ownerOf, processStart } from "./owner.ts";

const linux = (() => {
  try {
    Deno.statSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "owner: this process is alive; an exited process, a reused pid and another host are not",
  ignore: !linux,
  async fn() {
    const me = currentOwner();
    assertEquals(me.pid, Deno.pid);
    assert(/^[0-9a-f-]*:\d+$/.test(me.start), me.start);
    assert(ownerAlive(me));
    assertEquals(ownerOf(`pid:${Deno.pid}`), me);
    // A child that has exited: its pid no longer names a process (or names another one).
    const child = new Deno.Command("true").spawn();
    const pid = child.pid;
    const tag = { host: me.host, pid, start: processStart(pid) ?? "x:0" };
    await child.status;
    assert(!ownerAlive(tag), "an exited process is gone");
    // Pid reuse: the same pid with another start time is another process.
    assert(!ownerAlive({ ...me, start: me.start.replace(/:\d+$/, ":1") }));
    // Another host's process cannot be seen from here.
    assert(!ownerAlive({ ...me, host: `${me.host}-elsewhere` }));
    assert(!ownerAlive(null));
  },
});

Deno.test("processStart returns field 22 (starttime) of /proc/<pid>/stat, counted after the last parenthesis", () => {
  // The real parser runs on /proc; here the format rule on our own stat line.
  if (!linux) return;
  const stat = Deno.readTextFileSync(`/proc/${Deno.pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  assertEquals(processStart(Deno.pid)?.split(":").pop(), fields[19]);
});
