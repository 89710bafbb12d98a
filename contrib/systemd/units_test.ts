/**
 * The systemd units: `systemd-analyze verify` accepts them (skipped with a message when the tool is absent;
 * Debian: `apt-get install -y systemd`, which `.ci/run` does), and their contents follow
 * contrib/systemd/README.md: the documented command sequence, exit-code mapping and hardening.
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { expandExec, LOOPKIT_BIN, readUnit, UNIT_DIR, unitEnvironment } from "./_units.ts";

const UNITS = [
  "loopkit-sync.service",
  "loopkit-sync.timer",
  "loopkit-status.service",
  "loopkit-status.timer",
];

async function hasSystemdAnalyze(): Promise<boolean> {
  try {
    const r = await new Deno.Command("systemd-analyze", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return r.success;
  } catch {
    return false;
  }
}

const analyze = await hasSystemdAnalyze();
if (!analyze) {
  console.error(
    "contrib/systemd/units_test.ts: systemd-analyze not found, skipping `systemd-analyze verify` " +
      "(Debian: apt-get install -y systemd)",
  );
}

/**
 * `systemd-analyze verify` on copies of the units whose `ExecStart=` binary is a stub executable (verify
 * refuses a command that does not exist). Returns its exit code and everything it printed.
 */
async function verify(edit: (name: string, text: string) => string = (_n, t) => t) {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-units-" });
  try {
    const stub = `${dir}/loopkit`;
    await Deno.writeTextFile(stub, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    for (const name of UNITS) {
      const text = (await Deno.readTextFile(UNIT_DIR + name)).replaceAll(LOOPKIT_BIN, stub);
      await Deno.writeTextFile(`${dir}/${name}`, edit(name, text));
    }
    const r = await new Deno.Command("systemd-analyze", {
      args: ["verify", ...UNITS.map((n) => `${dir}/${n}`)],
      env: { SYSTEMD_LOG_COLOR: "0" },
    }).output();
    const dec = new TextDecoder();
    return { code: r.code, output: (dec.decode(r.stdout) + dec.decode(r.stderr)).trim() };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "systemd-analyze verify accepts the four units without a warning",
  ignore: !analyze,
  async fn() {
    const r = await verify();
    assertEquals([r.code, r.output], [0, ""]);
  },
});

Deno.test({
  name: "systemd-analyze verify reports a broken unit (the check above can fail)",
  ignore: !analyze,
  async fn() {
    const r = await verify((name, text) =>
      name === "loopkit-sync.service" ? text.replace("Restart=on-failure", "Restart=sometimes") : text
    );
    assert(r.output.includes("sometimes"), r.output);
  },
});

Deno.test("loopkit-sync.service runs deposits sync then backup write (copies from LOOPKIT_BACKUP_ARGS); loopin sync documented, not run", async () => {
  const u = await readUnit("loopkit-sync.service");
  const env = { ...unitEnvironment(u), LOOPKIT_BACKUP_ARGS: "--copy-to /mnt/a --copy-to /mnt/b" };
  assertEquals(u.Service.ExecStart.map((l) => expandExec(l, env)), [
    [LOOPKIT_BIN, "deposits", "sync"],
    [LOOPKIT_BIN, "backup", "write", "--copy-to", "/mnt/a", "--copy-to", "/mnt/b"],
  ]);
  // Without copies the variable adds no argument.
  assertEquals(expandExec(u.Service.ExecStart[1], unitEnvironment(u)), [LOOPKIT_BIN, "backup", "write"]);
  const text = await Deno.readTextFile(UNIT_DIR + "loopkit-sync.service");
  assert(text.includes(`#ExecStart=${LOOPKIT_BIN} loopin sync`), "the loop-in line is documented");
  assertEquals(u.Service.Type, ["oneshot"]);
});

Deno.test("exit codes: 4 counts as success in the sync unit, 75 is retried, 1/2/3 are not", async () => {
  const sync = await readUnit("loopkit-sync.service");
  assertEquals(sync.Service.SuccessExitStatus, ["4"]);
  assertEquals(sync.Service.Restart, ["on-failure"]);
  const prevent = sync.Service.RestartPreventExitStatus[0].split(/\s+/);
  assertEquals(prevent.includes("75"), false);
  for (const c of ["1", "2", "3"]) assert(prevent.includes(c), c);
  const status = await readUnit("loopkit-status.service");
  assertEquals(status.Service.SuccessExitStatus, undefined); // exit 1 (attention) fails the unit
  const sp = status.Service.RestartPreventExitStatus[0].split(/\s+/);
  assertEquals([sp.includes("1"), sp.includes("75")], [true, false]);
  assertEquals(
    status.Service.ExecStart.map((l) => expandExec(l, unitEnvironment(status))),
    [[LOOPKIT_BIN, "status"]],
  );
});

Deno.test("both services are hardened: lnd's user, umask 0077, no new privileges, read-only system, writable data dir", async () => {
  for (const name of ["loopkit-sync.service", "loopkit-status.service"]) {
    const s = (await readUnit(name)).Service;
    const one = (k: string) => s[k]?.at(-1);
    assertEquals(
      [one("User"), one("UMask"), one("NoNewPrivileges"), one("ProtectSystem"), one("PrivateTmp")],
      ["lnd", "0077", "yes", "strict", "yes"],
      name,
    );
    assertEquals(one("ReadWritePaths"), "-/home/lnd/.loop", name);
    assertEquals(one("ProtectHome"), "read-only", name);
  }
});

Deno.test("each timer starts its service", async () => {
  for (
    const [timer, service] of [["loopkit-sync.timer", "loopkit-sync.service"], [
      "loopkit-status.timer",
      "loopkit-status.service",
    ]]
  ) {
    const t = await readUnit(timer);
    assertEquals(t.Timer.Unit, [service]);
    assert(t.Timer.OnCalendar?.length === 1, timer);
    assertEquals(t.Install.WantedBy, ["timers.target"]);
  }
});
