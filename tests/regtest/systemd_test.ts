/**
 * contrib/systemd acceptance on a real regtest network: the `ExecStart=` lines of loopkit-sync.service, read
 * from the unit and expanded like systemd (its `Environment=` plus an environment file's settings), run in
 * order against alice's lnd; each exit code is one the unit counts as success; then those of
 * loopkit-status.service. Two overlapping runs of the sequence are safe (README: no flock needed).
 *
 * Ignored without the regtest binaries unless CI=true (then missing binaries fail).
 */
import { assert, assertEquals } from "../assert.ts";
import { type CliResult, runCli } from "../cli/_harness.ts";
import { expandExec, LOOPKIT_BIN, readUnit, unitEnvironment } from "../../contrib/systemd/_units.ts";
import { regtestTest } from "./suite.ts";

type Json = Record<string, unknown>;

regtestTest("regtest: loopkit-sync.service's ExecStart sequence, then loopkit-status.service", {
  expiry: 144,
}, async ({ net, loopdir, newAddress, tempDir }, t) => {
  const offsite = await tempDir("loopkit-offsite-");
  // What /etc/loopkit/loopkit.env holds on this machine.
  const envFile = {
    LOOPKIT_NETWORK: "regtest",
    LOOPKIT_LOOPDIR: loopdir,
    LOOPKIT_RPCSERVER: net.alice.rpcServer,
    LOOPKIT_TLSCERTPATH: net.alice.tlsCertPath,
    LOOPKIT_MACAROONPATH: net.alice.adminMacaroonPath,
    LOOPKIT_BACKUP_ARGS: `--copy-to ${offsite}`,
    LOOPKIT_STATUS_ARGS: `--copy-to ${offsite} --warn-expiry-blocks 10`,
  };
  /** Runs a unit's ExecStart lines in order, stopping at the first exit the unit does not count as success. */
  const runUnit = async (name: string): Promise<{ argv: string[]; r: CliResult }[]> => {
    const unit = await readUnit(name);
    const env = { ...unitEnvironment(unit), ...envFile };
    const success = new Set([
      0,
      ...(unit.Service.SuccessExitStatus ?? []).flatMap((s) => s.split(/\s+/).map(Number)),
    ]);
    const runs: { argv: string[]; r: CliResult }[] = [];
    for (const line of unit.Service.ExecStart) {
      const argv = expandExec(line, env);
      assertEquals(argv[0], LOOPKIT_BIN);
      const r = await runCli(argv.slice(1), env);
      runs.push({ argv, r });
      if (!success.has(r.code)) break;
    }
    return runs;
  };

  await t.step("before an address: every step is a documented no-op, exit 0", async () => {
    const runs = await runUnit("loopkit-sync.service");
    assertEquals(runs.map((x) => [x.argv.slice(1, 3).join(" "), x.r.code]), [
      ["deposits sync", 0],
      ["backup write", 0],
    ]);
  });

  const created = await newAddress();
  assertEquals(created.code, 0, created.stderr);
  const address = created.json?.address as string;
  const backupName = ((created.json?.backup as Json).path as string).split("/").pop()!;
  const txid = await net.sendToAddress(address, 123_000n);
  await net.mine(1);

  await t.step(
    "the sequence records the deposit and places the backup in the off-site directory",
    async () => {
      const runs = await runUnit("loopkit-sync.service");
      assertEquals(runs.map((x) => [x.argv.slice(1, 3).join(" "), x.r.code]), [
        ["deposits sync", 0],
        ["backup write", 0],
      ], runs.map((x) => x.r.stderr).join("\n"));
      assert(runs[0].r.stdout.includes(txid), runs[0].r.stdout);
      assertEquals(
        await Deno.readFile(`${offsite}/${backupName}`),
        await Deno.readFile(`${loopdir}/regtest/${backupName}`),
      );
    },
  );

  await t.step("two overlapping runs are safe: both succeed, one deposit row", async () => {
    const txid2 = await net.sendToAddress(address, 77_000n);
    await net.mine(1);
    const [a, b] = await Promise.all([runUnit("loopkit-sync.service"), runUnit("loopkit-sync.service")]);
    for (const runs of [a, b]) assertEquals(runs.map((x) => x.r.code), [0, 0]);
    const list = await runCli(["--json", "deposits", "list"], envFile);
    const ops = (list.json?.deposits as Json[]).map((d) => d.outpoint as string);
    assertEquals(ops.filter((o) => o.startsWith(txid2)).length, 1);
  });

  await t.step("loopkit-status.service: exit 0 with everything checked", async () => {
    const [s] = await runUnit("loopkit-status.service");
    assertEquals(s.argv.slice(1), ["status", "--copy-to", offsite, "--warn-expiry-blocks", "10"]);
    assertEquals(s.r.code, 0, s.r.stdout + s.r.stderr);
    assert(s.r.stdout.includes(`off-site copy ${offsite}/${backupName} ok`), s.r.stdout);
  });
});
