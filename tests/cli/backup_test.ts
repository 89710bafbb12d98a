/**
 * `loopkit backup write` / `backup verify` as subprocesses against a fake lnd gRPC server on 127.0.0.1
 * (TLS + macaroon, lnd's own protos, lnd's DeriveSharedKey formula) and a real libSQL file.
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { startFakeLnd } from "../fakelnd/server.ts";
import { openDb } from "../../core/db/db.ts";
import { insertStaticAddress } from "../../core/db/static_addresses.ts";
import { staticAddress } from "../../core/staticaddr/script.ts";
import { lndFlags, makeTokenFile, runCli } from "./_harness.ts";
import { treeHash } from "../fs.ts";
import { sealBackup, SHARED_KEY_NUMS_PUBKEY } from "../../core/backup/envelope.ts";
import { encodeBackupPayload } from "../../core/backup/payload.ts";
import { backupFileName } from "../../core/backup/file_name.ts";
import type { BackupPayload, StaticAddressBackup } from "../../core/backup/types.ts";

async function setup(opts: { network?: string; withAddress?: boolean; foreignClientKey?: boolean } = {}) {
  const lnd = await startFakeLnd({ network: opts.network ?? "regtest", blockHeight: 321 });
  const loopdir = await Deno.makeTempDir({ prefix: "loopkit-cli-" });
  const dataDir = `${loopdir}/regtest`;
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const flags = lndFlags(lnd, loopdir);
  if (opts.withAddress !== false) {
    const clientPubkey = opts.foreignClientKey
      ? secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true)
      : lnd.keyRing.publicKey(42060, 0);
    const serverPubkey = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
    const a = staticAddress({ clientPubkey, serverPubkey, csvExpiry: 14400, network: "regtest" });
    const db = await openDb({ url: `file:${dataDir}/loopkit.db`, network: "regtest" });
    await db.write((tx) =>
      insertStaticAddress(tx, {
        clientPubkey,
        serverPubkey,
        expiry: 14400,
        clientKeyFamily: 42060,
        clientKeyIndex: 0,
        pkScript: a.pkScript,
        protocolVersion: 0,
        initiationHeight: 300,
      })
    );
    db.close();
  }
  return {
    lnd,
    loopdir,
    dataDir,
    flags,
    cli: (...args: string[]) => runCli([...flags, ...args]),
    async [Symbol.asyncDispose]() {
      await lnd.stop();
      await Deno.remove(loopdir, { recursive: true });
    },
  };
}

async function backupFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.startsWith("L402_backup_")) names.push(e.name);
  return names.sort();
}

Deno.test("backup write writes one private file, a second run is a no-op, and verify passes", async () => {
  await using t = await setup();
  const token = makeTokenFile();
  await Deno.writeFile(`${t.dataDir}/l402.token`, token.bytes, { mode: 0o600 });

  const first = await t.cli("--json", "backup", "write");
  assertEquals(first.code, 0, first.stderr);
  assertEquals(first.json?.written, true);
  assertEquals(first.json?.token_id, token.tokenIdHex);
  assertEquals(first.json?.token_created_at, token.createdAtNs.toString());
  const expectedName = `L402_backup_${
    token.createdAtNs.toString().padStart(19, "0")
  }_${token.tokenIdHex}.enc`;
  assertEquals(first.json?.path, `${t.dataDir}/${expectedName}`);
  assertEquals((await Deno.stat(`${t.dataDir}/${expectedName}`)).mode! & 0o777, 0o600);
  assertEquals(t.lnd.calls["Signer.DeriveSharedKey"], 1);

  const before = await treeHash(t.dataDir);
  const second = await t.cli("--json", "backup", "write");
  assertEquals(second.code, 0, second.stderr);
  assertEquals(second.json?.written, false);
  assertEquals(second.json?.reason, "already_backed_up");

  const verify = await t.cli("--json", "backup", "verify");
  assertEquals(verify.code, 0, verify.stderr);
  const files = verify.json?.files as Record<string, unknown>[];
  assertEquals(files.length, 1);
  assertEquals(files[0].status, "ok");
  assertEquals(files[0].selected, true);
  assertEquals(files[0].token_created_at, token.createdAtNs.toString());
  assertEquals(await treeHash(t.dataDir), before);
});

Deno.test("backup write replaces a corrupt file under the expected name and reports it", async () => {
  await using t = await setup();
  const token = makeTokenFile();
  await Deno.writeFile(`${t.dataDir}/l402.token`, token.bytes, { mode: 0o600 });
  const name = `L402_backup_${token.createdAtNs.toString().padStart(19, "0")}_${token.tokenIdHex}.enc`;
  await Deno.writeFile(
    `${t.dataDir}/${name}`,
    new TextEncoder().encode("loopbak1 but garbage after the magic"),
  );
  const r = await t.cli("--json", "backup", "write");
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.json?.written, true);
  const moved = r.json?.replaced_corrupt as string[];
  assertEquals(moved.length, 1);
  assert(moved[0].startsWith(`${t.dataDir}/${name}.corrupt-`), `the path the file went to: ${moved[0]}`);
  assertEquals(
    new TextDecoder().decode(await Deno.readFile(moved[0])),
    "loopbak1 but garbage after the magic",
  );
  assertEquals((await t.cli("backup", "verify")).code, 0);
});

Deno.test("backup verify reports a directory under a backup name as unreadable (not 'no backup files found'), exit 3", async () => {
  await using t = await setup({ withAddress: false });
  const token = makeTokenFile();
  const name = `L402_backup_${token.createdAtNs.toString().padStart(19, "0")}_${token.tokenIdHex}.enc`;
  await Deno.mkdir(`${t.dataDir}/${name}`);
  const r = await t.cli("--json", "backup", "verify");
  assertEquals(r.code, 3, r.stderr);
  const files = r.json?.files as { path: string; status: string }[];
  assertEquals(files.map((f) => [f.path, f.status]), [[`${t.dataDir}/${name}`, "unreadable"]]);
  const text = await t.cli("backup", "verify");
  assert(!text.stdout.includes("no backup files found"), text.stdout);
  assertStringIncludes(text.stdout, "INVALID unreadable");
});

Deno.test("backup write never backs up a pending-only token, and does nothing without an address", async () => {
  await using t = await setup({ withAddress: false });
  await Deno.writeFile(`${t.dataDir}/l402.token.pending`, makeTokenFile({ paid: false }).bytes);
  const pending = await t.cli("--json", "backup", "write");
  assertEquals(pending.code, 0, pending.stderr);
  assertEquals(pending.json?.reason, "pending_only");
  await Deno.remove(`${t.dataDir}/l402.token.pending`);
  await Deno.writeFile(`${t.dataDir}/l402.token`, makeTokenFile().bytes);
  const noAddr = await t.cli("--json", "backup", "write");
  assertEquals(noAddr.code, 0, noAddr.stderr);
  assertEquals(noAddr.json?.reason, "no_static_address");
  assertEquals(await backupFiles(t.dataDir), []);
});

Deno.test("backup write --copy-to places the identical file in a second directory", async () => {
  await using t = await setup();
  await Deno.writeFile(`${t.dataDir}/l402.token`, makeTokenFile().bytes);
  const copyDir = `${t.loopdir}/offsite`;
  await Deno.mkdir(copyDir);
  const r = await t.cli("--json", "backup", "write", "--copy-to", copyDir);
  assertEquals(r.code, 0, r.stderr);
  const [name] = await backupFiles(t.dataDir);
  assertEquals(await Deno.readFile(`${copyDir}/${name}`), await Deno.readFile(`${t.dataDir}/${name}`));
  assertEquals((await Deno.stat(`${copyDir}/${name}`)).mode! & 0o777, 0o600);
});

Deno.test("backup verify reports an invalid file with exit 3 and changes nothing", async () => {
  await using t = await setup();
  await Deno.writeFile(`${t.dataDir}/l402.token`, makeTokenFile().bytes);
  assertEquals((await t.cli("backup", "write")).code, 0);
  const [name] = await backupFiles(t.dataDir);
  const bytes = await Deno.readFile(`${t.dataDir}/${name}`);
  bytes[bytes.length - 1] ^= 1;
  const bad = name.replace(/_(\d{19})_/, (_m, ts) => `_${(BigInt(ts) - 1n).toString().padStart(19, "0")}_`);
  await Deno.writeFile(`${t.dataDir}/${bad}`, bytes);
  const before = await treeHash(t.loopdir);
  const r = await t.cli("--json", "backup", "verify");
  assertEquals(r.code, 3);
  const files = r.json?.files as Record<string, unknown>[];
  assertEquals(files.map((f) => f.status).sort(), ["ok", "undecryptable"]);
  assertEquals(files.find((f) => f.status === "ok")?.selected, true);
  assertEquals(await treeHash(t.loopdir), before);
});

Deno.test("backup verify of an empty directory exits 3 (no backup is a failure)", async () => {
  await using t = await setup();
  const r = await t.cli("backup", "verify");
  assertEquals(r.code, 3);
  assertStringIncludes(r.stdout, "no backup files");
});

Deno.test("an lnd of another network is refused with exit 2 and nothing is written", async () => {
  await using t = await setup({ network: "testnet" });
  await Deno.writeFile(`${t.dataDir}/l402.token`, makeTokenFile().bytes);
  const before = await treeHash(t.dataDir);
  const r = await t.cli("--json", "backup", "write");
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "network_mismatch");
  assertEquals(await treeHash(t.dataDir), before);
});

Deno.test("an unreachable lnd exits 75 and a missing macaroon exits 2, nothing written", async () => {
  await using t = await setup();
  await Deno.writeFile(`${t.dataDir}/l402.token`, makeTokenFile().bytes);
  const before = await treeHash(t.dataDir);
  const port = (() => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const p = (l.addr as Deno.NetAddr).port;
    l.close();
    return p;
  })();
  const down = await runCli([...t.flags, "--rpcserver", `127.0.0.1:${port}`, "backup", "write"]);
  assertEquals(down.code, 75, down.stderr);
  assertStringIncludes(down.stderr, "--rpcserver");
  const noMac = await runCli([
    ...t.flags,
    "--macaroonpath",
    `${t.loopdir}/missing.macaroon`,
    "backup",
    "write",
  ]);
  assertEquals(noMac.code, 2, noMac.stderr);
  assertStringIncludes(noMac.stderr, "--macaroonpath");
  assertEquals(await treeHash(t.dataDir), before);
});

Deno.test("an unwritable data directory fails with a message naming it and leaves no file", async () => {
  await using t = await setup();
  await Deno.writeFile(`${t.dataDir}/l402.token`, makeTokenFile().bytes);
  // Root ignores mode bits, so make the backup's target path impossible instead: a directory occupies it.
  const r0 = await t.cli("--json", "backup", "write");
  const path = r0.json?.path as string;
  await Deno.remove(path);
  await Deno.mkdir(path);
  const r = await t.cli("backup", "write");
  assertEquals(r.code, 1, r.stderr); // an operational write failure; a permission problem is exit 2 (unit test)
  assertStringIncludes(r.stderr, t.dataDir);
  assertEquals((await Deno.stat(path)).isDirectory, true);
  for await (const e of Deno.readDir(t.dataDir)) assert(!e.name.endsWith(".tmp"), `stray temp ${e.name}`);
});

Deno.test("backup write refuses an lnd that does not hold the address's client key (exit 2), writing nothing", async () => {
  await using t = await setup({ foreignClientKey: true });
  await Deno.writeFile(`${t.dataDir}/l402.token`, makeTokenFile().bytes);
  const before = await treeHash(t.dataDir);
  const r = await t.cli("--json", "backup", "write");
  assertEquals(r.code, 2, r.stderr);
  assertStringIncludes(r.stderr, "wrong_lnd");
  assertEquals(await treeHash(t.dataDir), before);
});

/** Seals a backup the way Loop writes one, for the fake lnd's seed, with these static-address fields. */
async function craftBackup(
  lnd: Awaited<ReturnType<typeof startFakeLnd>>,
  dir: string,
  address: Partial<StaticAddressBackup>,
  createdAtNs: bigint,
): Promise<string> {
  const token = makeTokenFile({ createdAtNs });
  const key = lnd.keyRing.sharedKey(SHARED_KEY_NUMS_PUBKEY, 42060, 0);
  const payload: BackupPayload = {
    version: 1,
    network: "regtest",
    l402TokenId: token.tokenIdHex,
    l402TokenCreatedAtNs: createdAtNs,
    staticAddress: {
      protocolVersion: 0,
      clientPubkey: lnd.keyRing.publicKey(42060, 2),
      serverPubkey: secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true),
      expiry: 14400,
      legacyClientKeyFamily: 42060,
      mainKeyFamily: 42061,
      changeKeyFamily: 42062,
      legacyFirstHeight: 300,
      multiAddressFirstHeight: 321,
      ...address,
    },
    tokenFiles: [{ name: "l402.token", data: token.bytes }],
  };
  const path = `${dir}/${backupFileName(createdAtNs, token.tokenIdHex)}`;
  await Deno.writeFile(path, sealBackup(key, encodeBackupPayload(payload)), { mode: 0o600 });
  return path;
}

Deno.test("backup verify runs recover's restore-time checks: each unrestorable file is not_restorable naming the check, exit 3, and recover refuses it too", async () => {
  await using t = await setup({ withAddress: false });
  const dir = `${t.loopdir}/crafted`;
  await Deno.mkdir(dir);
  const notOnCurve = new Uint8Array(33).fill(0xff);
  notOnCurve[0] = 2;
  const cases: [Partial<StaticAddressBackup>, string][] = [
    [{ protocolVersion: 1 }, "protocol_version"],
    [{ serverPubkey: notOnCurve }, "server_pubkey"],
    [{ clientPubkey: undefined }, "client_pubkey_present"],
    [{ legacyClientKeyFamily: 0 }, "legacy_client_key_family"],
    [{ legacyClientKeyFamily: 42061 }, "client_key_in_lnd"], // the key is lnd's 42060/2, not in 42061
    [{ clientPubkey: t.lnd.keyRing.publicKey(42060, 1500) }, "client_key_in_lnd"], // past the scan range
  ];
  const paths: Record<string, string> = {};
  let ns = 1776159001000000000n;
  for (const [fields, check] of cases) paths[await craftBackup(t.lnd, dir, fields, ns++)] = check;
  const good = await craftBackup(t.lnd, dir, {}, ns++);

  const before = await treeHash(t.loopdir);
  const r = await t.cli("--json", "backup", "verify", dir);
  assertEquals(r.code, 3, r.stderr);
  type FileJson = { path: string; status: string; restorable: boolean; failed_check: string | null };
  const files = r.json?.files as FileJson[];
  for (const f of files) {
    if (f.path === good) {
      assertEquals([f.status, f.restorable, f.failed_check], ["ok", true, null]);
      continue;
    }
    assertEquals([f.status, f.restorable, f.failed_check], ["not_restorable", false, paths[f.path]], f.path);
  }
  assertEquals(files.length, cases.length + 1);
  const okFile = files.find((f) => f.path === good) as unknown as Record<string, unknown>;
  assertEquals([okFile.client_key_family, okFile.client_key_index], [42060, 2]);
  assertEquals(await treeHash(t.loopdir), before, "verify writes nothing");

  // With the scan range widened, the key at 1500 is found.
  const wide = await t.cli("--json", "backup", "verify", "--key-scan-limit", "1600", dir);
  const farFile = (wide.json?.files as FileJson[]).filter((f) => f.status === "ok");
  assertEquals(farFile.length, 2, "the good file and the one at index 1500");

  // recover refuses every file verify calls not restorable (exit 3).
  for (const [path] of Object.entries(paths).slice(0, 2)) {
    const rec = await t.cli("--json", "recover", "--dry-run", "--backup-file", path);
    assertEquals(rec.code, 3, rec.stderr);
  }
});
