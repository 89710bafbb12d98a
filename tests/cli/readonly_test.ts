/**
 * A read-only data directory (a tmpfs remounted read-only: root ignores mode bits) gives every command the
 * same error: `data_dir_unwritable`, exit 2, naming the directory. Ignored where `mount` is not allowed.
 */
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { startFakeLnd } from "../fakelnd/server.ts";
import { lndFlags, makeTokenFile, runCli } from "./_harness.ts";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sealBackup, SHARED_KEY_NUMS_PUBKEY } from "../../core/backup/envelope.ts";
import { encodeBackupPayload } from "../../core/backup/payload.ts";
import { backupFileName } from "../../core/backup/file_name.ts";
import type { BackupPayload } from "../../core/backup/types.ts";

async function mount(args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command("mount", { args, stdout: "null", stderr: "null" }).output()).success;
  } catch {
    return false;
  }
}

/** A valid backup for the fake lnd's seed (client key 42060/0), in `dir`. */
async function validBackup(lnd: Awaited<ReturnType<typeof startFakeLnd>>, dir: string): Promise<string> {
  const token = makeTokenFile();
  const payload: BackupPayload = {
    version: 1,
    network: "regtest",
    l402TokenId: token.tokenIdHex,
    l402TokenCreatedAtNs: token.createdAtNs,
    staticAddress: {
      protocolVersion: 0,
      clientPubkey: lnd.keyRing.publicKey(42060, 0),
      serverPubkey: secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true),
      expiry: 144,
      legacyClientKeyFamily: 42060,
      mainKeyFamily: 42061,
      changeKeyFamily: 42062,
      legacyFirstHeight: 100,
      multiAddressFirstHeight: 100,
    },
    tokenFiles: [{ name: "l402.token", data: token.bytes }],
  };
  const path = `${dir}/${backupFileName(token.createdAtNs, token.tokenIdHex)}`;
  const key = lnd.keyRing.sharedKey(SHARED_KEY_NUMS_PUBKEY, 42060, 0);
  await Deno.writeFile(path, sealBackup(key, encodeBackupPayload(payload)));
  return path;
}

const probe = await Deno.makeTempDir({ prefix: "loopkit-ro-probe-" });
const canMount = await mount(["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", probe]);
if (canMount) await new Deno.Command("umount", { args: [probe] }).output();
await Deno.remove(probe);

Deno.test({
  name:
    "a read-only data directory: address new and recover exit 2 data_dir_unwritable; backup write and deposits sync without a database are no-ops",
  ignore: !canMount,
  async fn() {
    const lnd = await startFakeLnd({ network: "regtest" });
    const loopdir = await Deno.makeTempDir({ prefix: "loopkit-ro-" });
    const safe = await Deno.makeTempDir({ prefix: "loopkit-ro-safe-" });
    assert(await mount(["-t", "tmpfs", "-o", "rw,size=4m", "tmpfs", loopdir]));
    try {
      const dataDir = `${loopdir}/regtest`;
      await Deno.mkdir(dataDir, { mode: 0o700 });
      await Deno.writeFile(`${dataDir}/l402.token`, makeTokenFile().bytes, { mode: 0o600 });
      await Deno.writeFile(
        `${dataDir}/L402_backup_1776159001000000123_${"ab".repeat(32)}.enc`,
        new Uint8Array(10),
      );
      assert(await mount(["-o", "remount,ro", loopdir]));
      const flags = lndFlags(lnd, loopdir);
      const swap = ["--swapserver", "127.0.0.1:1", "--no-swapserver-tls"];
      // With no database there is no address: `backup write` and `deposits sync` are documented no-ops that
      // write nothing (README), read-only directory or not.
      for (const args of [["backup", "write"], ["deposits", "sync"]]) {
        const noop = await runCli([...flags, "--json", ...args]);
        assertEquals(noop.code, 0, `${args.join(" ")}: ${noop.stderr}`);
        assertEquals(JSON.parse(noop.stdout).reason, "no_static_address", args.join(" "));
      }
      for (const args of [["address", "new", ...swap]]) {
        const r = await runCli([...flags, "--json", ...args]);
        if (!r.stderr.trim()) throw new Error(`${args.join(" ")}: exit ${r.code}, stdout ${r.stdout}`);
        const err = JSON.parse(r.stderr.trim().split("\n").at(-1)!).error;
        assertEquals([r.code, err.code], [2, "data_dir_unwritable"], `${args.join(" ")}: ${r.stderr}`);
        assertStringIncludes(err.message, `Cannot write the data directory "${dataDir}"`);
      }
      // recover of a valid backup (kept elsewhere) into a data directory it cannot create.
      const backup = await validBackup(lnd, safe);
      const rec = await runCli([
        ...lndFlags(lnd, `${loopdir}/other`),
        "--json",
        "recover",
        "--backup-file",
        backup,
      ]);
      assertEquals(rec.code, 2, rec.stderr);
      assertStringIncludes(rec.stderr, '"data_dir_unwritable"');
      assertStringIncludes(rec.stderr, "nothing was written, database unchanged");

      // A data directory that does not exist yet under a read-only parent: the same error.
      const sub = await runCli([...lndFlags(lnd, `${loopdir}/sub`), "--json", "address", "new", ...swap]);
      assertEquals(sub.code, 2, sub.stderr);
      assertStringIncludes(sub.stderr, '"data_dir_unwritable"');
    } finally {
      await new Deno.Command("umount", { args: [loopdir] }).output();
      await Deno.remove(loopdir, { recursive: true });
      await Deno.remove(safe, { recursive: true });
      await lnd.stop();
    }
  },
});
