/**
 * Start-up time of whole processes, side by side in one run: `loopkit --help` against `lncli --help`, and
 * `loopkit deposits list --offline` on an empty data directory (issue "Running it for years", item 3).
 *
 * Also `deposits list --offline` on a data directory holding 1 000 deposits (the realistic case: it opens the
 * database, so it loads libSQL).
 *
 * Runs the commands in turns (a, b, c, a, b, c, …) so machine load hits each alike; prints min / median /
 * max wall time in ms and the ratio of the medians and of the minimums. Two floors are timed beside them: `deno run`
 * of an empty file, and of a file that only imports commander (what every parsed command pays). `loopkit` runs from source exactly as
 * `deno task loopkit` and the CLI tests run it (`deno run` with the CLI's permissions).
 *
 * Usage: `deno run --allow-all bench/startup.ts [--runs 30] [--lncli PATH] [--compare OTHER/cli/main.ts] [--json]`
 * (default lncli: `~/.cache/loopkit/bin/lncli-v0.21.3-beta`, then `lncli` on PATH; skipped when absent).
 *
 * @module
 */
import { CLI_RUN_ARGS } from "../tests/cli/_harness.ts";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { openDb } from "../core/db/db.ts";
import { syncDeposits } from "../core/deposits/sync.ts";
import { WalletStandIn } from "../core/deposits/_testing.ts";
import { benchAddress, benchDataDir, benchWallet } from "./_wallet.ts";

/** `<loopdir>/regtest/loopkit.db` holding the bench address and `n` deposits (a first sync in process). */
async function loopdirWithDeposits(loopdir: string, n: number): Promise<void> {
  const clientPubkey = secp256k1.getPublicKey(new Uint8Array(32).fill(7), true);
  const { pkScript } = benchAddress(clientPubkey);
  const dataDir = await benchDataDir(loopdir, clientPubkey);
  const wallet = new WalletStandIn();
  wallet.height = 900_000;
  wallet.utxos = benchWallet(2 * n, n, pkScript, wallet.height).map(({ account: _, ...u }) => ({
    ...u,
    address: "",
  }));
  wallet.importedPkScripts = [pkScript];
  const db = await openDb({ url: `file:${dataDir}/loopkit.db`, network: "regtest" });
  try {
    const r = await syncDeposits({ db, lnd: wallet });
    if (r.changes.length !== n) {
      throw new Error(`bench/startup: ${r.changes.length} deposits created, not ${n}`);
    }
  } finally {
    db.close();
  }
}

interface Case {
  name: string;
  cmd: string;
  args: string[];
  env?: Record<string, string>;
  /** Expected exit code (default 0). */
  expect?: number;
}

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

async function findLncli(): Promise<string | undefined> {
  const home = Deno.env.get("HOME") ?? "/";
  const cache = Deno.env.get("XDG_CACHE_HOME") ?? `${home}/.cache`;
  for (const p of [flag("--lncli"), `${cache}/loopkit/bin/lncli-v0.21.3-beta`]) {
    if (p && await Deno.stat(p).then((s) => s.isFile, () => false)) return p;
  }
  const which = await new Deno.Command("sh", { args: ["-c", "command -v lncli"], stdout: "piped" }).output();
  const p = new TextDecoder().decode(which.stdout).trim();
  return which.success && p ? p : undefined;
}

/** Wall time of one whole process, ms; throws when it exits with another code than `expect`. */
async function timeOnce(c: Case, expect: number): Promise<number> {
  const t0 = performance.now();
  const o = await new Deno.Command(c.cmd, {
    args: c.args,
    env: { NO_COLOR: "1", ...c.env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  if (o.code !== expect) {
    throw new Error(`${c.name} exited ${o.code}: ${new TextDecoder().decode(o.stderr)}`);
  }
  return ms;
}

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { n: s.length, min: s[0], median, max: s[s.length - 1] };
}

if (import.meta.main) {
  const runs = Number(flag("--runs") ?? 30);
  const empty = await Deno.makeTempDir({ prefix: "loopkit-startup-" });
  const full = await Deno.makeTempDir({ prefix: "loopkit-startup-" });
  try {
    await loopdirWithDeposits(full, 1_000);
    const deno = Deno.execPath();
    const cases: Case[] = [
      { name: "loopkit --help", cmd: deno, args: [...CLI_RUN_ARGS, "--help"] },
      {
        name: "loopkit deposits list --offline (empty data dir)",
        cmd: deno,
        args: [...CLI_RUN_ARGS, "--network", "regtest", "--loopdir", empty, "deposits", "list", "--offline"],
        expect: 1, // the empty state: no static address (README "Usage")
      },
      {
        name: "loopkit deposits list --offline (1 000 deposits)",
        cmd: deno,
        args: [...CLI_RUN_ARGS, "--network", "regtest", "--loopdir", full, "deposits", "list", "--offline"],
      },
    ];
    const floor = (name: string, file: string): Case => ({
      name,
      cmd: deno,
      args: ["run", "--quiet", "--allow-all", new URL(file, import.meta.url).pathname],
    });
    cases.push(
      floor("floor: deno run of an empty file", "./_floor_empty.ts"),
      floor("floor: deno run importing commander only", "./_floor_commander.ts"),
    );
    const before = flag("--compare");
    if (before) {
      // Another checkout's CLI (e.g. the commit before a change), run the same way.
      const args = [...CLI_RUN_ARGS.slice(0, -1), before];
      cases.push(
        { name: `before: loopkit --help (${before})`, cmd: deno, args: [...args, "--help"] },
        {
          name: `before: deposits list --offline, empty data dir (${before})`,
          cmd: deno,
          args: [...args, "--network", "regtest", "--loopdir", empty, "deposits", "list", "--offline"],
          expect: 1,
        },
        {
          name: `before: deposits list --offline, 1 000 deposits (${before})`,
          cmd: deno,
          args: [...args, "--network", "regtest", "--loopdir", full, "deposits", "list", "--offline"],
        },
      );
    }
    const lncli = await findLncli();
    if (lncli) cases.unshift({ name: "lncli --help", cmd: lncli, args: ["--help"] });
    else console.error("bench/startup: no lncli found (--lncli PATH); measuring loopkit only");
    const times = new Map(cases.map((c) => [c.name, [] as number[]]));
    for (const c of cases) await timeOnce(c, c.expect ?? 0); // warm the module cache and the page cache
    for (let i = 0; i < runs; i++) {
      for (const c of cases) times.get(c.name)!.push(await timeOnce(c, c.expect ?? 0));
    }
    const rows = cases.map((c) => ({ name: c.name, ...stats(times.get(c.name)!) }));
    const lncliRow = rows.find((r) => r.name === "lncli --help");
    const helpRow = rows.find((r) => r.name === "loopkit --help")!;
    const ratio = lncliRow
      ? { median: helpRow.median / lncliRow.median, min: helpRow.min / lncliRow.min }
      : undefined;
    if (Deno.args.includes("--json")) {
      console.log(JSON.stringify({ runs, rows, help_vs_lncli: ratio }, null, 2));
    } else {
      console.log(`${runs} runs each, interleaved; wall time in ms (whole process)`);
      console.log("| command | n | min | median | max |");
      console.log("| --- | --- | --- | --- | --- |");
      for (const r of rows) {
        console.log(
          `| ${r.name} | ${r.n} | ${r.min.toFixed(1)} | ${r.median.toFixed(1)} | ${r.max.toFixed(1)} |`,
        );
      }
      if (ratio) {
        console.log(
          `loopkit --help / lncli --help: ${ratio.median.toFixed(2)}× (medians), ${
            ratio.min.toFixed(2)
          }× (minimums)`,
        );
      }
    }
  } finally {
    await Deno.remove(empty, { recursive: true });
    await Deno.remove(full, { recursive: true });
  }
}
