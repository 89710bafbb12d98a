/**
 * Issue 4 acceptance on a real regtest network (btcd + lnd alice and bob, alice→bob channel, the local swap
 * server with bob's invoices): `loopkit recover` and `loopkit recover deposit` after losing the database and
 * the token (lnd intact), after losing alice's lnd (a new lnd from the same aezeed seed), with an lnd of
 * another seed, with conflicts, with a failure after the token write (a macaroon without `onchain:write`
 * makes ImportTapscript fail), the multi-address gap scan and `--dry-run`.
 *
 * Ignored without the regtest binaries unless CI=true (then missing binaries fail).
 */
import { hex } from "@scure/base";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { unary } from "../../lnd/rpc.ts";
import { GrpcLndClient } from "../../lnd/grpc_client.ts";
import { staticAddress } from "../../core/staticaddr/script.ts";
import { makeTokenFile } from "../cli/_harness.ts";
import { treeHash } from "../fs.ts";
import { regtestTest } from "./suite.ts";

type Json = Record<string, unknown>;
type Scanned = { branch: string; key_family: number; last_index: number | null; hits: { index: number }[] };

regtestTest(
  "regtest: recover and recover deposit (disk loss, lnd rebuilt from seed, other seed, conflicts, rollback)",
  { expiry: 144 },
  async ({ net, loopdir, cli, cliAs, newAddress, tempDir }, t) => {
    const safe = await tempDir("loopkit-regtest-safe-");
    const dataDir = `${loopdir}/regtest`;
    const alice = net.alice;
    const lose = async () => {
      await Deno.remove(`${dataDir}/loopkit.db`).catch(() => {});
      await Deno.remove(`${dataDir}/l402.token`).catch(() => {});
    };
    // ---- the node before the loss: address, backup, deposits to the legacy address and to four children
    const created = await newAddress();
    assertEquals(created.code, 0, created.stderr);
    const address = created.json?.address as string;
    const legacyPk = hex.decode(created.json?.pk_script as string);
    const backupPath = (created.json?.backup as Json)?.path as string;
    assert(backupPath, `address new wrote a backup: ${created.stdout}`);
    await Deno.copyFile(backupPath, `${safe}/${backupPath.split("/").pop()}`);
    const safeBackup = `${safe}/${backupPath.split("/").pop()}`;
    const shown = (await cli("--json", "address", "show")).json!;
    const serverPubkey = hex.decode(shown.server_pubkey as string);
    const firstHeight = Number(shown.initiation_height);
    const token = await Deno.readFile(`${dataDir}/l402.token`);

    const aliceLnd = new GrpcLndClient(alice.rpc);
    const child = async (family: number, index: number) => {
      const key = await aliceLnd.deriveKey({ family, index });
      return staticAddress({
        clientPubkey: key.rawKeyBytes,
        serverPubkey,
        csvExpiry: 144,
        network: "regtest",
      });
    };
    const children: [number, number][] = [[42061, 0], [42061, 3], [42061, 22], [42062, 1]];
    const childAddrs = await Promise.all(children.map(([f, i]) => child(f, i)));
    // Loop's multi-address children are imported into lnd when issued; do the same so lnd watches them.
    for (const c of childAddrs) {
      await unary(alice.rpc.walletKit, "ImportTapscript", {
        internal_public_key: c.internalKeyXOnly,
        full_tree: { all_leaves: [{ leaf_version: 0xc0, script: c.timeoutLeafScript }] },
      });
    }
    const payTo = [
      { address, amountSat: 150_000n },
      ...childAddrs.map((c, i) => ({
        address: c.address,
        amountSat: 60_000n + BigInt(i) * 1000n,
      })),
    ];
    const txid = await net.sendMany(payTo);
    await net.mine(1);
    const height = await net.blockHeightOfTx(txid);
    assert(height && height > firstHeight, `deposit tx confirmed at ${height}`);
    const outpoints = payTo.map((_, vout) => `${txid}:${vout}`); // output i pays payTo[i]
    const scripts = [legacyPk, ...childAddrs.map((c) => c.pkScript)];
    const synced = await cli("--json", "deposits", "sync");
    assertEquals(synced.code, 0, synced.stderr);

    await t.step(
      "database and token lost, lnd intact: same pkScript, byte-identical token, deposits back",
      async () => {
        await lose();
        const r = await cli("--json", "recover", "--gap", "20");
        assertEquals(r.code, 0, r.stderr);
        assertEquals([r.json?.restored_l402, r.json?.restored_static_address], [true, true]);
        assertEquals(r.json?.static_address, address);
        assertEquals(r.json?.backup_file, backupPath);
        assertEquals(await Deno.readFile(`${dataDir}/l402.token`), token);
        const scanned = r.json?.scanned as Scanned[];
        assertEquals(
          scanned.map((s) => [s.branch, s.key_family, s.last_index, s.hits.map((h) => h.index)]),
          [
            ["receive", 42061, 42, [0, 3, 22]],
            ["change", 42062, 21, [1]],
          ],
        );
        assertEquals(r.json?.num_deposits_found, 5);
        assertEquals(r.json?.deposit_sync_error, null);
        const shownAgain = await cli("--json", "address", "show");
        assertEquals(shownAgain.json?.pk_script, hex.encode(legacyPk));
        const list = await cli("--json", "deposits", "list");
        const deposits = list.json?.deposits as Json[];
        assertEquals(deposits.map((d) => d.outpoint).sort(), [...outpoints].sort());
        assert(deposits.every((d) => d.confirmation_height === String(height)), list.stdout);

        const before = await treeHash(loopdir);
        const again = await cli("--json", "recover");
        assertEquals(again.code, 0, again.stderr);
        assertEquals([again.json?.restored_l402, again.json?.restored_static_address], [false, false]);
        assertEquals(await treeHash(loopdir), before);
      },
    );

    await t.step("--gap 2 stops before receive child 22 and says where", async () => {
      await lose();
      const r = await cli("--json", "recover", "--gap", "2");
      assertEquals(r.code, 0, r.stderr);
      const scanned = r.json?.scanned as Scanned[];
      assertEquals(scanned.map((s) => [s.last_index, s.hits.map((h) => h.index)]), [[2, [0]], [3, [1]]]);
      const text = await cli("recover", "--gap", "2");
      assertStringIncludes(text.stdout, "scanned indexes 0..2, found 0; stopped after index 2");
      const full = await cli("--json", "recover", "--gap", "20");
      assertEquals(full.code, 0, full.stderr);
      assertEquals(full.json?.restored_static_address, true);
    });

    await t.step(
      "conflicts: a different l402.token or a pending token is refused, nothing changes",
      async () => {
        await Deno.writeFile(`${dataDir}/l402.token`, makeTokenFile().bytes, { mode: 0o600 });
        let before = await treeHash(loopdir);
        const diff = await cli("recover");
        assertEquals(diff.code, 1, diff.stderr);
        assertStringIncludes(diff.stderr, "already exists with different contents");
        assertEquals(await treeHash(loopdir), before);
        await Deno.remove(`${dataDir}/l402.token`);
        await Deno.writeFile(`${dataDir}/l402.token.pending`, makeTokenFile({ paid: false }).bytes, {
          mode: 0o600,
        });
        before = await treeHash(loopdir);
        const pending = await cli("recover");
        assertEquals(pending.code, 1, pending.stderr);
        assertStringIncludes(pending.stderr, "l402.token.pending");
        assertEquals(await treeHash(loopdir), before);
        await Deno.remove(`${dataDir}/l402.token.pending`);
      },
    );

    await t.step("--dry-run prints the plan and writes nothing", async () => {
      await lose();
      const before = await treeHash(loopdir);
      const r = await cli("--json", "recover", "--dry-run");
      assertEquals(r.code, 0, r.stderr);
      assertEquals([r.json?.dry_run, r.json?.restored_l402, r.json?.restored_static_address], [
        true,
        true,
        true,
      ]);
      assertEquals(r.json?.num_deposits_found, 5);
      assertEquals(await treeHash(loopdir), before);
    });

    await t.step("a failing tapscript import after the token write rolls the token back", async () => {
      const baked = await unary<{ macaroon: string }>(alice.rpc.lightning, "BakeMacaroon", {
        permissions: [
          { entity: "info", action: "read" },
          { entity: "address", action: "read" },
          { entity: "onchain", action: "read" },
          { entity: "signer", action: "generate" },
        ],
      });
      const macPath = `${safe}/no-onchain-write.macaroon`;
      await Deno.writeFile(macPath, hex.decode(baked.macaroon));
      const before = await treeHash(loopdir);
      const r = await cliAs(alice, loopdir, "--macaroonpath", macPath, "recover");
      assertEquals(r.code, 1, r.stderr);
      assertStringIncludes(r.stderr, "ImportTapscript");
      assertStringIncludes(r.stderr, `removed "${dataDir}/l402.token"`);
      assertEquals(await treeHash(loopdir), before);
      const ok = await cli("--json", "recover");
      assertEquals(ok.code, 0, ok.stderr);
    });

    await t.step(
      "an lnd of another seed: the backup is undecryptable, exit 3, nothing written",
      async () => {
        const other = await tempDir("loopkit-regtest-other-");
        await Deno.mkdir(`${other}/regtest`);
        const before = await treeHash(other);
        const r = await cliAs(net.bob, other, "recover", "--backup-file", safeBackup);
        assertEquals(r.code, 3, r.stderr);
        assertStringIncludes(r.stderr, "unable to decrypt backup file");
        assertEquals(await treeHash(other), before);
      },
    );

    await t.step(
      "disaster: a new lnd from the same aezeed seed; recover, then recover deposit each",
      async () => {
        await alice.stop();
        const alice2 = await net.startNode("alice-rebuilt", { seed: alice.seed, recoveryWindow: 50 });
        await Deno.remove(dataDir, { recursive: true });
        const cli2 = (...args: string[]) => cliAs(alice2, loopdir, ...args);

        const r = await cli2("--json", "recover", "--backup-file", safeBackup);
        assertEquals(r.code, 0, r.stderr);
        assertEquals([r.json?.restored_l402, r.json?.restored_static_address], [true, true]);
        assertEquals(r.json?.static_address, address);
        assertEquals(r.json?.num_deposits_found, 0);
        const warnings = r.json?.warnings as string[];
        assert(
          warnings.some((w) => w.includes("does not rescan") && w.includes(`--height-hint ${firstHeight}`)),
          warnings.join("\n"),
        );
        assertEquals(await Deno.readFile(`${dataDir}/l402.token`), token);

        // Refusals, each writing nothing.
        const before = await treeHash(loopdir);
        const notOurs = "5120" + "42".repeat(32);
        const refusals: [string[], number, string][] = [
          [["--outpoint", outpoints[0], "--height-hint", "0"], 2, "--height-hint must be positive"],
          [
            [
              "--outpoint",
              outpoints[0],
              "--height-hint",
              String(firstHeight),
              "--pkscript",
              "0014" + "11".repeat(20),
            ],
            2,
            "P2TR",
          ],
          [
            ["--outpoint", outpoints[0], "--height-hint", String(firstHeight), "--pkscript", notOurs],
            1,
            "no static address child matched",
          ],
          [
            [
              "--outpoint",
              outpoints[1],
              "--height-hint",
              String(firstHeight),
              "--pkscript",
              hex.encode(legacyPk),
            ],
            1,
            "confirmed output pkScript mismatch",
          ],
        ];
        for (const [args, code, want] of refusals) {
          const x = await cli2("recover", "deposit", ...args);
          assertEquals(x.code, code, `${args.join(" ")}: ${x.stderr}`);
          assertStringIncludes(x.stderr, want);
        }
        assertEquals(await treeHash(loopdir), before);

        for (let i = 0; i < outpoints.length; i++) {
          const x = await cli2(
            "--json",
            "recover",
            "deposit",
            "--outpoint",
            outpoints[i],
            "--height-hint",
            String(firstHeight),
            "--pkscript",
            hex.encode(scripts[i]),
            "--scan-limit",
            "30",
            "--spend-timeout", // unspent: lnd sends no spend event, the wait runs out
            "1",
          );
          assertEquals(x.code, 0, `${outpoints[i]}: ${x.stderr}`);
          assertEquals(x.json?.confirmation_height, String(height));
          assertEquals(x.json?.recovered_deposit, true);
          assertEquals(x.json?.wallet_visible, false);
          assertEquals(x.json?.value_sat, String(payTo[i].amountSat));
          if (i > 0) {
            assertEquals([x.json?.client_key_family, x.json?.client_key_index], children[i - 1]);
          }
        }
        const list = await cli2("--json", "deposits", "list");
        const deposits = list.json?.deposits as Json[];
        assertEquals(deposits.map((d) => d.outpoint).sort(), [...outpoints].sort());
        assert(deposits.every((d) => d.confirmation_height === String(height)), list.stdout);
        const again = await cli2(
          "--json",
          "recover",
          "deposit",
          "--outpoint",
          outpoints[0],
          "--height-hint",
          String(firstHeight),
          "--spend-timeout",
          "1",
        );
        assertEquals(again.code, 0, again.stderr);
        assertEquals(again.json?.recovered_deposit, false);
      },
    );
  },
);

regtestTest(
  "regtest: recover deposit refuses an output already spent on chain (the expiry sweep), nothing written",
  { expiry: 12 },
  async ({ net, loopdir, cli, newAddress, tempDir }) => {
    const csv = 12;
    const dataDir = `${loopdir}/regtest`;
    const created = await newAddress();
    assertEquals(created.code, 0, created.stderr);
    const address = created.json?.address as string;
    const pkScript = created.json?.pk_script as string;
    const firstHeight = Number((await cli("--json", "address", "show")).json?.initiation_height);
    const safe = await tempDir("loopkit-regtest-safe-");
    const backupPath = (created.json?.backup as Json)?.path as string;
    const safeBackup = `${safe}/${backupPath.split("/").pop()}`;
    await Deno.copyFile(backupPath, safeBackup);
    const sync = async () => {
      const r = await cli("--json", "deposits", "sync");
      assertEquals(r.code, 0, r.stdout + r.stderr);
      return r.json as { sweeps: Json[] };
    };

    // A deposit, swept back to the wallet through the timeout path once its CSV expiry passes.
    const txid = await net.sendToAddress(address, 200_000n);
    await net.mine(1);
    const confHeight = (await net.blockHeightOfTx(txid))!;
    await sync();
    await net.mine(confHeight + csv - (await net.bestHeight()));
    const sweep = (await sync()).sweeps.find((s) => (s.outpoint as string).startsWith(txid));
    assert(sweep, "no expiry sweep published");
    await net.mine(1);
    const sweepHeight = await net.blockHeightOfTx(sweep.txid as string);
    assert(sweepHeight, "the sweep did not confirm");

    // The database is lost; the address comes back from the backup, then the spent output is refused.
    await Deno.remove(`${dataDir}/loopkit.db`);
    await Deno.remove(`${dataDir}/l402.token`);
    const restored = await cli("--json", "recover", "--backup-file", safeBackup);
    assertEquals(restored.code, 0, restored.stderr);
    const before = await treeHash(loopdir);
    const r = await cli(
      "recover",
      "deposit",
      "--outpoint",
      sweep.outpoint as string,
      "--height-hint",
      String(firstHeight),
      "--pkscript",
      pkScript,
    );
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stderr, `already spent by transaction ${sweep.txid} at height ${sweepHeight}`);
    assertEquals(await treeHash(loopdir), before);
    assertEquals((await cli("--json", "deposits", "list")).json?.deposits, []);
  },
);
