/**
 * The `--json` shape of one deposit, shared by `deposits list` and the loop-in commands (a render helper, not a
 * command file: command files never import each other).
 *
 * @module
 */
import { type Deposit, outpointOf } from "../core/deposits/types.ts";
import { blocksUntilExpiry } from "../core/deposits/expiry.ts";
import { toHex } from "./output.ts";

/**
 * JSON shape of one deposit (stable, snake_case, 64-bit as strings). `blocks_until_expiry` is Loop's RPC
 * value (spec §4.7): E while unconfirmed, C + E − tip once confirmed; absent when the tip is unknown.
 */
export function depositJson(d: Deposit, csvExpiry: number | undefined, tip: number | undefined) {
  return {
    outpoint: outpointOf(d),
    deposit_id: toHex(d.depositId),
    state: d.state,
    value_sat: d.amountSat.toString(),
    confirmation_height: String(d.confirmationHeight),
    wallet_visible: d.walletVisible,
    pk_script: toHex(d.pkScript),
    blocks_until_expiry: csvExpiry === undefined || tip === undefined
      ? undefined
      : String(blocksUntilExpiry(d.confirmationHeight, csvExpiry, tip)),
    expiry_height: csvExpiry !== undefined && d.confirmationHeight > 0
      ? String(d.confirmationHeight + csvExpiry)
      : undefined,
    // Assigned when the deposit is first swept (core/deposits/README.md); absent before.
    timeout_sweep_pk_script: d.timeoutSweepPkScript.length ? toHex(d.timeoutSweepPkScript) : undefined,
    expiry_sweep_txid: d.expirySweepTxid ?? undefined,
    swap_hash: d.swapHash ?? undefined,
    spending_txid: d.spentBy?.txid,
    spending_height: d.spentBy ? String(d.spentBy.height) : undefined,
  };
}
