/**
 * The local swap server's own transaction construction is consensus-valid: on a real regtest network (btcd
 * + lnd alice and bob), a minimal client with its own keys and MuSig2 (tests/swapserver/_test_client.ts)
 * loops in from a static address the server issued; with the `publishHtlc` knob the server publishes each
 * signed HTLC variant (standard, high, extreme — one swap each) and btcd accepts and mines it; then a paid
 * swap (bob pays alice's invoice) ends in the server's sweepless sweep, which btcd accepts and mines too,
 * with the change back at the static address.
 *
 * Ignored without the regtest binaries unless CI=true (then missing binaries fail).
 */
import * as grpc from "@grpc/grpc-js";
import { hex } from "@scure/base";
import { Buffer } from "node:buffer";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { assert, assertEquals } from "../assert.ts";
import { GrpcLndClient } from "../../lnd/grpc_client.ts";
import { HTLC_VARIANTS } from "../swapserver/loopin.ts";
import {
  buyToken,
  type ClientDeposit,
  isSweep,
  mustCall,
  newClientAddress,
  NotificationStream,
  signHtlcs,
  signSweep,
} from "../swapserver/_test_client.ts";
import { lndInvoices } from "./swap_peer.ts";
import { regtestTest } from "./suite.ts";

interface VerboseTx {
  confirmations?: number;
  vout: { n: number; value: number; scriptPubKey: { hex: string } }[];
}

regtestTest(
  "regtest: the local swap server's signed HTLC variants and sweepless sweep are accepted and mined by btcd",
  { expiry: 4032 },
  async ({ net, server }) => {
    const rpc = net.btcd.rpc;
    const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
    const stream: NotificationStream[] = [];
    try {
      const alice = new GrpcLndClient(net.alice.rpc);
      const md = await buyToken(client, async (invoice) => {
        const r = await alice.sendPaymentV2(invoice, 10n, 30);
        if (!r.preimage) throw new Error(`L402 payment ${r.status}`);
        return r.preimage;
      });
      const addr = await newClientAddress(client, md);
      const pkHex = hex.encode(addr.address.pkScript);

      // Four deposits in one funding transaction, confirmed.
      const values = [120_000n, 130_000n, 140_000n, 300_000n];
      const fundingTxid = await net.sendMany(
        values.map((amountSat) => ({ address: addr.address.address, amountSat })),
      );
      await net.mine(1);
      const funding = await rpc.call<VerboseTx>("getrawtransaction", [fundingTxid, 1]);
      const deposits: ClientDeposit[] = values.map((v) => {
        const out = funding.vout.find((o) =>
          o.scriptPubKey.hex === pkHex && BigInt(Math.round(o.value * 1e8)) === v
        )!;
        return { txid: fundingTxid, vout: out.n, valueSat: v };
      });
      const aliceInvoices = lndInvoices(net.alice);
      const initiate = async (d: ClientDeposit[], amount: bigint) => {
        const total = d.reduce((s, x) => s + x.valueSat, 0n);
        const swapAmount = amount === 0n ? total : amount;
        const q = await mustCall(client, "SwapServer", "LoopInQuote", {
          amt: swapAmount.toString(),
          numStaticAddressDeposits: d.length,
        }, md);
        const inv = await aliceInvoices.addInvoice(swapAmount - BigInt(q.swapFee), "static address loop-in");
        const req = {
          htlcClientPubKey: Buffer.from(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true)),
          swapHash: Buffer.from(inv.paymentHash),
          depositOutpoints: d.map((x) => `${x.txid}:${x.vout}`),
          swapInvoice: inv.paymentRequest,
          protocolVersion: 0,
          amount: amount.toString(),
        };
        const res = await mustCall(client, "StaticAddressServer", "ServerStaticAddressLoopIn", req, md);
        return { req, res, swapHash: inv.paymentHash, swapAmount, change: total - swapAmount, deposits: d };
      };

      // 1. One swap per variant, the server publishes that variant instead of paying.
      for (const [i, variant] of HTLC_VARIANTS.entries()) {
        server.loopIn.setKnobs({ publishHtlc: variant });
        const init = await initiate([deposits[i]], i === 0 ? 0n : deposits[i].valueSat - 20_000n);
        await mustCall(
          client,
          "StaticAddressServer",
          "PushStaticAddressHtlcSigs",
          signHtlcs(addr, init).push,
          md,
        );
        await server.loopIn.settled();
        const pub = server.loopIn.records.htlcsPublished.at(-1)!;
        assertEquals(pub.variant, variant);
        assertEquals(pub.txid, server.loopIn.signedHtlcTxs(init.swapHash)![variant].txid);
        assert((await rpc.getRawMempool()).includes(pub.txid), `${variant} HTLC in btcd's mempool`);
      }
      await net.mine(1);
      for (const pub of server.loopIn.records.htlcsPublished) {
        const tx = await rpc.call<VerboseTx>("getrawtransaction", [pub.txid, 1]);
        assertEquals(tx.confirmations, 1, `${pub.variant} HTLC mined`);
      }

      // 2. A paid swap with change: bob pays alice, the server asks for the sweepless sweep and publishes it.
      server.loopIn.setKnobs({ publishHtlc: undefined });
      const s = new NotificationStream(client, md);
      stream.push(s);
      const init = await initiate([deposits[3]], 250_000n);
      await mustCall(
        client,
        "StaticAddressServer",
        "PushStaticAddressHtlcSigs",
        signHtlcs(addr, init).push,
        md,
      );
      const request = await s.next(isSweep(init.swapHash), 0, 60_000);
      assertEquals(server.loopIn.swaps.get(hex.encode(init.swapHash))!.state, "paid");
      const sweep = signSweep(addr, request, 50_000n);
      await mustCall(client, "StaticAddressServer", "PushStaticAddressSweeplessSigs", sweep.push, md);
      const published = server.loopIn.records.sweepsPublished.at(-1)!;
      assertEquals(published.txid, sweep.tx.id);
      await net.mine(1);
      const mined = await rpc.call<VerboseTx>("getrawtransaction", [published.txid, 1]);
      assertEquals(mined.confirmations, 1);
      assert(
        mined.vout.some((o) => o.scriptPubKey.hex === pkHex && BigInt(Math.round(o.value * 1e8)) === 50_000n),
      );
    } finally {
      for (const x of stream) x.close();
      await server.loopIn.settled();
      client.close();
    }
  },
);
