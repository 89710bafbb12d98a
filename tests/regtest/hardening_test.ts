/**
 * Hardening acceptance on a real regtest network (btcd + lnd alice and bob, the local swap server with bob's
 * invoices): what needs lnd's real behaviour — lnd's `DeriveNextKey` counter past Loop's restore window,
 * a paid token this database did not acquire, `backup verify` proving a backup restorable through lnd, and
 * a pending L402 token whose payment lnd has never seen.
 *
 * Ignored without the regtest binaries unless CI=true (then missing binaries fail).
 */
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { GrpcLndClient } from "../../lnd/grpc_client.ts";
import { regtestTest } from "./suite.ts";
import { hex } from "@scure/base";
import { bytesToHex } from "@noble/hashes/utils.js";
import { unary } from "../../lnd/rpc.ts";
import { makeTokenFile } from "../cli/_harness.ts";
import { deriveBackupKey, openBackup, sealBackup } from "../../core/backup/envelope.ts";
import { decodeBackupPayload, encodeBackupPayload } from "../../core/backup/payload.ts";

regtestTest(
  "regtest: a client key index past 20 (lnd's DeriveNextKey counter advanced) is warned about and recovered",
  { expiry: 144 },
  async ({ net, loopdir, cli, newAddress }) => {
    const dataDir = `${loopdir}/regtest`;
    // Family 42060 is also where every loop-in HTLC key comes from: 22 keys already handed out.
    const alice = new GrpcLndClient(net.alice.rpc);
    for (let i = 0; i < 22; i++) await alice.deriveNextKey(42060);
    const created = await newAddress();
    assertEquals(created.code, 0, created.stderr);
    assertEquals(created.json?.client_key_index, 22);
    const warnings = created.json?.warnings as string[];
    assert(warnings.some((w) => w.includes("42060/22") && w.includes("Loop's own restore")), created.stdout);

    await Deno.remove(`${dataDir}/loopkit.db`);
    await Deno.remove(`${dataDir}/l402.token`);
    const narrow = await cli("--json", "recover", "--key-scan-limit", "20");
    assertEquals(narrow.code, 3, narrow.stderr);
    assertStringIncludes(narrow.stderr, "none of lnd's keys 42060/0..20");

    const r = await cli("--json", "recover");
    assertEquals(r.code, 0, r.stderr);
    assertEquals([r.json?.client_key_family, r.json?.client_key_index], [42060, 22]);
    assertEquals(r.json?.static_address, created.json?.address);
    assertEquals((await cli("--json", "address", "show")).json?.client_key_index, 22);
  },
);

regtestTest(
  "regtest: with l402.token kept but the database and the backup gone, address new refuses a second address; recover --backup-file restores the first",
  { expiry: 144 },
  async ({ loopdir, cli, newAddress, invoices, tempDir }) => {
    const dataDir = `${loopdir}/regtest`;
    const off = await tempDir("loopkit-regtest-offsite-");
    const created = await newAddress();
    assertEquals(created.code, 0, created.stderr);
    const copy = await cli("--json", "backup", "write", "--copy-to", off);
    assertEquals(copy.code, 0, copy.stderr);
    const offPath = (copy.json?.copies as { path: string }[])[0].path;
    const original = await Deno.readFile(offPath);
    const issued = invoices.issued;

    // The loss: database and local backup gone, the token (and the off-site backup) kept.
    await Deno.remove(`${dataDir}/loopkit.db`);
    await Deno.remove((created.json?.backup as { path: string }).path);
    const second = await newAddress();
    assertEquals(second.code, 1, second.stdout + second.stderr);
    assertStringIncludes(second.stderr, "l402_token_not_ours");
    assertStringIncludes(second.stderr, "recover --backup-file");
    assertEquals(invoices.issued, issued, "no invoice asked from the server");
    const show = await cli("--json", "address", "show");
    assertEquals(show.code, 1, "no address was stored");

    const rec = await cli("--json", "recover", "--backup-file", offPath);
    assertEquals(rec.code, 0, rec.stderr);
    assertEquals(rec.json?.static_address, created.json?.address);
    const again = await cli("--json", "backup", "write", "--copy-to", off);
    assertEquals(again.code, 0, again.stderr);
    assertEquals((again.json?.copies as { status: string }[])[0].status, "already_backed_up");
    assertEquals(await Deno.readFile(offPath), original);
  },
);

regtestTest(
  "regtest: backup verify proves restorable through lnd (client key found, pkScript rebuilt); another lnd's seed cannot even decrypt",
  { expiry: 144 },
  async ({ net, loopdir, cli, cliAs, cliIn, newAddress, tempDir }) => {
    const created = await newAddress();
    assertEquals(created.code, 0, created.stderr);
    const v = await cli("--json", "backup", "verify");
    assertEquals(v.code, 0, v.stderr);
    const f = (v.json?.files as Record<string, unknown>[])[0];
    assertEquals([f.status, f.restorable, f.selected], ["ok", true, true]);
    assertEquals([f.client_key_family, f.client_key_index], [42060, created.json?.client_key_index]);
    assertEquals([f.address, f.pk_script], [created.json?.address, created.json?.pk_script]);
    // Against bob (another seed) the same file does not decrypt: never "ok".
    const other = await cliAs(net.bob, loopdir, "--json", "backup", "verify");
    assertEquals(other.code, 3, other.stderr);
    assertEquals((other.json?.files as Record<string, unknown>[])[0].status, "undecryptable");

    // The same backup re-sealed with legacy_client_key_family 42061: valid envelope and generation (what
    // verify called "ok" before), but alice's lnd does not hold the client key in 42061.
    const path = f.path as string;
    const key = await deriveBackupKey(new GrpcLndClient(net.alice.rpc));
    const payload = decodeBackupPayload(openBackup(key, await Deno.readFile(path)));
    payload.staticAddress!.legacyClientKeyFamily = 42061;
    const crafted = await tempDir("loopkit-regtest-crafted-");
    const craftedPath = `${crafted}/${path.split("/").pop()}`;
    await Deno.writeFile(craftedPath, sealBackup(key, encodeBackupPayload(payload)), { mode: 0o600 });
    const bad = await cli("--json", "backup", "verify", craftedPath);
    assertEquals(bad.code, 3, bad.stderr);
    const b = (bad.json?.files as Record<string, unknown>[])[0];
    assertEquals([b.status, b.restorable, b.failed_check], ["not_restorable", false, "client_key_in_lnd"]);
    const fresh = await tempDir("loopkit-regtest-fresh-");
    const rec = await cliIn(fresh, "--json", "recover", "--backup-file", craftedPath);
    assertEquals(rec.code, 3, "recover refuses what verify calls not restorable");
  },
);

regtestTest(
  "regtest: a token payment lnd refuses for permissions leaves no stuck pending token; l402 show reports lnd's view; a never-seen pending token is discarded",
  { expiry: 144 },
  async ({ net, server, invoices, loopdir, cli, cliAs, newAddress, tempDir }) => {
    const dataDir = `${loopdir}/regtest`;
    const safe = await tempDir("loopkit-regtest-mac-");
    // Everything address new needs except offchain:write (SendPaymentV2).
    const baked = await unary<{ macaroon: string }>(net.alice.rpc.lightning, "BakeMacaroon", {
      permissions: [
        { entity: "info", action: "read" },
        { entity: "address", action: "read" },
        { entity: "address", action: "write" },
        { entity: "onchain", action: "read" },
        { entity: "onchain", action: "write" },
        { entity: "signer", action: "generate" },
        { entity: "signer", action: "read" },
        { entity: "offchain", action: "read" },
      ],
    });
    const macPath = `${safe}/no-offchain-write.macaroon`;
    await Deno.writeFile(macPath, hex.decode(baked.macaroon));
    const swap = ["--swapserver", server.address, "--no-swapserver-tls"];
    const refused = await cliAs(
      net.alice,
      loopdir,
      "--macaroonpath",
      macPath,
      "--json",
      "address",
      "new",
      ...swap,
    );
    assertEquals(refused.code, 2, refused.stderr); // lnd refused the macaroon: a configuration error
    assertStringIncludes(refused.stderr, "l402_payment_failed");
    assertStringIncludes(refused.stderr, "lnd never saw the payment, so nothing was paid");
    assert(!refused.stderr.includes("listauth"), refused.stderr);
    const shown = await cli("--json", "l402", "show");
    assertEquals(shown.code, 0, shown.stderr);
    assertEquals(shown.json?.tokens, [], "no pending token left behind");

    // A pending token from elsewhere whose payment alice's lnd never saw: lnd answers NOT_FOUND.
    const pending = makeTokenFile({ paid: false });
    await Deno.writeFile(`${dataDir}/l402.token.pending`, pending.bytes, { mode: 0o600 });
    const s = await cli("--json", "l402", "show");
    const tokens = s.json?.tokens as Record<string, unknown>[];
    assertEquals(tokens.map((t) => [t.state, t.token_id, t.payment_status]), [[
      "pending",
      pending.tokenIdHex,
      "not_found",
    ]]);
    assert(!s.stdout.includes(bytesToHex(pending.bytes.subarray(2, 40))), "never the macaroon");
    const issued = invoices.issued;
    const created = await newAddress();
    assertEquals(created.code, 0, created.stderr);
    assertEquals(invoices.issued, issued + 1, "one fresh invoice, paid once");
    const after = (await cli("--json", "l402", "show")).json?.tokens as Record<string, unknown>[];
    assertEquals(after.map((t) => [t.state, t.payment_status]), [["paid", "SUCCEEDED"]]);
  },
);
