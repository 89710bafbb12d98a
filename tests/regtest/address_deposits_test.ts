/**
 * Issue 3 acceptance on a real regtest network (btcd + lnd alice and bob, alice→bob channel) with the local
 * swap server whose L402 invoices come from bob's lnd: `address new`, the static address against lnd's own
 * taproot and MuSig2 code, L402 pay-once / pending completion / tampering, backup verify through real
 * DeriveSharedKey, and `deposits sync` heights against btcd.
 *
 * Ignored without the regtest binaries unless CI=true (then missing binaries fail).
 */
import { hex } from "@scure/base";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { unary } from "../../lnd/rpc.ts";
import { GrpcLndClient } from "../../lnd/grpc_client.ts";
import { staticAddress } from "../../core/staticaddr/script.ts";
import { encodeTokenFile, parseTokenFile } from "../../core/l402/token_file.ts";
import { regtestTest } from "./suite.ts";
import { openDb } from "../../core/db/db.ts";

regtestTest(
  "regtest: address new, L402, static address vs lnd, backup verify, deposits sync heights",
  { expiry: 144 },
  async ({ net, server, invoices, loopdir, cli, cliIn, newAddress }, t) => {
    const alice = net.alice;
    const alicePayments = async () =>
      (await unary<{ payments: unknown[] }>(alice.rpc.lightning, "ListPayments", {
        include_incomplete: true,
      }))
        .payments.length;
    let address = "";
    let pkScript: Uint8Array = new Uint8Array();

    await t.step("address new pays exactly one of bob's invoices; a second run pays none", async () => {
      const paymentsBefore = await alicePayments(); // the harness's channel probe
      const r = await newAddress();
      assertEquals(r.code, 0, r.stderr);
      assertEquals(r.json?.created, true);
      assertEquals(invoices.issued, 1);
      assertEquals(await alicePayments(), paymentsBefore + 1);
      address = r.json?.address as string;
      pkScript = hex.decode(r.json?.pk_script as string);
      const again = await newAddress();
      assertEquals(again.code, 0, again.stderr);
      assertEquals(again.json?.created, false);
      assertEquals(again.json?.address, address);
      assertEquals(invoices.issued, 1);
      assertEquals(await alicePayments(), paymentsBefore + 1);
    });

    await t.step("our address equals lnd's taproot import and MuSig2 key aggregation", async () => {
      const shown = await cli("--json", "address", "show");
      const clientPubkey = hex.decode(shown.json?.client_pubkey as string);
      const serverPubkey = hex.decode(shown.json?.server_pubkey as string);
      const ours = staticAddress({ clientPubkey, serverPubkey, csvExpiry: 144, network: "regtest" });
      assertEquals(ours.address, address);
      // lnd derives the same client key at the stored locator.
      const aliceLnd = new GrpcLndClient(alice.rpc);
      const key = await aliceLnd.deriveKey({ family: 42060, index: Number(shown.json?.client_key_index) });
      assertEquals(hex.encode(key.rawKeyBytes), hex.encode(clientPubkey));
      // bob's wallet has never seen this script, so its import computes the address from scratch.
      const imported = await unary<{ p2tr_address: string }>(net.bob.rpc.walletKit, "ImportTapscript", {
        internal_public_key: ours.internalKeyXOnly,
        full_tree: { all_leaves: [{ leaf_version: 0xc0, script: ours.timeoutLeafScript }] },
      });
      assertEquals(imported.p2tr_address, address);
      const combined = await unary<{ combined_key: Uint8Array; taproot_internal_key: Uint8Array }>(
        alice.rpc.signer,
        "MuSig2CombineKeys",
        {
          all_signer_pubkeys: [clientPubkey, serverPubkey],
          taproot_tweak: { script_root: ours.tapLeafHash, key_spend_only: false },
          version: "MUSIG2_VERSION_V100RC2",
        },
      );
      assertEquals(
        hex.encode(new Uint8Array(combined.taproot_internal_key)),
        hex.encode(ours.internalKeyXOnly),
      );
      assertEquals(hex.encode(new Uint8Array(combined.combined_key)), hex.encode(ours.pkScript.slice(2)));
    });

    await t.step("the backup written by address new passes backup verify through real lnd", async () => {
      const v = await cli("--json", "backup", "verify");
      assertEquals(v.code, 0, v.stdout + v.stderr);
      const files = v.json?.files as Record<string, unknown>[];
      assertEquals(files.length, 1);
      assertEquals(files[0].status, "ok");
    });

    await t.step(
      "a 0-conf deposit syncs at once; after mine(3) its height is btcd's block height",
      async () => {
        const txid = await net.sendToAddress(address, 150_000n);
        const deadline = Date.now() + 30_000;
        let first;
        do {
          first = await cli("--json", "deposits", "sync");
          assertEquals(first.code, 0, first.stderr);
          if ((first.json?.changes as unknown[]).length) break;
          await new Promise((r) => setTimeout(r, 500));
        } while (Date.now() < deadline);
        const created = (first.json?.changes as Record<string, string>[]).find((c) =>
          c.outpoint.startsWith(txid)
        );
        assert(created, `deposit ${txid} seen at 0 conf: ${first.stdout}`);
        assertEquals(created.change, "created");
        assertEquals(created.confirmation_height, "0");
        await net.mine(3);
        const second = await cli("--json", "deposits", "sync");
        const confirmed = (second.json?.changes as Record<string, string>[]).find((c) =>
          c.outpoint === created.outpoint
        );
        assertEquals(confirmed?.confirmation_height, String(await net.blockHeightOfTx(txid)));
        const third = await cli("--json", "deposits", "sync");
        assertEquals(third.json?.changes, []);
        const list = await cli("--json", "deposits", "list");
        const d = (list.json?.deposits as Record<string, string>[]).find((x) =>
          x.outpoint === created.outpoint
        );
        assertEquals(d?.pk_script, hex.encode(pkScript));
      },
    );

    await t.step("a pending token whose payment succeeded is completed without paying again", async () => {
      const dir2 = `${loopdir}/second`;
      const r = await newAddress(dir2);
      assertEquals(r.code, 0, r.stderr);
      const issued = invoices.issued;
      const payments = await alicePayments();
      // Turn the paid token back into the pending one it was before the payment, and forget the address.
      const data = `${dir2}/regtest`;
      const tok = parseTokenFile(await Deno.readFile(`${data}/l402.token`));
      await Deno.writeFile(
        `${data}/l402.token.pending`,
        encodeTokenFile({
          ...tok,
          preimage: new Uint8Array(32),
          amountPaidMsat: 0n,
          routingFeePaidMsat: 0n,
        }),
        { mode: 0o600 },
      );
      await Deno.remove(`${data}/l402.token`);
      await Deno.remove(`${data}/loopkit.db`);
      // A run that died between paying and storing the paid token never got an address, so no backup of
      // it exists either (one naming another address would be a backup_conflict, exit 4).
      for await (const e of Deno.readDir(data)) {
        if (e.name.startsWith("L402_backup_")) await Deno.remove(`${data}/${e.name}`);
      }
      const again = await newAddress(dir2);
      assertEquals(again.code, 0, again.stderr);
      // The unauthenticated first call may draw a fresh challenge (spec static-loop-in.md §5.3), but
      // alice pays nothing: the pending token is completed from lnd's record of the earlier payment.
      assert(invoices.issued <= issued + 1);
      assertEquals(await alicePayments(), payments);
      assertEquals(parseTokenFile(await Deno.readFile(`${data}/l402.token`)).preimage, tok.preimage);
    });

    await t.step("a tampered token is rejected by the server with a clear client error", async () => {
      const dir3 = `${loopdir}/third`;
      assertEquals((await newAddress(dir3, { json: false })).code, 0);
      const data = `${dir3}/regtest`;
      const bytes = await Deno.readFile(`${data}/l402.token`);
      const tok = parseTokenFile(bytes);
      const mac = tok.macaroonBytes.slice();
      mac[mac.length - 1] ^= 0x01; // flip a bit of the macaroon signature
      await Deno.writeFile(`${data}/l402.token`, encodeTokenFile({ ...tok, macaroonBytes: mac }), {
        mode: 0o600,
      });
      // Forget the address but keep this database's record of the token (a paid token the database did not
      // acquire is refused before any server call), and drop its backup, or `address new` would (rightly)
      // ask for `recover` first: the creation then reaches the server with the tampered token.
      const db = await openDb({ url: `file:${data}/loopkit.db`, network: "regtest" });
      try {
        await db.write(async (tx) => {
          await tx.execute("DELETE FROM static_addresses");
          await tx.execute({
            sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('address_l402_token_id', ?)",
            args: [tok.tokenId],
          });
        });
      } finally {
        db.close();
      }
      for await (const e of Deno.readDir(data)) {
        if (e.name.startsWith("L402_backup_")) await Deno.remove(`${data}/${e.name}`);
      }
      const issued = invoices.issued;
      const r = await newAddress(dir3);
      assertEquals(r.code, 1, r.stderr);
      assertStringIncludes(r.stderr, "l402_rejected");
      assertEquals(invoices.issued - issued <= 1, true); // a fresh challenge at most, never paid
      const show = await cliIn(dir3, "address", "show");
      assertEquals(show.code, 1);
    });

    await t.step("a bad server answer stores nothing", async () => {
      server.setMisbehaviour({ expiry: 0 });
      const dir4 = `${loopdir}/fourth`;
      const r = await newAddress(dir4, { json: false });
      assertEquals(r.code, 1, r.stderr);
      assertStringIncludes(r.stderr, "staticAddress:");
      assertEquals((await cliIn(dir4, "address", "show")).code, 1);
      server.setMisbehaviour({});
    });
  },
);
