/**
 * The lnd RPCs of the static loop-in (spec/static-loop-in.md §1.3, §3.6, §3.8, §4.4) against alice's real
 * lnd on regtest, through `GrpcLndClient`:
 *
 * - MuSig2CreateSession with the static-address client key (DeriveNextKey 42060) and a second key held by
 *   the test, RegisterNonces with the test's nonce, Sign → lnd's partial signature; the test makes its own
 *   partial signature with @scure musig2, aggregates, and the result verifies for the P2TR output key of the
 *   static address (core/staticaddr/script.ts) and is accepted by btcd as the key-path spend of a funded
 *   deposit; lnd's answers for cleanup of an unknown session and a nonce registered twice;
 * - GetTransactions lists the deposit (imported with ImportTapscript) and its spend, whose
 *   previous_outpoints name the deposit outpoint (the availability check of §3.8 rests on this);
 * - AddInvoice (fields land in the payment request), LookupInvoice OPEN → SETTLED after bob pays, unknown →
 *   null; CancelInvoice on an open invoice, again, on a settled one and on an unknown hash;
 * - an lnd restart: the MuSig2 session is gone (RegisterNonces / Sign: "session with ID … not found",
 *   Cleanup still succeeds), the invoice is kept, a new session has a fresh nonce.
 *
 * Ignored without the regtest binaries unless CI=true (then missing binaries fail).
 */
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { Address, OutScript, Transaction } from "@scure/btc-signer";
import { nonceAggregate, nonceGen, Session, sortKeys } from "@scure/btc-signer/musig2.js";
import { decode as decodeBolt11 } from "light-bolt11-decoder";
import { assert, assertEquals } from "../assert.ts";
import { decodeInvoice } from "../../core/l402/bolt11.ts";
import { staticAddress } from "../../core/staticaddr/script.ts";
import { LndInvoiceErrorCode, LndRpcError } from "../../lnd/errors.ts";
import { GrpcLndClient } from "../../lnd/grpc_client.ts";
import type { WalletTransaction } from "../../lnd/types.ts";
import { regtestBinaries, startRegtest } from "./harness.ts";

const bins = await regtestBinaries();
const inCi = Deno.env.get("CI") === "true";
const skip = bins.missing.length > 0 && !inCi;

const REGTEST = { bech32: "bcrt", pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef };

async function poll<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function rejectsWith(p: Promise<unknown>, check: (e: unknown) => boolean, what: string): Promise<void> {
  return p.then(
    () => {
      throw new Error(`${what}: expected a rejection`);
    },
    (e) => {
      if (!check(e)) throw new Error(`${what}: unexpected error ${e}`, { cause: e });
    },
  );
}

Deno.test({
  name: "regtest: lnd's MuSig2, invoice and GetTransactions RPCs as the static loop-in uses them",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (bins.missing.length > 0) throw new Error(`Regtest binaries missing under CI=true: ${bins.missing}`);
    const net = await startRegtest({ lndNodes: ["alice", "bob"] });
    const alice = new GrpcLndClient(net.alice.rpc);
    const bob = new GrpcLndClient(net.bob.rpc);
    let spent: { depositTxid: string; vout: number; spendTxid: string } | undefined;
    try {
      await t.step(
        "MuSig2 with the static-address key: lnd's partial + ours spends a deposit on the key path",
        async () => {
          const client = await alice.deriveNextKey(42060);
          const serverPriv = secp256k1.utils.randomSecretKey();
          const serverPub = secp256k1.getPublicKey(serverPriv, true);
          const addr = staticAddress({
            clientPubkey: client.rawKeyBytes,
            serverPubkey: serverPub,
            csvExpiry: 14_400,
            network: "regtest",
          });
          await alice.importTapscript(addr.internalKeyXOnly, addr.timeoutLeafScript);
          const depositTxid = await net.sendToAddress(addr.address, 250_000n);
          await net.mine(1);
          const depositTx = Transaction.fromRaw(
            hex.decode(await net.btcd.rpc.getRawTransactionHex(depositTxid)),
            {
              allowUnknownOutputs: true,
            },
          );
          let vout = -1;
          for (let i = 0; i < depositTx.outputsLength; i++) {
            if (hex.encode(depositTx.getOutput(i).script!) === hex.encode(addr.pkScript)) vout = i;
          }
          assert(vout >= 0, "deposit output not found");

          const session = await alice.muSig2CreateSession({
            keyLocator: client.keyLocator,
            allSignerPubkeys: sortKeys([client.rawKeyBytes, serverPub]).reverse(), // lnd sorts
            taprootScriptRoot: addr.tapLeafHash,
          });
          assertEquals(hex.encode(session.combinedKey), hex.encode(addr.outputKey.slice(1)));
          assertEquals(hex.encode(session.taprootInternalKey), hex.encode(addr.internalKeyXOnly));
          assertEquals(session.haveAllNonces, false);

          const serverNonce = nonceGen(serverPub, serverPriv);
          assertEquals(await alice.muSig2RegisterNonces(session.sessionId, [serverNonce.public]), true);
          await rejectsWith(
            alice.muSig2RegisterNonces(session.sessionId, [serverNonce.public]),
            (e) => e instanceof LndRpcError && /already have all nonces/.test(e.details),
            "a second RegisterNonces",
          );

          const sweepAddr = await net.alice.newAddress("p2tr");
          const tx = new Transaction({ version: 2 });
          tx.addInput({
            txid: depositTxid,
            index: vout,
            witnessUtxo: { amount: 250_000n, script: addr.pkScript },
            sequence: 0xffffffff,
          });
          tx.addOutput({ script: OutScript.encode(Address(REGTEST).decode(sweepAddr)), amount: 249_000n });
          const digest = tx.preimageWitnessV1(0, [addr.pkScript], 0, [250_000n]);
          const lndPartial = await alice.muSig2Sign(session.sessionId, digest);
          assertEquals(lndPartial.length, 32);

          const ctx = new Session(
            nonceAggregate([session.localPublicNonces, serverNonce.public]),
            sortKeys([client.rawKeyBytes, serverPub]),
            digest,
            [addr.tapTweak],
            [true],
          );
          const sig = ctx.partialSigAgg([lndPartial, ctx.sign(serverNonce.secret, serverPriv)]);
          assert(
            schnorr.verify(sig, digest, addr.outputKey.slice(1)),
            "aggregate signature does not verify for x(Q)",
          );
          tx.updateInput(0, { finalScriptWitness: [sig] });
          const spendTxid = await net.btcd.rpc.sendRawTransaction(tx.hex);
          assertEquals(spendTxid, tx.id);
          await net.mine(1);
          assert((await net.blockHeightOfTx(spendTxid)) !== undefined, "spend not mined");

          // lnd's cleanup: the session (cleanup=false) is known once, then "not found" counts as success.
          await alice.muSig2Cleanup(session.sessionId);
          await alice.muSig2Cleanup(session.sessionId);
          // Signing on a cleaned-up session is lnd's "not found" error.
          await rejectsWith(
            alice.muSig2Sign(session.sessionId, digest),
            (e) => e instanceof LndRpcError && /not found/.test(e.details),
            "Sign after Cleanup",
          );

          spent = { depositTxid, vout, spendTxid };
        },
      );

      await t.step(
        "GetTransactions: the deposit and its spend, previous_outpoints naming the deposit",
        async () => {
          assert(spent, "the MuSig2 step did not finish");
          const { depositTxid, vout, spendTxid } = spent;
          const depositOutpoint = `${depositTxid}:${vout}`;
          const txs = await poll("lnd to list the spend", async () => {
            const all = await alice.getTransactions();
            return all.some((x) => x.txid === spendTxid) ? all : undefined;
          });
          const byId = new Map<string, WalletTransaction>(txs.map((x) => [x.txid, x]));
          const dep = byId.get(depositTxid);
          assert(dep, "deposit transaction missing from GetTransactions");
          assertEquals(Transaction.fromRaw(dep.rawTx, { allowUnknownOutputs: true }).id, depositTxid);
          assert(dep.numConfirmations >= 2 && dep.blockHeight > 0, `deposit confs ${dep.numConfirmations}`);
          const spend = byId.get(spendTxid)!;
          assert(spend.previousOutpoints.includes(depositOutpoint), `spend lists ${spend.previousOutpoints}`);
          assertEquals(spend.numConfirmations, 1);
          // A funding tx of alice's own wallet names its inputs too (lnd fills previous_outpoints for all).
          assert(txs.filter((x) => x.previousOutpoints.length > 0).length >= 2);
          // An end height below the spend's block leaves it out.
          const upTo = await alice.getTransactions(0, spend.blockHeight - 1);
          assert(!upTo.some((x) => x.txid === spendTxid), "end height ignored");
          assert(upTo.some((x) => x.txid === depositTxid), "deposit missing below the spend's height");
        },
      );

      await t.step("AddInvoice / LookupInvoice / CancelInvoice states, bob pays", async () => {
        const preimage = crypto.getRandomValues(new Uint8Array(32));
        const hash = sha256(preimage);
        assertEquals(await alice.lookupInvoice(hash), null);
        const hop = {
          nodeId: net.bob.pubkey,
          chanId: (500n << 40n) | (1n << 16n),
          feeBaseMsat: 1000,
          feeProportionalMillionths: 100,
          cltvExpiryDelta: 80,
        };
        const added = await alice.addInvoice({
          valueMsat: 25_000_000n,
          memo: "static address loop-in",
          preimage,
          expirySec: 31_536_000,
          private: true,
          routeHints: [{ hopHints: [hop] }],
        });
        assertEquals(hex.encode(added.paymentHash), hex.encode(hash));
        const decoded = decodeInvoice(added.paymentRequest, "regtest");
        assertEquals(decoded.amountMsat, 25_000_000n);
        assertEquals(decoded.expirySec, 31_536_000);
        const sections = decodeBolt11(added.paymentRequest).sections;
        assertEquals(sections.find((s) => s.name === "description")?.value, "static address loop-in");
        const hints = sections.filter((s) => s.name === "route_hint") as unknown as {
          value: { pubkey: string; short_channel_id: string; cltv_expiry_delta: number }[];
        }[];
        assert(
          hints.some((h) =>
            h.value[0].pubkey === hop.nodeId && BigInt("0x" + h.value[0].short_channel_id) === hop.chanId
          ),
          "our route hint is not in the payment request",
        );

        const open = await alice.lookupInvoice(hash);
        assertEquals(open?.state, "OPEN");
        assertEquals(open?.valueMsat, 25_000_000n);
        assertEquals(open?.amtPaidMsat, 0n);
        assertEquals(open?.paymentRequest, added.paymentRequest);
        await rejectsWith(
          alice.addInvoice({ valueMsat: 1000n, memo: "", preimage, expirySec: 60, private: false }),
          (e) => e instanceof LndRpcError && /already exists/.test(e.details),
          "duplicate AddInvoice",
        );

        const paid = await bob.sendPaymentV2(added.paymentRequest, 100n, 30);
        assertEquals(paid.status, "SUCCEEDED", paid.failureReason);
        assertEquals(hex.encode(paid.preimage!), hex.encode(preimage));
        const settled = await poll("the invoice to settle", async () => {
          const i = await alice.lookupInvoice(hash);
          return i?.state === "SETTLED" ? i : undefined;
        });
        assertEquals(settled.amtPaidMsat, 25_000_000n);
        assert(settled.settleDate > 0);
        await rejectsWith(
          alice.cancelInvoice(hash),
          (e) => e instanceof LndRpcError && e.code === LndInvoiceErrorCode.AlreadySettled,
          "CancelInvoice on a settled invoice",
        );

        const p2 = crypto.getRandomValues(new Uint8Array(32));
        await alice.addInvoice({ valueMsat: 5_000n, memo: "", preimage: p2, expirySec: 600, private: true });
        await alice.cancelInvoice(sha256(p2));
        assertEquals((await alice.lookupInvoice(sha256(p2)))?.state, "CANCELED");
        await alice.cancelInvoice(sha256(p2)); // lnd: already canceled is success
        await rejectsWith(
          alice.cancelInvoice(sha256(hash)),
          (e) => e instanceof LndRpcError && e.code === LndInvoiceErrorCode.NotFound,
          "CancelInvoice of an unknown hash",
        );
        assertEquals(await alice.lookupInvoice(sha256(hash)), null);
      });

      await t.step(
        "an lnd restart forgets MuSig2 sessions (not found; cleanup still succeeds) and keeps invoices",
        async () => {
          const client = await alice.deriveNextKey(42060);
          const serverPriv = secp256k1.utils.randomSecretKey();
          const serverPub = secp256k1.getPublicKey(serverPriv, true);
          const addr = staticAddress({
            clientPubkey: client.rawKeyBytes,
            serverPubkey: serverPub,
            csvExpiry: 144,
            network: "regtest",
          });
          const session = await alice.muSig2CreateSession({
            keyLocator: client.keyLocator,
            allSignerPubkeys: [client.rawKeyBytes, serverPub],
            taprootScriptRoot: addr.tapLeafHash,
          });
          const preimage = crypto.getRandomValues(new Uint8Array(32));
          await alice.addInvoice({ valueMsat: 7_000n, memo: "", preimage, expirySec: 600, private: true });

          await net.alice.stop(); // closes the clients on its channel first (no GOAWAY to an open session)
          const again = await net.startNode("alice-again", { dir: net.alice.dir });
          const lnd = new GrpcLndClient(again.rpc);
          const notFound = (e: unknown) =>
            e instanceof LndRpcError && /session with ID [0-9a-f]{64} not found/.test(e.details);
          await rejectsWith(
            lnd.muSig2RegisterNonces(session.sessionId, [nonceGen(serverPub, serverPriv).public]),
            notFound,
            "RegisterNonces after restart",
          );
          await rejectsWith(
            lnd.muSig2Sign(session.sessionId, new Uint8Array(32)),
            notFound,
            "Sign after restart",
          );
          await lnd.muSig2Cleanup(session.sessionId);
          assertEquals((await lnd.lookupInvoice(sha256(preimage)))?.state, "OPEN");
          // A new session for the same keys works and has a fresh nonce.
          const fresh = await lnd.muSig2CreateSession({
            keyLocator: client.keyLocator,
            allSignerPubkeys: [client.rawKeyBytes, serverPub],
            taprootScriptRoot: addr.tapLeafHash,
          });
          assert(
            hex.encode(fresh.localPublicNonces) !== hex.encode(session.localPublicNonces),
            "nonce reused",
          );
          assertEquals(hex.encode(fresh.combinedKey), hex.encode(addr.outputKey.slice(1)));
          await lnd.muSig2Cleanup(fresh.sessionId);
        },
      );
    } finally {
      await net.stop(); // closes the nodes' gRPC channels the clients use
    }
  },
});
