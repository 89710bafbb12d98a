/**
 * Interop of Lightning Loop's real client (loopd + loop v0.34.0-beta, built from the Go module proxy by
 * `.ci/install-regtest.sh`) with the local swap server, on regtest: carol's lnd runs loopd, which reaches
 * the local server over TLS (`--server.tlspath`; loopd refuses to send L402 credentials over plaintext),
 * buys its L402 token from bob over the carol→bob channel, creates a static address, sees a deposit, loops
 * it in with `loop static in --all --force`, is paid by bob, and co-signs the server's sweepless sweep,
 * which btcd accepts and mines. A second deposit with one confirmation is looped in too: loopd's legacy
 * 6-confirmation fallback cannot start its payment deadline, the server's risk acceptance on the
 * notification stream does (checked in loopd's log).
 *
 * The server's side is checked independently of loopd: the static address is recomputed from the keys the
 * server handed out (tests/swapserver/scripts.ts), the swap fee from the server's fee rule and knobs, the
 * sweep against btcd.
 *
 * Ignored (with a message) without btcd/lnd/loopd/loop; under `CI=true` a missing binary fails it.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { hex } from "@scure/base";
import { Address, OutScript } from "@scure/btc-signer";
import { decode as decodeBolt11 } from "light-bolt11-decoder";
import { regtestBinaries, startRegtest } from "./harness.ts";
import { callLnd } from "./lnd_node.ts";
import { startLoopd } from "./loopd.ts";
import { startSwapPeer } from "./swap_peer.ts";
import { waitFor } from "./_process.ts";
import { assertLoopBinaries, missingLoopBinaries, skipLoopd } from "./suite.ts";
import { staticAddressKeys } from "../swapserver/scripts.ts";

if (skipLoopd) {
  console.warn(
    `regtest loopd interop: ignored, binaries missing (${
      missingLoopBinaries.join(", ")
    }): run .ci/install-regtest.sh (under CI=true this test fails instead)`,
  );
}

/** bech32 HRP and version bytes of regtest (btcd's RegressionNetParams). */
const REGTEST = { bech32: "bcrt", pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef };

/** The deposit the miner sends to loopd's static address, sat. */
const DEPOSIT_SAT = 300_000n;
/** The second deposit (one confirmation only), sat. */
const DEPOSIT2_SAT = 200_000n;

interface LoopDeposit {
  id: string;
  state: string;
  outpoint: string;
  value: string;
  confirmation_height: string;
  blocks_until_expiry: string;
  swap_hash: string;
}

interface LoopStaticSwap {
  swap_hash: string;
  deposit_outpoints: string[];
  state: string;
  swap_amount_satoshis: string;
  payment_request_amount_satoshis: string;
}

Deno.test({
  name:
    "loopd v0.34.0-beta against the local swap server (TLS): static new, deposit, static in --all → Succeeded, paid by bob, sweepless sweep mined by btcd",
  ignore: skipLoopd,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assertLoopBinaries();
    const bins = await regtestBinaries();
    const t0 = performance.now();
    const ms = () => Math.round(performance.now() - t0);
    const timings: Record<string, number> = {};
    // carol runs loopd; bob is the swap server's lnd (L402 invoices, swap payments). The channel carol→bob
    // (5 000 000 sat, 1 000 000 pushed) lets carol pay the L402 invoice and bob pay the swap invoice.
    const net = await startRegtest({ lndNodes: ["carol", "bob"] });
    const loopDir = await Deno.makeTempDir({ prefix: "loopkit-loopd-" });
    let keepDir = false;
    try {
      timings.network = ms();
      const { server, invoices } = await startSwapPeer(net.bob, { tls: true, btcd: net.btcd.rpc });
      try {
        assert(server.tls && server.tlsCertPem, "the swap server serves TLS");
        const loopd = await startLoopd({
          binaries: bins,
          dir: join(loopDir, "carol"),
          lnd: net.carol,
          serverHost: server.address,
          serverTlsCertPem: server.tlsCertPem,
        });
        try {
          timings.loopdReady = ms();

          // 1. loop static new: FetchL402 (pays bob's L402 invoice from carol), ServerNewAddress.
          const created = await loopd.cliJson<{ address: string; expiry: number }>(["static", "new"], {
            stdin: "y\n",
          });
          timings.staticNew = ms();
          assertEquals(server.calls.newAddresses.length, 1, "one ServerNewAddress answered");
          const issued = server.calls.newAddresses[0];
          assertEquals(created.expiry, issued.expiry, "loopd reports the CSV expiry the server answered");
          assertEquals(invoices.issued, 1, "one L402 invoice issued by bob");
          assert(server.calls.tokenIds.has(issued.tokenId), "ServerNewAddress carried the paid L402 token");
          // The address loopd shows pays the pkScript the server computes from its own record of the keys.
          const expectedPkScript =
            staticAddressKeys(issued.clientKey, issued.serverKey, issued.expiry).pkScript;
          const loopdPkScript = OutScript.encode(Address(REGTEST).decode(created.address));
          assertEquals(hex.encode(loopdPkScript), hex.encode(expectedPkScript), "static address pkScript");

          // loop terms asks for both loop-out and loop-in terms (text output); the server's default knobs.
          const terms = await loopd.cli(["terms"]);
          assertEquals(terms.code, 0, `loop terms: ${terms.stderr}`);
          assertEquals(
            terms.stdout.split("\n").filter((l) => /^(Amount|Cltv delta):/.test(l)),
            ["Amount: 250000 - 10000000", "Cltv delta: 40 - 1000", "Amount: 50000 - 100000000"],
            `loop terms output:\n${terms.stdout}`,
          );

          // 2. Deposit from the miner; loopd polls lnd for it (every 10 s).
          const depositTxid = await net.sendToAddress(created.address, DEPOSIT_SAT);
          await net.mine(6);
          const raw = await net.btcd.rpc.getRawTransactionVerbose(depositTxid) as unknown as {
            vout: { n: number; value: number; scriptPubKey: { hex: string } }[];
          };
          const vout = raw.vout.find((o) => o.scriptPubKey.hex === hex.encode(expectedPkScript))!.n;
          const outpoint = `${depositTxid}:${vout}`;
          const deposit = await waitFor(`loopd to list deposit ${outpoint} as DEPOSITED`, async () => {
            const list = await loopd.cliJson<{ filtered_deposits: LoopDeposit[] }>([
              "static",
              "listdeposits",
            ]);
            return list.filtered_deposits.find((d) => d.outpoint === outpoint && d.state === "DEPOSITED");
          }, { timeoutMs: 60_000, intervalMs: 1_000, process: loopd.process });
          timings.depositListed = ms();
          assertEquals(BigInt(deposit.value), DEPOSIT_SAT);
          assertEquals(
            Number(deposit.confirmation_height),
            (await net.blockHeightOfTx(depositTxid))!,
            "deposit confirmation height",
          );

          // 3. loop static in --all --force.
          const channelBalance = async () => {
            const b = await callLnd<{ local_balance: { sat: string } }>(
              "lnd carol",
              net.carol.rpc.lightning,
              "ChannelBalance",
            );
            return BigInt(b.local_balance.sat);
          };
          const balanceBefore = await channelBalance();
          const started = await loopd.cliJson<{
            swap_hash: string;
            state: string;
            swap_amount: string;
            quoted_swap_fee_satoshis: string;
            htlc_cltv: number;
            initiation_height: number;
          }>(["static", "in", "--all", "--force"]);
          timings.staticInReturned = ms();
          const swapHash = started.swap_hash;
          // The server's fee rule with its default knobs: base 1 000 sat + ⌊amount × 1 000 ppm / 10⁶⌋.
          const expectedFee = 1_000n + (DEPOSIT_SAT * 1_000n) / 1_000_000n;
          assertEquals(BigInt(started.quoted_swap_fee_satoshis), expectedFee, "quoted swap fee");
          assertEquals(BigInt(started.swap_amount), DEPOSIT_SAT, "swap amount = the whole deposit");

          const swap = await waitFor(`loopd to report swap ${swapHash} SUCCEEDED`, async () => {
            const list = await loopd.cliJson<{ swaps: LoopStaticSwap[] }>(["static", "listswaps"]);
            const s = list.swaps.find((x) => x.swap_hash === swapHash);
            if (s?.state === "FAILED_STATIC_ADDRESS_SWAP") {
              throw new Error(`swap failed: ${JSON.stringify(s)}`);
            }
            return s?.state === "SUCCEEDED" ? s : undefined;
          }, { timeoutMs: 120_000, intervalMs: 1_000, process: loopd.process });
          timings.succeeded = ms();
          assertEquals(swap.deposit_outpoints, [outpoint]);
          assertEquals(BigInt(swap.payment_request_amount_satoshis), DEPOSIT_SAT - expectedFee);

          // The server's view: signed HTLC variants kept, risk accepted, paid from bob.
          const srv = server.loopIn.swaps.get(swapHash);
          assert(srv, "the server knows the swap");
          assert(
            server.loopIn.records.htlcSigned.includes(swapHash),
            "loopd's HTLC partial signatures verified",
          );
          assert(srv.signedHtlcTxs, "three fully signed HTLC variants kept");
          assertEquals(srv.htlcExpiry, started.htlc_cltv, "HTLC CLTV");
          assert(
            server.loopIn.records.payments.some((p) => p.swapHash === swapHash && p.ok),
            "bob paid the swap invoice",
          );
          assert(
            server.loopIn.records.notifications.some((n) =>
              n.swapHash === swapHash && n.kind === "risk_accepted"
            ),
            "risk acceptance delivered on loopd's notification stream",
          );
          assert(server.loopIn.records.subscriptions.every((s) => s.version === 1), "listener version V1");
          // What loopd put on the wire, against spec/static-loop-in.md §1.7 and §3.12.
          assertEquals(srv.paymentTimeoutSeconds, 60, "payment_timeout_seconds (CLI default 60 s)");
          const sections = decodeBolt11(srv.invoice).sections;
          assertEquals(sections.find((x) => x.name === "description")?.value, "static address loop-in");
          assertEquals(sections.find((x) => x.name === "expiry")?.value, 31_536_000, "swap invoice expiry");
          assertEquals(
            BigInt(String(sections.find((x) => x.name === "amount")?.value)),
            (DEPOSIT_SAT - expectedFee) * 1000n,
            "swap invoice amount, msat",
          );
          const carolPubkey = net.carol.pubkey;
          assert(server.loopIn.records.probes.length >= 1, "loopd probes before quoting");
          for (const pr of server.loopIn.records.probes) {
            assertEquals(pr.protocolVersion, 11, "Probe protocol_version MUSIG2");
            assertEquals(hex.encode(pr.target), carolPubkey, "Probe target = own node pubkey");
            assertEquals(pr.amtSat, DEPOSIT_SAT);
          }
          for (const q of server.loopIn.records.quotes) {
            assertEquals([q.amtSat, q.numDeposits, q.fast], [DEPOSIT_SAT, 1, false], "LoopInQuote fields");
          }
          assertEquals(server.loopIn.records.abandons, [], "no abandon push");
          // loopd waits until its FSM observer saw SignHtlcTx, but answers the swap record's state field, which
          // may still say InitHtlcTx (seen in a run; spec §1.7 says the answer is "SignHtlcTx").
          assert(["InitHtlcTx", "SignHtlcTx"].includes(started.state), `static in answered ${started.state}`);
          const balanceAfter = await waitFor(
            "carol's channel balance to include the swap payment",
            async () => {
              const b = await channelBalance();
              return b > balanceBefore ? b : undefined;
            },
            { timeoutMs: 30_000, process: net.carol.process },
          );
          assertEquals(
            balanceAfter - balanceBefore,
            DEPOSIT_SAT - expectedFee,
            "carol received amount − fee",
          );

          // 4. The sweepless sweep. The server asked right after paying; loopd answers "swap not finished
          // yet" when that request arrives before its FSM reached Succeeded, and the server asks again.
          let sweepTxid: string | undefined;
          await waitFor(`the server to publish the sweepless sweep of ${swapHash}`, () => {
            const published = server.loopIn.records.sweepsPublished.find((s) => s.swapHash === swapHash);
            if (published) return Promise.resolve(sweepTxid = published.txid);
            const sweep = server.loopIn.swaps.get(swapHash)?.sweep;
            if (!sweep || sweep.askAgain) server.loopIn.requestSweep(swapHash);
            return Promise.resolve(undefined);
          }, { timeoutMs: 60_000, intervalMs: 1_000, process: loopd.process });
          timings.sweepPublished = ms();
          assert(sweepTxid);
          assert(
            (await net.btcd.rpc.getRawMempool()).includes(sweepTxid),
            "btcd accepted the sweep into its mempool",
          );
          await net.mine(1);
          const sweepHeight = await net.blockHeightOfTx(sweepTxid);
          assertEquals(sweepHeight, await net.bestHeight(), "the sweep confirmed in the next block");
          const sweepTx = await net.btcd.rpc.getRawTransactionVerbose(sweepTxid) as unknown as {
            vin: { txid: string; vout: number }[];
          };
          assertEquals(
            sweepTx.vin.map((i) => `${i.txid}:${i.vout}`),
            [outpoint],
            "the sweep spends the deposit",
          );
          timings.sweepConfirmed = ms();

          // 5. A second swap of a deposit with ONE confirmation: loopd's legacy 6-confirmation fallback cannot
          // start the payment deadline, so the server's risk acceptance on the notification stream must.
          const deposit2Txid = await net.sendToAddress(created.address, DEPOSIT2_SAT);
          await net.mine(1);
          const raw2 = await net.btcd.rpc.getRawTransactionVerbose(deposit2Txid) as unknown as {
            vout: { n: number; scriptPubKey: { hex: string } }[];
          };
          const outpoint2 = `${deposit2Txid}:${
            raw2.vout.find((o) => o.scriptPubKey.hex === hex.encode(expectedPkScript))!.n
          }`;
          await waitFor(`loopd to list deposit ${outpoint2} as DEPOSITED`, async () => {
            const list = await loopd.cliJson<{ filtered_deposits: LoopDeposit[] }>([
              "static",
              "listdeposits",
            ]);
            return list.filtered_deposits.some((d) => d.outpoint === outpoint2 && d.state === "DEPOSITED");
          }, { timeoutMs: 60_000, intervalMs: 1_000, process: loopd.process });
          const balance2Before = await channelBalance();
          // --all takes only DEPOSITED deposits: the first one is LOOPED_IN.
          const started2 = await loopd.cliJson<{ swap_hash: string; state: string }>([
            "static",
            "in",
            "--all",
            "--force",
          ]);
          const fee2 = 1_000n + (DEPOSIT2_SAT * 1_000n) / 1_000_000n;
          await waitFor(`loopd to report swap ${started2.swap_hash} SUCCEEDED`, async () => {
            const list = await loopd.cliJson<{ swaps: LoopStaticSwap[] }>(["static", "listswaps"]);
            const s = list.swaps.find((x) => x.swap_hash === started2.swap_hash);
            if (s?.state === "FAILED_STATIC_ADDRESS_SWAP") {
              throw new Error(`swap failed: ${JSON.stringify(s)}`);
            }
            return s?.state === "SUCCEEDED" && s.deposit_outpoints.join() === outpoint2;
          }, { timeoutMs: 120_000, intervalMs: 1_000, process: loopd.process });
          timings.secondSucceeded = ms();
          const log = await Deno.readTextFile(loopd.logPath);
          assert(
            log.split("\n").some((l) =>
              l.includes(started2.swap_hash) &&
              l.includes("starting payment deadline after risk accepted notification")
            ),
            `loopd started the payment deadline of the 1-confirmation swap from the server's risk acceptance`,
          );
          const balance2After = await waitFor(
            "carol's channel balance to include the second payment",
            async () => {
              const b = await channelBalance();
              return b > balance2Before ? b : undefined;
            },
            { timeoutMs: 30_000, process: net.carol.process },
          );
          assertEquals(balance2After - balance2Before, DEPOSIT2_SAT - fee2, "second swap: amount − fee");
          await waitFor(`the server to publish the sweepless sweep of ${started2.swap_hash}`, () => {
            if (server.loopIn.records.sweepsPublished.some((s) => s.swapHash === started2.swap_hash)) {
              return Promise.resolve(true);
            }
            const sweep = server.loopIn.swaps.get(started2.swap_hash)?.sweep;
            if (!sweep || sweep.askAgain) server.loopIn.requestSweep(started2.swap_hash);
            return Promise.resolve(false);
          }, { timeoutMs: 60_000, intervalMs: 1_000, process: loopd.process });
          const sweep2 = server.loopIn.records.sweepsPublished.find((s) =>
            s.swapHash === started2.swap_hash
          )!;
          assert(
            (await net.btcd.rpc.getRawMempool()).includes(sweep2.txid),
            "btcd accepted the second sweep",
          );
          await net.mine(1);
          assertEquals(await net.blockHeightOfTx(sweep2.txid), await net.bestHeight(), "second sweep mined");
          timings.secondSweepConfirmed = ms();

          console.log(
            `loopd interop: ${JSON.stringify(timings)} ms; server calls in first-call order ${
              JSON.stringify(server.calls.methods)
            }; L402 challenges ${server.calls.challenges}, subscriptions ${server.loopIn.records.subscriptions.length}; ` +
              `sweep requests sent ${server.loopIn.swaps.get(swapHash)?.sweep?.requestsSent}, pushes ${
                JSON.stringify(server.loopIn.records.sweepPushes.map((p) => p.errorMessage || "signed"))
              }`,
          );
        } catch (e) {
          keepDir = true;
          console.error(`loopd interop failed; loopd logs kept in ${loopd.dir} (${loopd.logPath})`);
          throw e;
        } finally {
          await loopd.stop();
        }
      } finally {
        await server.stop();
      }
    } finally {
      await net.stop();
      if (!keepDir && Deno.env.get("LOOPKIT_REGTEST_KEEP") !== "1") {
        await Deno.remove(loopDir, { recursive: true }).catch(() => {});
      }
    }
  },
});
