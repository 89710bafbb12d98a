/**
 * BOLT 11 invoice decoding for the L402 challenge: network check, amount and payment hash.
 *
 * Parsing is done by the npm package `light-bolt11-decoder` (bech32 checksum, human-readable
 * part, amount multipliers, tagged fields). On top of it this module applies the checks lnd's
 * `zpay32.Decode` applies before paying and is stricter where a lax answer could make loopkit pay
 * for the wrong thing (project decision 4):
 * - the network prefix after `ln` must be exactly the active network's (`bc`, `tb`, `tbs` for
 *   signet, `bcrt`, `sb`), like lnd's "invoice not for current active network";
 * - the invoice must carry exactly one payment hash field, of exactly 32 bytes (lnd skips
 *   malformed ones and takes the first; two hashes are refused here);
 * - at most 7089 characters (lnd's `maxInvoiceLength`).
 *
 * The invoice signature is not verified here: lnd verifies it before paying, and the amount and
 * payment hash read here are the ones lnd reads.
 *
 * @module
 */
import { decode as decodeBolt11 } from "light-bolt11-decoder";
import { hex } from "@scure/base";
import { ExitCode, LoopkitError } from "../errors.ts";
import type { NetworkName } from "../staticaddr/network.ts";

/** lnd's `maxInvoiceLength`: longer payment requests are refused before decoding. */
export const MAX_INVOICE_LENGTH = 7089;

/**
 * Network part of the BOLT 11 human-readable part, after `ln` (BOLT 11; lnd `zpay32`: the segwit
 * HRP, except signet which uses `tbs`).
 */
export const INVOICE_NETWORK_PREFIX: Readonly<Record<NetworkName, string>> = Object.freeze({
  mainnet: "bc",
  testnet: "tb",
  testnet4: "tb",
  signet: "tbs",
  regtest: "bcrt",
  simnet: "sb",
});

/** The parts of an invoice loopkit uses. */
export interface DecodedInvoice {
  /** The network the invoice was checked against. */
  network: NetworkName;
  /** Amount in msat; null for an invoice without an amount. */
  amountMsat: bigint | null;
  /** 32-byte payment hash. */
  paymentHash: Uint8Array;
  /** Creation time, Unix seconds. */
  timestampSec: number;
  /** Expiry in seconds after the creation time (BOLT 11 default 3600). */
  expirySec: number;
}

function invalid(invoice: string, why: string): LoopkitError {
  const shown = invoice.length > 24 ? `${invoice.slice(0, 24)}…` : invoice;
  return new LoopkitError("invoice_invalid", `Cannot decode invoice "${shown}": ${why}`, ExitCode.Failure);
}

/**
 * Decodes a BOLT 11 payment request and checks that it is for `network`.
 *
 * @param invoice the payment request (`lnbc…`, `lntb…`, `lntbs…`, `lnbcrt…`, `lnsb…`), any case
 * @param network the active network
 * @returns amount (msat, or null), payment hash, timestamp and expiry
 * @throws {LoopkitError} code `invoice_invalid` naming the reason: too long, bad bech32 or
 *   checksum, not for `network`, bad amount, missing / duplicate / malformed payment hash
 * @example
 * ```ts ignore
 * const inv = decodeInvoice(paymentRequest, "regtest");
 * inv.amountMsat; // 10000n
 * ```
 */
export function decodeInvoice(invoice: string, network: NetworkName): DecodedInvoice {
  if (typeof invoice !== "string" || invoice.length === 0) throw invalid(String(invoice), "it is empty");
  if (invoice.length > MAX_INVOICE_LENGTH) {
    throw invalid(invoice, `it is ${invoice.length} characters, more than ${MAX_INVOICE_LENGTH}`);
  }
  const expected = INVOICE_NETWORK_PREFIX[network];
  if (expected === undefined) throw invalid(invoice, `unknown network ${JSON.stringify(network)}`);
  let decoded: ReturnType<typeof decodeBolt11>;
  try {
    decoded = decodeBolt11(invoice);
  } catch (e) {
    throw invalid(invoice, e instanceof Error ? e.message : String(e));
  }
  let prefix: string | undefined;
  let amount: string | undefined;
  let timestamp: number | undefined;
  let expiry: number | undefined;
  const hashes: string[] = [];
  for (const s of decoded.sections) {
    switch (s.name) {
      case "coin_network":
        prefix = s.letters;
        break;
      case "amount":
        amount = s.value;
        break;
      case "timestamp":
        timestamp = s.value;
        break;
      case "expiry":
        expiry = s.value;
        break;
      case "payment_hash":
        hashes.push(s.value);
        break;
    }
  }
  if (prefix !== expected) {
    throw invalid(
      invoice,
      `invoice is for network prefix "ln${prefix ?? ""}", not ${network} ("ln${expected}")`,
    );
  }
  if (hashes.length === 0) throw invalid(invoice, "it has no payment hash");
  if (hashes.length > 1) throw invalid(invoice, `it has ${hashes.length} payment hash fields`);
  if (!/^[0-9a-f]{64}$/.test(hashes[0])) throw invalid(invoice, "its payment hash is not 32 bytes");
  let amountMsat: bigint | null = null;
  if (amount !== undefined) {
    if (!/^[0-9]+$/.test(amount)) throw invalid(invoice, `its amount ${amount} is not a whole msat value`);
    amountMsat = BigInt(amount);
    if (amountMsat === 0n) throw invalid(invoice, "its amount is zero");
  }
  if (timestamp === undefined) throw invalid(invoice, "it has no timestamp");
  return {
    network,
    amountMsat,
    paymentHash: hex.decode(hashes[0]),
    timestampSec: timestamp,
    expirySec: expiry ?? 3600,
  };
}
