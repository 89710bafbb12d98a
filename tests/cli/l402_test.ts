/**
 * `loopkit l402 show` as a subprocess against the fake lnd: the token's id, state and lnd's view of its
 * payment, never the preimage or the macaroon.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { startFakeLnd } from "../fakelnd/server.ts";
import { parseTokenFile } from "../../core/l402/token_file.ts";
import { lndFlags, makeTokenFile, runCli } from "./_harness.ts";
import { treeHash } from "../fs.ts";

Deno.test("l402 show: a pending token lnd never saw is not_found, a paid one is shown without preimage or macaroon; writes nothing", async () => {
  const lnd = await startFakeLnd({ network: "regtest" });
  const loopdir = await Deno.makeTempDir({ prefix: "loopkit-cli-l402-" });
  try {
    const dataDir = `${loopdir}/regtest`;
    await Deno.mkdir(dataDir, { recursive: true });
    const cli = (...a: string[]) => runCli([...lndFlags(lnd, loopdir), ...a]);
    const none = await cli("--json", "l402", "show");
    assertEquals([none.code, none.json?.tokens], [0, []]);

    const pending = makeTokenFile({ paid: false });
    await Deno.writeFile(`${dataDir}/l402.token.pending`, pending.bytes, { mode: 0o600 });
    const before = await treeHash(loopdir);
    const r = await cli("--json", "l402", "show");
    assertEquals(r.code, 0, r.stderr);
    const t = (r.json?.tokens as Record<string, unknown>[])[0];
    assertEquals([t.state, t.token_id, t.payment_status], ["pending", pending.tokenIdHex, "not_found"]);
    assertStringIncludes(t.advice as string, "never paid");
    assertEquals(lnd.calls["Router.TrackPaymentV2"], 1);
    assertEquals(await treeHash(loopdir), before);

    await Deno.remove(`${dataDir}/l402.token.pending`);
    const paid = makeTokenFile();
    await Deno.writeFile(`${dataDir}/l402.token`, paid.bytes, { mode: 0o600 });
    const p = await cli("--json", "l402", "show", "--offline");
    assertEquals(p.code, 0, p.stderr);
    const pt = (p.json?.tokens as Record<string, unknown>[])[0];
    assertEquals([pt.state, pt.token_id, pt.payment_status], ["paid", paid.tokenIdHex, null]);
    const parsed = parseTokenFile(paid.bytes);
    const text = await cli("l402", "show", "--offline");
    for (const out of [p.stdout, text.stdout]) {
      assert(!out.includes(bytesToHex(parsed.preimage)), "never the preimage");
      assert(!out.includes(bytesToHex(parsed.macaroonBytes).slice(0, 40)), "never the macaroon");
    }
    assertStringIncludes(text.stdout, `paid token ${paid.tokenIdHex}`);
  } finally {
    await lnd.stop();
    await Deno.remove(loopdir, { recursive: true });
  }
});
