/**
 * An {@linkcode InvoicePayer} backed by a real lnd (`routerrpc.Router/SendPaymentV2` through loopkit's
 * lnd client): how the local swap server pays swap invoices in regtest (from bob's node).
 *
 * @module
 */
import { GrpcLndClient } from "../../lnd/grpc_client.ts";
import type { LndRpc } from "../../lnd/rpc.ts";
import type { InvoicePayer } from "./loopin.ts";

/** Options of {@linkcode lndInvoicePayer}. */
export interface LndInvoicePayerOptions {
  /** Routing fee limit, sat (default 100). */
  feeLimitSat?: bigint;
}

/**
 * Pays invoices from `rpc`'s node.
 *
 * @returns a payer whose `pay` resolves to the preimage of a SUCCEEDED payment and throws with lnd's
 *   status and failure reason otherwise; `invoices` lists every invoice it was asked to pay
 */
export function lndInvoicePayer(rpc: LndRpc, opts: LndInvoicePayerOptions = {}): InvoicePayer & {
  invoices: string[];
} {
  const lnd = new GrpcLndClient(rpc);
  const invoices: string[] = [];
  return {
    invoices,
    async pay(invoice: string, timeoutSec: number): Promise<Uint8Array> {
      invoices.push(invoice);
      const r = await lnd.sendPaymentV2(
        invoice,
        opts.feeLimitSat ?? 100n,
        Math.min(3600, Math.max(1, timeoutSec)),
      );
      if (r.status !== "SUCCEEDED" || !r.preimage) {
        throw new Error(`lnd payment ${r.paymentHash || "?"} ended ${r.status} (${r.failureReason})`);
      }
      return r.preimage;
    },
  };
}
