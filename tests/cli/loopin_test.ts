/**
 * `loopkit loopin quote|loopin|sync|list|show` as subprocesses against the fake lnd (real gRPC, real MuSig2
 * partial signatures) and the local swap server (its loop-in role: real MuSig2, it verifies every partial
 * signature), with a real libSQL file: quote output, a whole loop-in to `Succeeded`, the refusals, `loopin
 * sync` as a no-op, and kill -9 / SIGTERM of `loopin` at every step boundary followed by `loopin sync`.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { RawTx } from "@scure/btc-signer";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { startFakeLnd } from "../fakelnd/server.ts";
import { startSwapServer } from "../swapserver/server.ts";
import { InProcessLightning } from "../swapserver/lightning.ts";
import { MemoryChain } from "../swapserver/chain.ts";
import { lndFlags, runCli } from "./_harness.ts";

const TIP = 1000;
const CSV = 4032;

type Json = Record<string, unknown>;

/** A funding transaction paying `valueSat` to `pkScript` at output 0 (a unique input per `n`). */
function fundingTx(n: number, pkScript: Uint8Array, valueSat: bigint) {
  const prev = new Uint8Array(32);
  new DataView(prev.buffer).setUint32(0, n);
  const raw = RawTx.encode({
    version: 2,
    segwitFlag: false,
    inputs: [{ txid: prev, index: 0, finalScriptSig: new Uint8Array(), sequence: 0xffffffff }],
    outputs: [{ amount: valueSat, script: pkScript }],
    lockTime: 0,
  });
  return { raw, txid: bytesToHex(sha256(sha256(raw)).reverse()) };
}

/**
 * Fake lnd alice (pays the L402 invoices of bob, the server's in-process node), the local swap server on a
 * memory chain, and a static address created through `loopkit address new`.
 */
async function setup() {
  const lnd = await startFakeLnd({ network: "regtest", blockHeight: TIP });
  const chain = new MemoryChain(TIP);
  const bob = new InProcessLightning("regtest");
  const invoices = {
    async addInvoice(amountSat: bigint, memo: string) {
      const inv = await bob.addInvoice(amountSat, memo);
      const hashHex = bytesToHex(inv.paymentHash);
      lnd.setPayment(hashHex, {
        paymentRequest: inv.paymentRequest,
        updates: [{
          status: "SUCCEEDED",
          preimage: bob.invoices.get(hashHex)!.preimage,
          valueMsat: amountSat * 1000n,
          feeMsat: 0n,
        }],
      });
      return inv;
    },
  };
  const server = await startSwapServer({ invoices, expiry: CSV });
  const loopdir = await Deno.makeTempDir({ prefix: "loopkit-cli-loopin-" });
  const flags = lndFlags(lnd, loopdir);
  const serverFlags = ["--swapserver", server.address, "--no-swapserver-tls"];
  const cli = (...args: string[]) => runCli([...flags, ...args]);
  const created = await cli("--json", "address", "new", ...serverFlags);
  assertEquals(created.code, 0, created.stderr);
  const pkScript = Uint8Array.from(
    (created.json!.pk_script as string).match(/../g)!.map((h) => parseInt(h, 16)),
  );
  let n = 0;
  return {
    lnd,
    chain,
    server,
    loopdir,
    flags,
    serverFlags,
    cli,
    pkScript,
    /** A deposit of `valueSat` with `confirmations` (0 = mempool) in lnd's wallet and on the server's chain. */
    deposit(valueSat: bigint, confirmations: number): string {
      const f = fundingTx(++n, pkScript, valueSat);
      lnd.addTransaction({ rawTx: f.raw, blockHeight: confirmations ? TIP - confirmations + 1 : 0 });
      chain.addOutput(f.txid, 0, valueSat, pkScript, confirmations);
      return `${f.txid}:0`;
    },
    /** Makes lnd's ListUnspent report these deposits. */
    wallet(outpoints: { op: string; valueSat: bigint; confirmations: number }[]) {
      lnd.setUtxos(outpoints.map((o) => ({
        txid: o.op.split(":")[0],
        vout: 0,
        amountSat: o.valueSat,
        pkScript,
        confirmations: o.confirmations,
      })));
    },
    async [Symbol.asyncDispose]() {
      await server.stop();
      await lnd.stop();
      await Deno.remove(loopdir, { recursive: true });
    },
  };
}

type Setup = Awaited<ReturnType<typeof setup>>;

/** Two deposits (300 000 sat confirmed 6 times, 200 000 sat in the mempool), synced. */
async function twoDeposits(t: Setup) {
  const a = t.deposit(300_000n, 6);
  const b = t.deposit(200_000n, 0);
  t.wallet([{ op: a, valueSat: 300_000n, confirmations: 6 }, {
    op: b,
    valueSat: 200_000n,
    confirmations: 0,
  }]);
  const s = await t.cli("deposits", "sync");
  assertEquals(s.code, 0, s.stderr);
  return [a, b];
}

async function depositStates(t: Setup): Promise<Record<string, string>> {
  const r = await t.cli("--json", "deposits", "list", "--all", "--offline");
  assertEquals(r.code, 0, r.stderr);
  return Object.fromEntries((r.json!.deposits as Json[]).map((d) => [d.outpoint, d.state]));
}

Deno.test("loopin quote prints Loop's quote lines and snake_case JSON; nothing is locked or invoiced", async () => {
  await using t = await setup();
  const [a, b] = await twoDeposits(t);
  const text = await t.cli("loopin", "quote", "400000", "--utxo", a, "--utxo", b, ...t.serverFlags);
  assertEquals(text.code, 0, text.stderr);
  assert(/^Previously deposited on-chain: +400000 sat$/m.test(text.stdout), text.stdout);
  assertStringIncludes(text.stderr, `  - ${b} (unconfirmed)`);
  const r = await t.cli("--json", "loopin", "quote", "400000", "--utxo", a, "--utxo", b, ...t.serverFlags);
  assertEquals(r.code, 0, r.stderr);
  const q = r.json!;
  const fee = BigInt(q.swap_fee_sat as string);
  assertEquals(q.quoted_amt, "400000");
  assertEquals(q.total_deposit_sat, "500000");
  assertEquals(q.change_sat, "100000");
  assertEquals(q.receive_off_chain_sat, String(400_000n - fee));
  assertEquals(q.deposit_outpoints, [a, b]);
  assertEquals(q.htlc_publish_fee_sat, "0");
  assertEquals(q.low_confirmation_deposits, [{ outpoint: b, confirmations: null }]);
  assertEquals(await depositStates(t), { [a]: "Deposited", [b]: "Deposited" });
  assertEquals(t.lnd.invoices.size, 0);
});

Deno.test("loopin refusals: no terminal without --force (exit 2, nothing contacted), duplicates, dust, fee cap", async () => {
  await using t = await setup();
  const [a, b] = await twoDeposits(t);
  const before = { ...t.lnd.calls };
  const noTty = await t.cli("--json", "loopin", "--all", ...t.serverFlags);
  assertEquals(noTty.code, 2, noTty.stderr);
  assertStringIncludes(noTty.stderr, "--force");
  assertEquals(t.lnd.calls, before, "lnd was contacted before the refusal");

  const dup = await t.cli("loopin", "--utxo", a, "--utxo", a, "--force", ...t.serverFlags);
  assertEquals(dup.code, 2, dup.stderr);
  assertStringIncludes(dup.stderr.toLowerCase(), "duplicate");

  const dust = await t.cli("loopin", "100", "--all", "--force", ...t.serverFlags);
  assertEquals(dust.code, 2, dust.stderr);
  assertStringIncludes(dust.stderr, "dust");
  const dustChange = await t.cli("loopin", String(500_000 - 329), "--all", "--force", ...t.serverFlags);
  assertEquals(dustChange.code, 2, dustChange.stderr);
  assertStringIncludes(dustChange.stderr, "dust change");

  const cap = await t.cli(
    "--json",
    "loopin",
    "--utxo",
    b,
    "--max-swap-fee-sat",
    "1",
    "--force",
    ...t.serverFlags,
  );
  assertEquals(cap.code, 1, cap.stderr);
  assertEquals((JSON.parse(cap.stderr) as { error: Json }).error.code, "swap_fee_too_high");
  assertEquals(t.lnd.invoices.size, 0, "an invoice was created although the fee was too high");
  assertEquals(await depositStates(t), { [a]: "Deposited", [b]: "Deposited" });
});
