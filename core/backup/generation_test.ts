import { join } from "node:path";
import { hexToBytes } from "@noble/hashes/utils.js";
import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { withTempDir } from "../../tests/fs.ts";
import { LoopkitError } from "../errors.ts";
import { PAID_TOKEN_FILE_NAME } from "../l402/token_file.ts";
import { type GenerationBackupLnd, writeBackupAfterAddress, writeGenerationBackup } from "./generation.ts";
import { tokenFileBytes, vector, vectorAddress, vectorLnd } from "./_testing.ts";

/** The vector's lnd plus DeriveKey (returning `clientKey`) and GetInfo, counting how often it was opened. */
function lndWith(clientKey: Uint8Array) {
  const shared = vectorLnd();
  const lnd = {
    deriveSharedKey: shared.deriveSharedKey.bind(shared),
    deriveKey: () => Promise.resolve({ rawKeyBytes: clientKey, keyLoc: { family: 42060, index: 7 } }),
    getInfo: () => Promise.resolve({ blockHeight: 654 }),
  } as unknown as GenerationBackupLnd;
  const counter = { opened: 0 };
  return { counter, open: () => (counter.opened++, Promise.resolve(lnd)) };
}

async function backupNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.startsWith("L402_backup_")) out.push(e.name);
  return out;
}

Deno.test("writeGenerationBackup() without a token is a no-op that never opens lnd or reads the address", async () => {
  await withTempDir(async (dir) => {
    const { counter, open } = lndWith(hexToBytes(vector.client_pubkey));
    let asked = 0;
    const r = await writeGenerationBackup({
      dataDir: dir,
      network: "testnet",
      lnd: open,
      staticAddress: () => (asked++, Promise.resolve(vectorAddress())),
    });
    assertEquals(r.written, false);
    assertEquals(r.reason, "no_token");
    assertEquals(counter.opened, 0);
    assertEquals(asked, 0);
  });
});

Deno.test("writeGenerationBackup() writes the generation's backup once lnd proves it holds the client key; lnd opened once", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, 1776159001000000123n));
    const { counter, open } = lndWith(hexToBytes(vector.client_pubkey));
    const r = await writeGenerationBackup({
      dataDir: dir,
      network: "testnet",
      lnd: open,
      staticAddress: () => Promise.resolve(vectorAddress()),
    });
    assertEquals(r.written, true);
    assertEquals((await backupNames(dir)).length, 1);
    assertEquals(counter.opened, 1);
  });
});

Deno.test("another lnd (wrong client key): writeGenerationBackup() throws wrong_lnd (exit 2); writeBackupAfterAddress() returns it; nothing written", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, PAID_TOKEN_FILE_NAME), tokenFileBytes(1, 1776159001000000123n));
    const other = hexToBytes(vector.server_pubkey); // a valid key, but not the address's client key
    const deps = {
      dataDir: dir,
      network: "testnet",
      lnd: lndWith(other).open,
      staticAddress: () => Promise.resolve(vectorAddress()),
    };
    const e = await assertRejects(() => writeGenerationBackup(deps), LoopkitError);
    assertEquals(e.code, "wrong_lnd");
    assertEquals(e.exitCode, 2);
    const after = await writeBackupAfterAddress(deps);
    assert(!after.ok);
    assert(after.error.includes("does not hold the static address's client key"), after.error);
    assertEquals(await backupNames(dir), []);
  });
});
