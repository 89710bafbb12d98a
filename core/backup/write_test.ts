import { join } from "node:path";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { assert, assertEquals, assertNotEquals, assertRejects } from "../../tests/assert.ts";
import { withTempDir } from "../../tests/fs.ts";
import { LoopkitError } from "../errors.ts";
import { PAID_TOKEN_FILE_NAME, PENDING_TOKEN_FILE_NAME } from "../l402/token_file.ts";
import { openBackup, sealBackup } from "./envelope.ts";
import { backupFileName } from "./file_name.ts";
import { denoBackupFs } from "../fs/fs.ts";
import { inspectBackupDir } from "./inspect.ts";
import { decodeBackupPayload, encodeBackupPayload } from "./payload.ts";
import type { BackupAddressParams } from "./types.ts";
import { CORRUPT_SUFFIX, writeBackup, type WriteBackupDeps } from "./write.ts";
import {
  FakeLnd,
  lndSharedKey,
  payloadFor,
  seeded,
  seededTokenId,
  tokenFileBytes,
  treeHash,
  vector,
  vectorAddress,
  vectorLnd,
} from "./_testing.ts";
import { SHARED_KEY_NUMS_PUBKEY } from "./envelope.ts";

const T123 = 1776159001000000123n;
const vectorKey = hexToBytes(vector.backup_key);

function deps(dir: string, lnd: FakeLnd, over: Partial<WriteBackupDeps> = {}): WriteBackupDeps {
  return {
    dataDir: dir,
    network: "testnet",
    lnd,
    staticAddress: () => Promise.resolve(vectorAddress()),
    currentHeight: () => Promise.resolve(654),
    ...over,
  };
}

async function backupNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.startsWith("L402_backup_")) out.push(e.name);
  return out.sort();
}

Deno.test("writeBackup() end to end reproduces the vector file byte for byte (fixed nonce)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), hexToBytes(vector.l402_token_file));
    const lnd = vectorLnd();
    const r = await writeBackup(deps(dir, lnd, { randomNonce: () => hexToBytes(vector.nonce) }));
    assertEquals(r.written, true);
    assertEquals(r.path, join(dir, vector.file_name));
    assertEquals(bytesToHex(await Deno.readFile(r.path!)), vector.file);
    assertEquals(lnd.calls.length, 1);
  });
});

Deno.test("writeBackup() full generation: name, payload, families, heights, raw token bytes, mode 0600 (case 6)", async () => {
  await withTempDir(async (dir) => {
    const token = tokenFileBytes(1, T123);
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), token);
    const lnd = vectorLnd();
    const r = await writeBackup(deps(dir, lnd));
    assertEquals(r.written, true);
    assertEquals(r.reason, undefined);
    assertEquals(r.tokenId, seededTokenId(1));
    assertEquals(r.createdAtNs, T123);
    assertEquals(r.path, join(dir, `L402_backup_1776159001000000123_${seededTokenId(1)}.enc`));
    assertEquals(r.corrupt, []);
    assertEquals((await Deno.stat(r.path!)).mode! & 0o777, 0o600);

    // Decrypt with the key computed from lnd's private key, independently of the code under test.
    const key = lndSharedKey(hexToBytes(vector.lnd_private_key_at_42060_0), SHARED_KEY_NUMS_PUBKEY);
    const p = decodeBackupPayload(openBackup(key, await Deno.readFile(r.path!)));
    assertEquals(p.version, 1);
    assertEquals(p.network, "testnet");
    assertEquals(p.l402TokenId, seededTokenId(1));
    assertEquals(p.l402TokenCreatedAtNs, T123);
    const a = p.staticAddress!;
    assertEquals(a.clientPubkey, hexToBytes(vector.client_pubkey));
    assertEquals(a.serverPubkey, hexToBytes(vector.server_pubkey));
    assertEquals(a.expiry, 144);
    assertEquals(a.protocolVersion, 0);
    assertEquals([a.legacyClientKeyFamily, a.mainKeyFamily, a.changeKeyFamily], [42060, 42061, 42062]);
    assertEquals(new Set([a.legacyClientKeyFamily, a.mainKeyFamily, a.changeKeyFamily]).size, 3);
    assertEquals(a.legacyFirstHeight, 321);
    assertEquals(a.multiAddressFirstHeight, 654);
    assertEquals(p.tokenFiles, [{ name: "l402.token", data: token }]);
    // exactly one DeriveSharedKey call, with NUMS and (42060, 0)
    assertEquals(lnd.calls, [{
      ephemeralPubkey: hexToBytes(vector.nums_pubkey),
      keyLoc: { family: 42060, index: 0 },
    }]);
  });
});

Deno.test("writeBackup() copies the token bytes verbatim, trailing bytes included", async () => {
  await withTempDir(async (dir) => {
    const token = Uint8Array.from([...tokenFileBytes(2, T123), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), token);
    const r = await writeBackup(deps(dir, vectorLnd()));
    const p = decodeBackupPayload(openBackup(vectorKey, await Deno.readFile(r.path!)));
    assertEquals(p.tokenFiles[0].data, token);
  });
});

Deno.test("writeBackup() a second time is a no-op: one backup, unchanged bytes, one lnd call each (case 9)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123));
    const first = await writeBackup(deps(dir, vectorLnd()));
    const before = await treeHash(dir);
    const lnd = vectorLnd();
    const second = await writeBackup(deps(dir, lnd));
    assertEquals(second.written, false);
    assertEquals(second.reason, "already_backed_up");
    assertEquals(second.path, first.path);
    assertEquals(second.tokenId, seededTokenId(1));
    assertEquals(second.createdAtNs, T123);
    assertEquals(lnd.calls.length, 1);
    assertEquals(await treeHash(dir), before);
    assertEquals((await backupNames(dir)).length, 1);
  });
});

Deno.test("writeBackup() replaces a corrupt same-name file and reports it (case 10)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123));
    const target = join(dir, backupFileName(T123, seededTokenId(1)));
    await Deno.writeFile(target, new TextEncoder().encode("corrupt placeholder"));
    const r = await writeBackup(deps(dir, vectorLnd()));
    assertEquals(r.written, true);
    // The path the file went to, not the original name (which now holds the new backup).
    assertEquals(r.corrupt.length, 1);
    assert(r.corrupt[0].startsWith(`${target}${CORRUPT_SUFFIX}`), r.corrupt[0]);
    assertEquals(new TextDecoder().decode(await Deno.readFile(r.corrupt[0])), "corrupt placeholder");
    const [inspection] = await inspectBackupDir(dir, vectorKey, "testnet");
    assertEquals(inspection.reason, "ok");
    assertEquals(inspection.tokenId, seededTokenId(1));
    assertEquals(inspection.createdAtNs, T123);
  });
});

Deno.test("writeBackup() replaces a same-name backup sealed with another key, keeping the old file aside", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123));
    const target = join(dir, backupFileName(T123, seededTokenId(1)));
    const foreign = sealBackup(seeded(42), encodeBackupPayload(payloadFor(1, T123)));
    await Deno.writeFile(target, foreign);
    const r = await writeBackup(deps(dir, vectorLnd()));
    assertEquals(r.written, true);
    const aside: string[] = [];
    for await (const e of Deno.readDir(dir)) if (e.name.includes(CORRUPT_SUFFIX)) aside.push(e.name);
    assertEquals(aside.length, 1);
    assertEquals(r.corrupt, [join(dir, aside[0])]);
    assertEquals(await Deno.readFile(join(dir, aside[0])), foreign);
  });
});

Deno.test("writeBackup() under concurrency writes the generation once and every copy holds the same bytes", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123));
    const copyDir = join(dir, "copy");
    await Deno.mkdir(copyDir);
    const results = await Promise.all(
      Array.from({ length: 6 }, () => writeBackup(deps(dir, vectorLnd(), { copyTo: [copyDir] }))),
    );
    assertEquals(results.filter((r) => r.written).length, 1);
    const name = backupFileName(T123, seededTokenId(1));
    assertEquals(await Deno.readFile(join(copyDir, name)), await Deno.readFile(join(dir, name)));
  });
});

Deno.test("writeBackup() is not blocked by valid backups of other tokens or other creation times", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123));
    const other = payloadFor(2, T123);
    await Deno.writeFile(
      join(dir, backupFileName(T123, seededTokenId(2))),
      sealBackup(vectorKey, encodeBackupPayload(other)),
    );
    const older = payloadFor(1, T123 - 1n);
    await Deno.writeFile(
      join(dir, backupFileName(T123 - 1n, seededTokenId(1))),
      sealBackup(vectorKey, encodeBackupPayload(older)),
    );
    const r = await writeBackup(deps(dir, vectorLnd()));
    assertEquals(r.written, true);
    assertEquals((await backupNames(dir)).length, 3);
  });
});

Deno.test("writeBackup() never backs up a pending-only store, with no lnd call (case 5)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PENDING_TOKEN_FILE_NAME), tokenFileBytes(1, T123, false));
    const lnd = vectorLnd();
    const before = await treeHash(dir);
    assertEquals(await writeBackup(deps(dir, lnd)), {
      written: false,
      reason: "pending_only",
      corrupt: [],
      copies: [],
      removedTemp: [],
    });
    assertEquals(await treeHash(dir), before);
    // even a pending file that (oddly) carries a preimage is not backed up, like Loop
    await Deno.writeFile(join(dir, PENDING_TOKEN_FILE_NAME), tokenFileBytes(1, T123, true));
    const after = await treeHash(dir);
    assertEquals((await writeBackup(deps(dir, lnd))).reason, "pending_only");
    assertEquals(await treeHash(dir), after);
    assertEquals(lnd.calls.length, 0);
  });
});

Deno.test("writeBackup() no-ops: no token (case 3), unpaid l402.token, no static address (case 4)", async () => {
  await withTempDir(async (dir) => {
    const lnd = vectorLnd();
    assertEquals((await writeBackup(deps(dir, lnd))).reason, "no_token");
    assertEquals((await writeBackup(deps(join(dir, "missing"), lnd))).reason, "no_token");

    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123, false));
    await Deno.writeFile(join(dir, PENDING_TOKEN_FILE_NAME), tokenFileBytes(1, T123, false));
    const unpaid = await writeBackup(deps(dir, lnd));
    assertEquals(unpaid.reason, "token_unpaid");
    assertEquals(unpaid.tokenId, seededTokenId(1));

    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123, true));
    const noAddr = await writeBackup(deps(dir, lnd, { staticAddress: () => Promise.resolve(null) }));
    assertEquals(noAddr.reason, "no_static_address");
    assertEquals(noAddr.written, false);
    assertEquals(lnd.calls.length, 0);
    assertEquals(await backupNames(dir), []);
  });
});

Deno.test("writeBackup() rejects a current height ≤ 0 before deriving the key", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123));
    const lnd = vectorLnd();
    const e = await assertRejects(
      () => writeBackup(deps(dir, lnd, { currentHeight: () => Promise.resolve(0) })),
      LoopkitError,
      "invalid multi-address first height 0",
    );
    assertEquals(e.code, "backup_height_invalid");
    assertEquals(lnd.calls.length, 0);
    assertEquals(await backupNames(dir), []);
  });
});

Deno.test("writeBackup() refuses an unparsable l402.token and static-address parameters restore would reject", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), new Uint8Array(10));
    const e = await assertRejects(
      () => writeBackup(deps(dir, vectorLnd())),
      LoopkitError,
      "Cannot parse L402 token file",
    );
    assertEquals(e.code, "token_file_invalid");

    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123));
    const bad: [Partial<BackupAddressParams>, string][] = [
      [{ protocolVersion: 1 }, "protocol version 1"],
      [{ clientKeyFamily: 0 }, "client key family 0"],
      [{ clientPubkey: new Uint8Array(2) }, "client pubkey is 2 bytes"],
      [
        { serverPubkey: Uint8Array.from([2, ...new Uint8Array(32).fill(0xff)]) },
        "server pubkey is not a valid",
      ],
    ];
    for (const [over, msg] of bad) {
      const addr = { ...vectorAddress(), ...over };
      await assertRejects(
        () => writeBackup(deps(dir, vectorLnd(), { staticAddress: () => Promise.resolve(addr) })),
        LoopkitError,
        msg,
      );
    }
    assertEquals(await backupNames(dir), []);
  });
});

Deno.test("writeBackup() places identical bytes in copyTo directories, with the same immutability rule", async () => {
  await withTempDir(async (dir) => {
    const c1 = join(dir, "copy1"), c2 = join(dir, "copy2"), data = join(dir, "data");
    await Promise.all([Deno.mkdir(c1), Deno.mkdir(c2), Deno.mkdir(data)]);
    await Deno.writeFile(join(data, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123));
    const name = backupFileName(T123, seededTokenId(1));
    await Deno.writeFile(join(c2, name), new Uint8Array(60)); // corrupt copy
    const lnd = vectorLnd();
    const r = await writeBackup(deps(data, lnd, { copyTo: [c1, c2, join(dir, "missing")] }));
    assertEquals(r.written, true);
    assertEquals(r.copies.map((c) => c.status), ["written", "written", "failed"]);
    assert(r.copies[2].error!.length > 0);
    assertEquals(r.corrupt.length, 1);
    assert(r.corrupt[0].startsWith(`${join(c2, name)}${CORRUPT_SUFFIX}`), r.corrupt[0]);
    const primary = await Deno.readFile(r.path!);
    assertEquals(await Deno.readFile(join(c1, name)), primary);
    assertEquals(await Deno.readFile(join(c2, name)), primary);
    assertEquals((await Deno.stat(join(c1, name))).mode! & 0o777, 0o600);
    assertEquals(lnd.calls.length, 1);

    // Second run: everything already there; a newly added copy dir gets the existing primary bytes.
    const c3 = join(dir, "copy3");
    await Deno.mkdir(c3);
    const again = await writeBackup(deps(data, vectorLnd(), { copyTo: [c1, c3] }));
    assertEquals(again.reason, "already_backed_up");
    assertEquals(again.copies.map((c) => c.status), ["already_backed_up", "written"]);
    assertEquals(await Deno.readFile(join(c3, name)), primary);
  });
});

Deno.test("writeBackup() draws a fresh nonce: two generations' files differ beyond the payload", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123));
    const a = await writeBackup(deps(dir, vectorLnd()));
    const bytesA = await Deno.readFile(a.path!);
    await Deno.remove(a.path!);
    const b = await writeBackup(deps(dir, vectorLnd()));
    assertNotEquals(
      bytesToHex((await Deno.readFile(b.path!)).subarray(8, 32)),
      bytesToHex(bytesA.subarray(8, 32)),
    );
  });
});

Deno.test("writeBackup() surfaces a failed atomic write as backup_write_failed and leaves no partial file", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123));
    const fs = { ...denoBackupFs, rename: () => Promise.reject(new Error("disk on fire")) };
    const e = await assertRejects(
      () => writeBackup(deps(dir, vectorLnd(), { fs })),
      LoopkitError,
      "disk on fire",
    );
    assertEquals(e.code, "backup_write_failed");
    const left: string[] = [];
    for await (const x of Deno.readDir(dir)) left.push(x.name);
    assertEquals(left, [PAID_TOKEN_FILE_NAME]);
  });
});

Deno.test("writeBackup() reports a data directory it may not write as data_dir_unwritable (exit 2)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123));
    const fs = {
      ...denoBackupFs,
      createExclusive: () =>
        Promise.reject(new Deno.errors.PermissionDenied("Permission denied (os error 13)")),
    };
    const e = await assertRejects(() => writeBackup(deps(dir, vectorLnd(), { fs })), LoopkitError, dir);
    assertEquals(e.code, "data_dir_unwritable");
    assertEquals(e.exitCode, 2);
    assertEquals(await backupNames(dir), []);
  });
});

Deno.test("writeBackup() propagates an lnd failure and writes nothing", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123));
    await assertRejects(() => writeBackup(deps(dir, new FakeLnd({}))), Error, "no key at 42060/0");
    assertEquals(await backupNames(dir), []);
  });
});

Deno.test("writeBackup() never calls a valid backup of the same token for another address backed up: primary refused, copy conflict, both kept", async () => {
  await withTempDir(async (dir) => {
    const off = join(dir, "offsite"), data = join(dir, "data");
    await Promise.all([Deno.mkdir(off), Deno.mkdir(data)]);
    await Deno.writeFile(join(data, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, T123));
    // The original address's backup, off-site only.
    const first = await writeBackup(deps(data, vectorLnd(), { copyTo: [off] }));
    assertEquals(first.copies.map((c) => c.status), ["written"]);
    const name = backupFileName(T123, seededTokenId(1));
    const original = await Deno.readFile(join(off, name));
    await Deno.remove(first.path!);
    // A second address under the same token (other server key).
    const other: BackupAddressParams = {
      ...vectorAddress(),
      serverPubkey: secp256k1.getPublicKey(seeded(77), true),
    };
    const r = await writeBackup(
      deps(data, vectorLnd(), { copyTo: [off], staticAddress: () => Promise.resolve(other) }),
    );
    assertEquals(r.written, true, "the data directory had no file of this name");
    assertEquals(r.copies.map((c) => c.status), ["conflict"]);
    assert(
      r.copies[0].error!.includes("another static address") && r.copies[0].error!.includes("server key"),
    );
    assertEquals(await Deno.readFile(join(off, name)), original, "the off-site original is untouched");

    // And in the data directory itself: the original there, the database's address different: refused.
    await Deno.writeFile(r.path!, original);
    const err = await assertRejects(
      () => writeBackup(deps(data, vectorLnd(), { staticAddress: () => Promise.resolve(other) })),
      LoopkitError,
      "another static address",
    );
    assertEquals((err as LoopkitError).code, "backup_conflict");
    assertEquals(await Deno.readFile(r.path!), original);
    assertEquals(await backupNames(data), [name], "nothing moved aside");
  });
});

Deno.test("writeBackup() with only a legacy lsat.token renames it to l402.token (as Loop's store does) and backs it up", async () => {
  await withTempDir(async (dir) => {
    const bytes = tokenFileBytes(1, T123);
    await Deno.writeFile(join(dir, "lsat.token"), bytes, { mode: 0o600 });
    const r = await writeBackup(deps(dir, vectorLnd()));
    assertEquals([r.written, r.migratedLegacyToken, r.tokenId], [true, true, seededTokenId(1)]);
    assertEquals(await Deno.readFile(join(dir, PAID_TOKEN_FILE_NAME)), bytes);
    assertEquals((await Deno.stat(join(dir, PAID_TOKEN_FILE_NAME))).mode! & 0o777, 0o600);
    let lsatLeft = true;
    await Deno.stat(join(dir, "lsat.token")).catch(() => lsatLeft = false);
    assertEquals(lsatLeft, false, "the old name is gone");
    assertEquals(await backupNames(dir), [backupFileName(T123, seededTokenId(1))]);
  });
});

Deno.test("writeBackup() leaves lsat.token alone when an l402.token* exists (never replaces a token)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, "lsat.token"), tokenFileBytes(2, T123));
    await Deno.writeFile(join(dir, PENDING_TOKEN_FILE_NAME), tokenFileBytes(1, T123, false));
    const r = await writeBackup(deps(dir, vectorLnd()));
    assertEquals([r.written, r.reason, r.migratedLegacyToken], [false, "pending_only", undefined]);
    assertEquals(await Deno.readFile(join(dir, "lsat.token")), tokenFileBytes(2, T123));
  });
});
