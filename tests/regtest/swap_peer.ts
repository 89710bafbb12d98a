/**
 * The local swap server on a regtest network: its L402 invoices come from bob's real lnd (AddInvoice), so
 * alice's lnd pays them over the alice→bob channel; swap invoices are paid from bob's lnd (SendPaymentV2),
 * and with `btcd` the loop-in checks deposits against and publishes to btcd. Shared by the regtest tests and
 * `deno task demo`.
 *
 * @module
 */
import { unary } from "../../lnd/rpc.ts";
import type { LndNode } from "./lnd_node.ts";
import { lndFlags } from "../cli/_harness.ts";
import { startSwapServer, type StartSwapServerOptions } from "../swapserver/server.ts";
import { BtcdChainSource, type BtcdLikeRpc } from "../swapserver/chain.ts";
import { lndInvoicePayer } from "../swapserver/lnd_payer.ts";

/** An invoice source backed by a real lnd node's `Lightning.AddInvoice`. */
export function lndInvoices(node: LndNode) {
  return {
    issued: 0,
    async addInvoice(amountSat: bigint, memo: string) {
      const res = await unary<{ payment_request: string; r_hash: Uint8Array }>(
        node.rpc.lightning,
        "AddInvoice",
        { value: amountSat.toString(), memo },
      );
      this.issued++;
      return { paymentRequest: res.payment_request, paymentHash: new Uint8Array(res.r_hash) };
    },
  };
}

/**
 * Starts the local swap server with invoices from `invoiceNode` (bob), swap payments from the same node
 * (unless `payer` is given) and, when `btcd` is given (e.g. `net.btcd.rpc`) and `chain` is not, btcd as the
 * loop-in's chain source.
 */
export async function startSwapPeer(
  invoiceNode: LndNode,
  opts: Omit<StartSwapServerOptions, "invoices"> & { btcd?: BtcdLikeRpc } = {},
) {
  const { btcd, ...rest } = opts;
  const invoices = lndInvoices(invoiceNode);
  const server = await startSwapServer({
    ...rest,
    invoices,
    payer: rest.payer ?? lndInvoicePayer(invoiceNode.rpc),
    chain: rest.chain ?? (btcd ? new BtcdChainSource(btcd) : undefined),
  });
  return { server, invoices };
}

/** Global CLI flags pointing `loopkit` at `node` with its data under `loopdir`. */
export function cliFlagsFor(node: LndNode, loopdir: string): string[] {
  return lndFlags({ ...node, macaroonPath: node.adminMacaroonPath }, loopdir);
}
