/**
 * `loopkit l402 show`: the L402 token in the data directory and what lnd knows of its payment. Never prints
 * the preimage or the macaroon (either one is the credential).
 *
 * @module
 */
import type { Command } from "commander";
import { bytesToHex } from "@noble/hashes/utils.js";
import { isPaymentNotInitiated } from "../core/l402/client.ts";
import { PAID_TOKEN_FILE_NAME, parseTokenFile, PENDING_TOKEN_FILE_NAME } from "../core/l402/token_file.ts";
import { LEGACY_TOKEN_FILE_NAMES } from "../core/l402/store.ts";
import { ExitCode, LoopkitError } from "../core/errors.ts";
import type { LndClient } from "../lnd/types.ts";
import { action } from "./context.ts";
import { out, toJson } from "./output.ts";

/** How long `l402 show` follows a payment in lnd before reporting its current state, ms. */
const TRACK_WAIT_MS = 3000;

/** One token file as shown. */
interface ShownToken {
  file: string;
  state: "paid" | "pending";
  tokenId: string;
  paymentHash: string;
  createdAtNs: bigint;
  amountPaidMsat: bigint;
  routingFeePaidMsat: bigint;
  /** lnd's payment status: SUCCEEDED, FAILED, IN_FLIGHT, INITIATED, UNKNOWN, `not_found`, or null offline. */
  paymentStatus: string | null;
  failureReason: string | null;
  advice: string;
}

async function readToken(path: string): Promise<ReturnType<typeof parseTokenFile> | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new LoopkitError("l402_store_io", `Cannot read "${path}": ${(e as Error).message}`);
  }
  try {
    return parseTokenFile(bytes);
  } catch (e) {
    throw new LoopkitError(
      "l402_token_invalid",
      `Cannot parse L402 token file "${path}": ${(e as Error).message}`,
    );
  }
}

function adviceFor(state: "paid" | "pending", status: string | null): string {
  if (state === "paid") return "paid: the static address is bound to this token; it is never replaced";
  switch (status) {
    case "not_found":
      return "lnd has never seen this payment, so it was never paid: the next `loopkit address new` discards " +
        "the pending token and pays a fresh one";
    case "FAILED":
      return "the payment failed: the next `loopkit address new` discards the pending token and pays a fresh one";
    case "SUCCEEDED":
      return "the payment succeeded: the next `loopkit address new` completes the token (never pays again)";
    case null:
      return "not asked (--offline)";
    default:
      return "the payment is still in flight: run `loopkit address new` again later; never remove the file now";
  }
}

async function show(
  path: string,
  state: "paid" | "pending",
  lnd: LndClient | null,
): Promise<ShownToken | null> {
  const t = await readToken(path);
  if (!t) return null;
  let paymentStatus: string | null = null;
  let failureReason: string | null = null;
  if (lnd) {
    try {
      const r = await lnd.trackPaymentV2(t.paymentHash, { timeoutMs: TRACK_WAIT_MS });
      paymentStatus = r.status;
      if (r.status === "FAILED") failureReason = r.failureReason;
    } catch (e) {
      if (!isPaymentNotInitiated(e)) throw e;
      paymentStatus = "not_found";
    }
  }
  return {
    file: path,
    state,
    tokenId: t.tokenId,
    paymentHash: bytesToHex(t.paymentHash),
    createdAtNs: t.createdAtNs,
    amountPaidMsat: t.amountPaidMsat,
    routingFeePaidMsat: t.routingFeePaidMsat,
    paymentStatus,
    failureReason,
    advice: adviceFor(state, paymentStatus),
  };
}

/** Registers `l402` and `l402 show`. */
export function registerL402(program: Command): void {
  const l402 = program.command("l402").description("the L402 token the static address is bound to");
  l402.command("show")
    .description("show the L402 token (id, state, payment status in lnd); never the preimage or macaroon")
    .option("--offline", "do not ask lnd for the payment status")
    .action(action<{ offline?: boolean }>(async (ctx, opts) => {
      const dir = ctx.config.dataDir;
      const lnd = opts.offline ? null : (await ctx.lnd()).lnd;
      const tokens: ShownToken[] = [];
      for (
        const [name, state] of [[PAID_TOKEN_FILE_NAME, "paid"], [PENDING_TOKEN_FILE_NAME, "pending"]] as const
      ) {
        const s = await show(`${dir}/${name}`, state, lnd);
        if (s) tokens.push(s);
      }
      const legacy: string[] = [];
      for (const name of Object.keys(LEGACY_TOKEN_FILE_NAMES)) {
        if (await Deno.lstat(`${dir}/${name}`).then(() => true, () => false)) legacy.push(`${dir}/${name}`);
      }
      if (ctx.config.json) {
        out(toJson({
          tokens: tokens.map((t) => ({
            file: t.file,
            state: t.state,
            token_id: t.tokenId,
            payment_hash: t.paymentHash,
            created_at: t.createdAtNs,
            amount_paid_msat: t.amountPaidMsat,
            routing_fee_paid_msat: t.routingFeePaidMsat,
            payment_status: t.paymentStatus,
            failure_reason: t.failureReason,
            advice: t.advice,
          })),
          legacy_files: legacy,
        }));
      } else {
        if (!tokens.length) out(`no L402 token in ${dir}`);
        for (const t of tokens) {
          out(`${t.state} token ${t.tokenId} (${t.file})`);
          out(`  payment hash ${t.paymentHash}, created ${t.createdAtNs} ns`);
          if (t.state === "paid") {
            out(`  paid ${t.amountPaidMsat} msat + ${t.routingFeePaidMsat} msat routing fee`);
          }
          out(
            `  payment in lnd: ${t.paymentStatus ?? "not asked"}${
              t.failureReason ? ` (${t.failureReason})` : ""
            }`,
          );
          out(`  ${t.advice}`);
        }
        for (const p of legacy) out(`legacy LSAT-era file: ${p} (renamed to l402.token* by the next write)`);
      }
      return ExitCode.Ok;
    }));
}
