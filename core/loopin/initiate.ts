/**
 * Static loop-in quote and initiation: one invocation runs Loop's `InitHtlcTx` and `SignHtlcTx` actions
 * end to end (spec/static-loop-in.md §1.7 steps 9–29, §2.3, §2.6 item 1), with loopkit's safety rules
 * (spec/static-loop-in-review.md §1.1, §1.4, §1.5, §1.7, §5; spec/README.md decision 6).
 *
 * Order of effects in {@linkcode initiateLoopIn}, each one durable before the next starts:
 *
 * 1. quote again (deposit refresh, selection, Probe, LoopInQuote); fee cap → `swap_fee_too_high`, nothing
 *    locked;
 * 2. preimage (CSPRNG) and HTLC key (`DeriveNextKey` 42060);
 * 3. swap row created and deposits locked `Deposited → LoopingIn` in one transaction (the store's
 *    `createSwap`), this process recorded as owner — **before** the invoice exists, so a crash never
 *    leaves a live invoice nobody knows: the next `loopin sync` cancels it by the stored swap hash;
 * 4. the private invoice (`AddInvoice`), its payment request stored;
 * 5. `ServerStaticAddressLoopIn`; validation of the whole answer (server key, CLTV window and deposit
 *    runway, exactly N nonces per variant, fee guards); the sweep address; the server parameters stored
 *    (`InitHtlcTx → SignHtlcTx`);
 * 6. the deposit availability check, twice (spec §3.8);
 * 7. three HTLC transactions, 3 × N MuSig2 sessions through lnd, server nonces registered, partial
 *    signatures;
 * 8. the swap's recovery record written into the backup directory (swap_record.ts, issue 9 F8: without it
 *    nothing is pushed), the "signatures pushed" marker committed (`markArmed`), then
 *    `PushStaticAddressHtlcSigs`: from the marker on, the swap is armed whatever the push returns (review §1.1);
 * 9. `MuSig2Cleanup` of every session (always); state → `MonitorInvoiceAndHtlcTx`.
 *
 * Any failure (or an interrupt) before step 8 unwinds: an abandon push (only the swap hash) when the
 * server already answered, the invoice cancelled and the cancel acknowledged, the deposits back to
 * `Deposited` and the swap `Failed` in one transaction — with the real reason kept (review §5). When lnd does
 * not acknowledge the cancel, the swap stays in `UnlockDeposits` with its deposits locked and `loopin sync`
 * retries (review §1.7).
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { equalBytes } from "@noble/curves/utils.js";
import type { Db } from "../db/db.ts";
import { getLegacyStaticAddress, type StaticAddressRow } from "../db/static_addresses.ts";
import { listDeposits } from "../deposits/store.ts";
import { type Deposit, outpointOf } from "../deposits/types.ts";
import { addressOfRow } from "../staticaddr/new_address.ts";
import type { NetworkName } from "../staticaddr/network.ts";
import type {
  ClientHtlcSigningInfo,
  LoopInTerms,
  ServerStaticAddressLoopInResponse,
  SwapServerClient,
} from "../swapserver/client.ts";
import { ExitCode, LoopkitError, usageError } from "../errors.ts";
import type { LndClient, MuSig2Session, RouteHint, WalletTransaction } from "../../lnd/types.ts";
import { LndError } from "../../lnd/lnd_error.ts";
import {
  DEFAULT_PAYMENT_TIMEOUT_SEC,
  HTLC_KEY_FAMILY,
  HTLC_VARIANTS,
  type HtlcVariant,
  INVOICE_EXPIRY_SEC,
  INVOICE_MEMO,
  type LoopInState,
} from "./types.ts";
import { deduceSwapAmount } from "./amount.ts";
import { checkManualSelection, type SelectableDeposit, selectDeposits } from "./select.ts";
import { formatOutpoint, parseOutpoint } from "../staticaddr/outpoint.ts";
import { resolveMaxSwapFee } from "./fee_cap.ts";
import { lowConfirmationDeposits, type LowConfirmationEntry } from "./warning.ts";
import { validateLabel } from "./label.ts";
import { htlcP2wshPkScript, htlcV2Script } from "./htlc.ts";
import { buildHtlcTx, htlcFeeCapSat, type HtlcTx, keySpendSighashes } from "./htlc_tx.ts";
import { validateLoopInResponse } from "./validate_server.ts";
import { depositAvailability } from "./availability.ts";
import type { NewSwapRecord, ServerParamsRecord } from "./store.ts";
import { type LoopInSwapRecord, swapRecordOf } from "./swap_record.ts";

// ---------------------------------------------------------------------------------------------------------
// Dependencies (small interfaces; cli/loopin.ts binds them to lnd, the swap server and the store)
// ---------------------------------------------------------------------------------------------------------

/** What initiation needs from lnd: the RPCs of spec §1.3, plus NextAddr decoded to a pkScript. */
export type LoopInLnd =
  & Pick<
    LndClient,
    | "getInfo"
    | "deriveNextKey"
    | "addInvoice"
    | "cancelInvoice"
    | "lookupInvoice"
    | "getTransactions"
    | "muSig2CreateSession"
    | "muSig2RegisterNonces"
    | "muSig2Sign"
    | "muSig2Cleanup"
  >
  & {
    /** `WalletKit.NextAddr(default, TAPROOT_PUBKEY, change=false)`, decoded to its pkScript. */
    nextSweepPkScript(): Promise<Uint8Array>;
  };

/** What initiation needs from the swap server (spec §1.3): the gRPC client's loop-in calls. */
export type LoopInServer = Pick<
  SwapServerClient,
  "loopInTerms" | "probe" | "loopInQuote" | "serverStaticAddressLoopIn" | "pushStaticAddressHtlcSigs"
>;

/**
 * A new swap as {@linkcode LoopInStore.createSwap} stores it (state `InitHtlcTx`): the store's record, with the
 * owner always named (a concurrent `loopin sync` leaves the swap alone while that owner is alive).
 */
export type NewLoopInSwap = NewSwapRecord & { owner: string };

/**
 * Server parameters stored on `InitHtlcTx → SignHtlcTx` (spec §2.4 "persisted fields"): the store's record (HTLC
 * server pubkey, CLTV expiry, the three fee rates in sat/kw, the HTLC variants' txids and unsigned transactions,
 * the timeout sweep pkScript).
 */
export type LoopInServerParams = ServerParamsRecord;

/** The store operations initiation uses (E1's `core/loopin/store.ts`, adapted by the caller). */
export interface LoopInStore {
  /**
   * Creates the swap row in `InitHtlcTx` and moves every deposit `Deposited → LoopingIn` in one transaction.
   * @throws {LoopkitError} `deposit_not_available` when a deposit is not `Deposited` (another swap has it)
   */
  createSwap(swap: NewLoopInSwap): Promise<void>;
  /** Stores the payment request of the swap invoice. */
  setInvoice(swapHash: Uint8Array, paymentRequest: string): Promise<void>;
  /** Stores the server parameters and moves `InitHtlcTx → SignHtlcTx` (`OnHtlcInitiated`). */
  recordServerParams(swapHash: Uint8Array, params: LoopInServerParams): Promise<void>;
  /** Stores the HTLC variants' txids (before signing). */
  recordHtlcTxids(swapHash: Uint8Array, txids: Record<HtlcVariant, string>): Promise<void>;
  /** Commits the "signatures pushed" marker (before the first push attempt). */
  markArmed(swapHash: Uint8Array): Promise<void>;
  /**
   * One state change from `from` by `event`, with deposits as the event requires (`OnError` into
   * `Failed` releases them to `Deposited`), and the failure reason kept. Returns the new state.
   */
  transition(
    swapHash: Uint8Array,
    from: LoopInState,
    event: "OnError" | "OnHtlcTxSigned",
    opts?: { reason?: string; releaseDeposits?: boolean; set?: { invoiceCanceledAt?: Date } },
  ): Promise<LoopInState>;
  /** Clears the owner (the initiation is over; `loopin sync` may take the swap). */
  releaseOwner(swapHash: Uint8Array): Promise<void>;
  /** The stored deposit outpoints of the swap, in snapshot order (for the snapshot check, spec §1.7 step 23). */
  depositOutpoints(swapHash: Uint8Array): Promise<string[]>;
}

/** Dependencies of {@linkcode quoteLoopIn} and {@linkcode initiateLoopIn}. */
export interface LoopInDeps {
  db: Db;
  network: NetworkName;
  lnd: LoopInLnd;
  server: LoopInServer;
  /** One deposit refresh (the `deposits sync` pass). */
  refreshDeposits(): Promise<void>;
  /** Store (required by {@linkcode initiateLoopIn}). */
  store?: LoopInStore;
  /**
   * Writes the swap's recovery record durably (swap_record_file.ts `swapRecordWriter`: sealed, atomic, 0600,
   * into the backup directory) and returns its path; required by {@linkcode initiateLoopIn}, which calls it
   * before the marker: a failure means no push (issue 9 F8).
   */
  writeSwapRecord?: (record: LoopInSwapRecord) => Promise<string>;
  /** Clock. */
  now?: () => Date;
  /** CSPRNG (default `crypto.getRandomValues`). */
  randomBytes?: (n: number) => Uint8Array;
  /** Diagnostic lines (stderr). */
  log?: (line: string) => void;
  /** Interrupt (SIGINT/SIGTERM): checked at every step boundary. */
  signal?: AbortSignal;
  /** Owner tag recorded on the swap row (default `pid:<pid>`). */
  owner?: string;
  /** Test hook: called at each step boundary with the step name (kill -9 tests stop here). */
  onStep?: (step: InitiateStep) => void | Promise<void>;
  /** Test hook: may alter the signatures right before the push (the server must refuse a bad one). */
  beforePush?: (signing: Record<HtlcVariant, ClientHtlcSigningInfo>) => void;
}

/** Step boundaries of {@linkcode initiateLoopIn} (for {@linkcode LoopInDeps.onStep}). */
export type InitiateStep =
  | "quoted"
  | "created"
  | "invoice"
  | "server"
  | "params"
  | "checked"
  | "signed"
  | "armed"
  | "pushed"
  | "monitoring";

// ---------------------------------------------------------------------------------------------------------
// Quote
// ---------------------------------------------------------------------------------------------------------

/** A quote or initiation request (the CLI flags, spec §3.4). */
export interface LoopInRequest {
  /** Requested amount, sat; 0 or undefined = all of the selected deposits. */
  amountSat?: bigint;
  /** Manual selection: these outpoints, in this order. */
  outpoints?: string[];
  /** Manual selection: every selectable deposit, in listing order. */
  all?: boolean;
  fast?: boolean;
  lastHop?: Uint8Array;
  routeHints?: RouteHint[];
  private?: boolean;
  /** Loop's `initiator` (user agent suffix; default `loopkit-cli` at initiation). */
  initiator?: string;
}

/** What {@linkcode quoteLoopIn} returns. Nothing is written. */
export interface LoopInQuote {
  /** Requested amount (0 = all), sat (`QuoteRequest.amt`). */
  selectedAmountSat: bigint;
  /** Swap amount (`quoted_amt`), sat. */
  swapAmountSat: bigint;
  /** Total value of the selected deposits, sat. */
  totalDepositSat: bigint;
  /** Change back to the static address, sat (0 or ≥ 330). */
  changeSat: bigint;
  /** The server's swap fee, sat. */
  swapFeeSat: bigint;
  /** Off-chain amount received: swap amount − swap fee, sat. */
  receiveSat: bigint;
  /** The server's CLTV delta. */
  cltvDelta: number;
  /** True when the deposits were chosen automatically from the amount. */
  autoSelected: boolean;
  /** Selected deposits, in HTLC input order. */
  deposits: Deposit[];
  /** Low-confirmation warning entries (spec §3.4 step 10). */
  lowConfirmation: LowConfirmationEntry[];
  terms: LoopInTerms;
  /** Tip height the selection used. */
  tipHeight: number;
  /** Own node pubkey (33 bytes). */
  nodePubkey: Uint8Array;
  address: StaticAddressRow;
}

/** Selection mode of a request (spec §3.4 step 7). */
function selectionMode(req: LoopInRequest): "manual" | "all" | "auto" {
  const outpoints = (req.outpoints ?? []).map(canonicalOutpoint);
  if (req.all && outpoints.length) {
    throw usageError("Use either --all or --utxo, not both (cannot select all and specific utxos)");
  }
  if (req.amountSat !== undefined && req.amountSat < 0n) throw usageError("amount cannot be negative");
  if (new Set(outpoints).size !== outpoints.length) {
    throw usageError("Duplicate outpoints detected in --utxo", "duplicate_outpoints");
  }
  if (req.all) return "all";
  if (outpoints.length) return "manual";
  if ((req.amountSat ?? 0n) > 0n) return "auto";
  throw usageError(
    "Either an amount, or deposits (--utxo / --all), or both must be set (unknown quote request)",
    "unknown_quote_request",
  );
}

/** `txid:vout` in canonical form (lower-case txid), or a usage error naming `--utxo`. */
function canonicalOutpoint(o: string): string {
  try {
    return formatOutpoint(parseOutpoint(o));
  } catch (err) {
    throw usageError(`Invalid --utxo "${o}": ${(err as Error).message}`, "invalid_outpoint");
  }
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new LoopkitError("interrupted", "Interrupted", ExitCode.Interrupted);
  }
}

/**
 * Quotes a loop-in: one deposit refresh, the selection (manual `outpoints`/`all` or automatic from the
 * amount, spec §3.2, with the 1 050-block runway for both, review §1.4), the amount rules (spec §3.3),
 * `LoopInTerms` (min/max), `Probe` (errors logged, ignored) and `LoopInQuote`. Writes nothing but the
 * deposit refresh.
 *
 * @returns amounts (sat), the fee, the selected deposits and the low-confirmation entries
 * @throws {LoopkitError} usage errors for a bad selection (exit 2); `no_static_address`,
 *   `deposit_not_available`, `not_enough_deposits`, dust errors, `swap_amount_too_low` /
 *   `swap_amount_too_high` (exit 1); lnd or server unreachable (exit 75)
 */
export async function quoteLoopIn(deps: LoopInDeps, req: LoopInRequest): Promise<LoopInQuote> {
  const mode = selectionMode(req);
  if (req.private && req.routeHints?.length) {
    throw usageError("private and route hints are mutually exclusive");
  }
  await deps.refreshDeposits();
  checkAborted(deps.signal);
  const address = await getLegacyStaticAddress(deps.db);
  if (!address) {
    throw new LoopkitError(
      "no_static_address",
      "No static address in the database: run `loopkit address new` (or `loopkit recover`)",
    );
  }
  const info = await deps.lnd.getInfo();
  const tip = info.blockHeight;
  const all = await listDeposits(deps.db.client);
  const ours = all.filter((d) => equalBytes(d.pkScript, address.pkScript));
  const selectable = ours.filter((d) => d.state === "Deposited" && d.walletVisible);
  const requested = req.amountSat ?? 0n;

  // Selection works on B's SelectableDeposit view; the stored rows are mapped back by outpoint.
  const view = (d: Deposit): SelectableDeposit => ({
    outpoint: outpointOf(d),
    valueSat: d.amountSat,
    confirmationHeight: d.confirmationHeight,
    state: d.state === "Deposited" && !d.walletVisible ? "Deposited (not in lnd's wallet)" : d.state,
  });
  const byOutpoint = new Map(ours.map((d) => [outpointOf(d), d]));
  let picked: SelectableDeposit[];
  if (mode === "auto") {
    picked = selectDeposits(requested, selectable.map(view), address.expiry, tip);
  } else {
    const outpoints = mode === "all" ? selectable.map(outpointOf) : req.outpoints!.map(canonicalOutpoint);
    if (mode === "all" && outpoints.length === 0) {
      throw new LoopkitError(
        "no_deposits",
        "No deposited outputs available (fund the static address, then `loopkit deposits sync`)",
      );
    }
    picked = checkManualSelection(outpoints, ours.map(view), address.expiry, tip);
  }
  const deposits = picked.map((p) => byOutpoint.get(p.outpoint)!);
  const totalDepositSat = deposits.reduce((s, d) => s + d.amountSat, 0n);
  const { swapAmountSat, changeSat } = deduceSwapAmount(totalDepositSat, requested);

  const terms = await deps.server.loopInTerms();
  if (swapAmountSat < terms.minSwapAmountSat) {
    throw new LoopkitError(
      "swap_amount_too_low",
      `Swap amount too low: ${swapAmountSat} sat is below the server's minimum of ${terms.minSwapAmountSat} sat`,
    );
  }
  if (swapAmountSat > terms.maxSwapAmountSat) {
    throw new LoopkitError(
      "swap_amount_too_high",
      `Swap amount too high: ${swapAmountSat} sat is above the server's maximum of ${terms.maxSwapAmountSat} sat`,
    );
  }
  const nodePubkey = hexToBytes(info.identityPubkey);
  const q = await serverQuote(deps, req, swapAmountSat, deposits.length, nodePubkey);
  return {
    selectedAmountSat: requested,
    swapAmountSat,
    totalDepositSat,
    changeSat,
    swapFeeSat: q.swapFeeSat,
    receiveSat: swapAmountSat - q.swapFeeSat,
    cltvDelta: q.cltvDelta,
    autoSelected: mode === "auto",
    deposits,
    lowConfirmation: lowConfirmationDeposits({
      deposits: picked,
      csvExpiry: address.expiry,
      tipHeight: tip,
      outpoints: picked.map((p) => p.outpoint),
    }),
    terms,
    tipHeight: tip,
    nodePubkey,
    address,
  };
}

/** Probe (errors logged and ignored) then LoopInQuote (spec §1.7 steps 6–7). */
async function serverQuote(
  deps: LoopInDeps,
  req: LoopInRequest,
  amountSat: bigint,
  numDeposits: number,
  nodePubkey: Uint8Array,
): Promise<{ swapFeeSat: bigint; cltvDelta: number }> {
  try {
    await deps.server.probe({
      amtSat: amountSat,
      target: nodePubkey,
      lastHop: req.lastHop,
      routeHints: req.routeHints,
    });
  } catch (err) {
    deps.log?.(`loopkit: note: the swap server's probe failed (ignored): ${(err as Error).message}`);
  }
  checkAborted(deps.signal);
  const q = await deps.server.loopInQuote({
    amtSat: amountSat,
    pubkey: nodePubkey,
    lastHop: req.lastHop,
    routeHints: req.routeHints,
    numDeposits,
    fast: Boolean(req.fast),
    initiator: req.initiator,
  });
  if (q.swapFeeSat < 0n || q.swapFeeSat >= amountSat) {
    throw new LoopkitError(
      "swap_server_bad_answer",
      `The swap server quoted a fee of ${q.swapFeeSat} sat for a swap of ${amountSat} sat`,
    );
  }
  return q;
}

// ---------------------------------------------------------------------------------------------------------
// Initiation
// ---------------------------------------------------------------------------------------------------------

/** An initiation request: the quote request plus the fee cap and swap options (spec §3.4). */
export interface InitiateRequest extends LoopInRequest {
  /** `--max-swap-fee-sat`. */
  maxSwapFeeSat?: bigint;
  /** `--max-swap-fee-ppm`. */
  maxSwapFeePpm?: bigint;
  /** Payment timeout, seconds (0 → 60). */
  paymentTimeoutSeconds?: number;
  label?: string;
  /**
   * Called with the fresh quote before anything is locked; returning false cancels (`swap_canceled`).
   * The CLI's confirmation prompt.
   */
  confirm?: (quote: LoopInQuote, maxSwapFeeSat: bigint) => Promise<boolean>;
}

/** What {@linkcode initiateLoopIn} returns. */
export interface InitiateResult {
  swapHash: Uint8Array;
  state: LoopInState;
  /** True once the "signatures pushed" marker is committed. */
  armed: boolean;
  /** The push error, when the push failed after the marker (the swap stays armed). */
  pushError?: LoopkitError;
  quote: LoopInQuote;
  maxSwapFeeSat: bigint;
  htlcExpiry: number;
  paymentTimeoutSeconds: number;
  label: string;
  initiator: string;
  fast: boolean;
  initiationHeight: number;
  /** Invoice amount, msat. */
  invoiceValueMsat: bigint;
  paymentRequest: string;
  htlcTxids: Record<HtlcVariant, string>;
  /** Fee rates of the variants, sat/kw. */
  feeRates: Record<HtlcVariant, bigint>;
}

/**
 * A failed initiation after something was written: the swap's final state and why. `cause` keeps the real
 * reason (review §5); `exitCode` is the cause's.
 */
export class LoopInFailed extends LoopkitError {
  /** Swap hash, hex. */
  readonly swapHash: string;
  /** The swap's state after the unwind (`Failed`, or `UnlockDeposits` when the cancel was not acknowledged). */
  readonly state: LoopInState;

  constructor(swapHash: string, state: LoopInState, cause: LoopkitError, extra = "") {
    super(
      cause.code,
      `Loop-in ${swapHash} ${
        state === "Failed" ? "failed" : `stopped in ${state}`
      }: ${cause.message}${extra}`,
      cause.exitCode,
      { cause },
    );
    this.name = "LoopInFailed";
    this.swapHash = swapHash;
    this.state = state;
  }
}

function asLoopkitError(err: unknown, code = "loopin_failed"): LoopkitError {
  if (err instanceof LoopkitError) return err;
  return new LoopkitError(code, err instanceof Error ? err.message : String(err));
}

/**
 * Quotes again, applies the fee cap, then initiates and signs the loop-in in this one invocation (module
 * doc). Never two swaps for one deposit: the store's `createSwap` locks the deposits in one transaction and
 * refuses a deposit another swap holds.
 *
 * @returns the swap, armed and in `MonitorInvoiceAndHtlcTx` (or armed in `SignHtlcTx` with `pushError`
 *   when the push failed: `loopin sync` resumes it)
 * @throws {LoopkitError} before anything is written: the quote's errors, `swap_fee_too_high`, label and
 *   fee-cap usage errors, `swap_canceled`; {@linkcode LoopInFailed} after the swap row exists (unwound:
 *   `Failed`, or `UnlockDeposits` when lnd did not acknowledge the invoice cancel); an interrupt before the
 *   marker → unwound and `interrupted` (exit 130)
 */
export async function initiateLoopIn(deps: LoopInDeps, req: InitiateRequest): Promise<InitiateResult> {
  const now = deps.now ?? (() => new Date());
  const random = deps.randomBytes ?? ((n: number) => crypto.getRandomValues(new Uint8Array(n)));
  const step = async (s: InitiateStep) => {
    await deps.onStep?.(s);
  };
  const label = req.label ?? "";
  validateLabel(label);
  const initiator = req.initiator ?? "loopkit-cli";
  const paymentTimeoutSeconds = req.paymentTimeoutSeconds || DEFAULT_PAYMENT_TIMEOUT_SEC;

  // 1. Quote again (spec §1.7 steps 9–10) and the fee cap (spec §3.4 step 9): nothing locked yet.
  const quote = await quoteLoopIn(deps, req);
  const maxSwapFeeSat = resolveMaxSwapFee({
    quotedFeeSat: quote.swapFeeSat,
    amountSat: req.amountSat ?? 0n,
    quotedAmountSat: quote.swapAmountSat,
    maxSwapFeeSat: req.maxSwapFeeSat,
    maxSwapFeePpm: req.maxSwapFeePpm,
  });
  if (req.confirm && !(await req.confirm(quote, maxSwapFeeSat))) {
    throw new LoopkitError("swap_canceled", "Swap canceled", ExitCode.Failure);
  }
  checkAborted(deps.signal);
  await step("quoted");

  const store = deps.store;
  if (!store) throw new Error("initiateLoopIn: deps.store is required");

  // 2. Secrets: preimage from the CSPRNG, the HTLC client key from lnd.
  const preimage = random(32);
  if (preimage.length !== 32 || preimage.every((b) => b === 0)) {
    throw new LoopkitError("rng_failed", "The random number generator returned no usable preimage");
  }
  const swapHash = sha256(preimage);
  const hashHex = bytesToHex(swapHash);
  const htlcKey = await deps.lnd.deriveNextKey(HTLC_KEY_FAMILY);
  checkAborted(deps.signal);

  // 3. Swap row + deposit lock, one transaction, before any invoice exists.
  const outpoints = quote.deposits.map(outpointOf);
  const initiationHeight = quote.tipHeight;
  await store.createSwap({
    swapHash,
    preimage,
    htlcKey,
    depositOutpoints: outpoints,
    selectedAmountSat: quote.selectedAmountSat,
    swapAmountSat: quote.swapAmountSat,
    totalDepositSat: quote.totalDepositSat,
    quotedSwapFeeSat: quote.swapFeeSat,
    maxSwapFeeSat,
    paymentTimeoutSeconds,
    label,
    initiator,
    fast: Boolean(req.fast),
    lastHop: req.lastHop ?? null,
    initiationHeight,
    initiationTime: now(),
    staticAddressId: quote.address.id,
    owner: deps.owner ?? `pid:${Deno.pid}`,
  });

  // From here on every failure unwinds; the state we are in decides how.
  let state: LoopInState = "InitHtlcTx";
  let invoiceCreated = false;
  let serverAnswered = false;
  const unwind = async (err: unknown): Promise<never> => {
    const cause = asLoopkitError(err);
    throw await unwindSwap(deps, store, {
      swapHash,
      state,
      invoiceCreated,
      abandon: serverAnswered,
      cause,
    });
  };

  let sessions: MuSig2Session[] = [];
  let armed = false;
  try {
    await step("created");
    checkAborted(deps.signal);

    // 4. The private invoice: (swap amount − quoted fee) × 1000 msat (spec §3.6).
    const invoiceValueMsat = (quote.swapAmountSat - quote.swapFeeSat) * 1000n;
    invoiceCreated = true; // from the call on: lnd may have created it even if the answer is lost
    const invoice = await deps.lnd.addInvoice({
      memo: INVOICE_MEMO,
      preimage,
      valueMsat: invoiceValueMsat,
      expirySec: INVOICE_EXPIRY_SEC,
      private: true,
      routeHints: req.routeHints,
    });
    if (!equalBytes(invoice.paymentHash, swapHash)) {
      throw new LoopkitError(
        "lnd_bad_answer",
        "lnd's AddInvoice answered a payment hash that is not the swap hash",
      );
    }
    await store.setInvoice(swapHash, invoice.paymentRequest);
    await step("invoice");
    checkAborted(deps.signal);

    // 5. The server call. An error here: invoice cancelled and deposits released. Spec §6 sends no abandon push,
    // but only an answer proves what the server did: a timeout (review §3, #922), a connection reset after the
    // request was sent (UNAVAILABLE) or a server error may all come after the server registered the swap. So
    // every error sends the abandon push (only the swap hash: harmless for a swap the server does not know),
    // except one proving no gRPC server took the request (TLS failure, not a gRPC endpoint).
    let res: ServerStaticAddressLoopInResponse;
    try {
      res = await deps.server.serverStaticAddressLoopIn({
        htlcClientPubKey: htlcKey.rawKeyBytes,
        swapHash,
        depositOutpoints: outpoints,
        swapInvoice: invoice.paymentRequest,
        lastHop: req.lastHop,
        paymentTimeoutSeconds,
        amountSat: quote.selectedAmountSat,
        fast: Boolean(req.fast),
        initiator,
      });
    } catch (err) {
      const e = asLoopkitError(err);
      serverAnswered = !NEVER_REACHED_SERVER.has(e.code);
      throw new LoopkitError(
        e.code,
        `Unable to initiate the loop-in with the server: ${e.message}`,
        e.exitCode,
        { cause: e },
      );
    }
    serverAnswered = true;
    await step("server");
    checkAborted(deps.signal);

    const address = addressOfRow(quote.address, deps.network);
    const confirmed = quote.deposits.filter((d) => d.confirmationHeight > 0);
    const v = validateLoopInResponse(res, {
      initiationHeight,
      numDeposits: quote.deposits.length,
      swapAmountSat: quote.swapAmountSat,
      changeSat: quote.changeSat,
      earliestConfirmedDepositExpiryHeight: confirmed.length
        ? Math.min(...confirmed.map((d) => d.confirmationHeight + quote.address.expiry))
        : null,
      csvExpiry: quote.address.expiry,
      hasUnconfirmedDeposits: confirmed.length < quote.deposits.length,
    });
    const timeoutSweepPkScript = await deps.lnd.nextSweepPkScript();
    const htlcScript = htlcV2Script({
      senderPubkey: htlcKey.rawKeyBytes,
      receiverPubkey: v.serverHtlcPubkey,
      swapHash,
      cltvExpiry: v.htlcExpiry,
    });
    const htlcPkScript = htlcP2wshPkScript(htlcScript);
    const txs = {} as Record<HtlcVariant, HtlcTx>;
    const htlcTxids = {} as Record<HtlcVariant, string>;
    for (const variant of HTLC_VARIANTS) {
      txs[variant] = buildHtlcTx({
        deposits: quote.deposits.map((d) => ({ txid: d.txid, vout: d.vout, valueSat: d.amountSat })),
        swapAmountSat: quote.swapAmountSat,
        changeSat: quote.changeSat,
        feeRateSatPerKw: v.feeRates[variant],
        htlcPkScript,
        staticPkScript: address.pkScript,
        maxFeeSat: htlcFeeCapSat(variant, quote.swapAmountSat),
      });
      htlcTxids[variant] = txs[variant].txid;
    }
    await store.recordServerParams(swapHash, {
      htlcServerPubKey: v.serverHtlcPubkey,
      htlcExpiry: v.htlcExpiry,
      feeRates: v.feeRates,
      htlcTxids,
      htlcTxs: {
        standard: txs.standard.tx,
        high: txs.high.tx,
        extreme: txs.extreme.tx,
      },
      timeoutSweepPkScript,
    });
    state = "SignHtlcTx";
    await step("params");
    checkAborted(deps.signal);

    // 6. Availability, twice (spec §1.7 steps 21, 23): a deposit gone ⇒ no signatures.
    await checkAvailability(deps, outpoints);
    const stored = await store.depositOutpoints(swapHash);
    if (stored.length !== outpoints.length || stored.some((o, i) => o !== outpoints[i])) {
      throw new LoopkitError(
        "deposit_snapshot_mismatch",
        `Deposit outpoint snapshot [${outpoints.join(", ")}] differs from the stored deposits [${
          stored.join(", ")
        }]`,
      );
    }
    await checkAvailability(deps, stored);
    await step("checked");
    checkAborted(deps.signal);

    // 7. 3 × N MuSig2 sessions through lnd (spec §4.4), nonces, partial signatures.
    const signing: Partial<Record<HtlcVariant, ClientHtlcSigningInfo>> = {};
    for (const variant of HTLC_VARIANTS) {
      const sighashes = keySpendSighashes(
        txs[variant].tx,
        quote.deposits.map((d) => ({ valueSat: d.amountSat, pkScript: d.pkScript })),
      );
      const nonces: Uint8Array[] = [];
      const sigs: Uint8Array[] = [];
      for (let i = 0; i < quote.deposits.length; i++) {
        const s = await deps.lnd.muSig2CreateSession({
          keyLocator: { family: quote.address.clientKeyFamily, index: quote.address.clientKeyIndex },
          allSignerPubkeys: [quote.address.clientPubkey, quote.address.serverPubkey],
          taprootScriptRoot: address.tapLeafHash,
        });
        sessions.push(s);
        const haveAll = await deps.lnd.muSig2RegisterNonces(s.sessionId, [v.nonces[variant][i]]);
        if (!haveAll) {
          throw new LoopkitError(
            "musig2_nonces_missing",
            `Invalid MuSig2 session: lnd still misses nonces after registering the server's ${variant} nonce ` +
              `for deposit ${outpoints[i]}`,
          );
        }
        const sig = await deps.lnd.muSig2Sign(s.sessionId, sighashes[i]);
        if (sig.length !== 32) {
          throw new LoopkitError(
            "lnd_bad_answer",
            `lnd returned a ${sig.length}-byte MuSig2 partial signature`,
          );
        }
        nonces.push(s.localPublicNonces);
        sigs.push(sig);
      }
      signing[variant] = { nonces, sigs };
    }
    await step("signed");
    checkAborted(deps.signal);

    // 8. The recovery record (issue 9 F8), then the marker, then the push. From the marker on the swap is
    // armed (review §1.1); without a durable record it never is: a write failure unwinds like any other.
    await writeRecoveryRecord(deps, {
      network: deps.network,
      swapHash,
      preimage,
      htlcKey,
      quote,
      maxSwapFeeSat,
      paymentTimeoutSeconds,
      fast: Boolean(req.fast),
      label,
      initiator,
      lastHop: req.lastHop ?? null,
      initiationTime: now(),
      htlcServerPubkey: v.serverHtlcPubkey,
      htlcExpiry: v.htlcExpiry,
      feeRates: v.feeRates,
      htlcTxs: txs,
      timeoutSweepPkScript,
      swapInvoice: invoice.paymentRequest,
    });
    await store.markArmed(swapHash);
    armed = true;
    await step("armed");
    deps.beforePush?.(signing as Record<HtlcVariant, ClientHtlcSigningInfo>);
    let pushError: LoopkitError | undefined;
    try {
      await deps.server.pushStaticAddressHtlcSigs({
        swapHash,
        standard: signing.standard,
        high: signing.high,
        extreme: signing.extreme,
      });
    } catch (err) {
      pushError = asLoopkitError(err);
    }
    await step("pushed");
    if (!pushError) {
      try {
        state = await store.transition(swapHash, "SignHtlcTx", "OnHtlcTxSigned");
      } catch (err) {
        // Armed in SignHtlcTx: the next `loopin sync` resumes it in the monitor state (fsm.ts recoveryEvent).
        deps.log?.(
          `loopkit: note: swap ${hashHex} is armed but its move to MonitorInvoiceAndHtlcTx was not written ` +
            `(${(err as Error).message}); \`loopkit loopin sync\` resumes it`,
        );
      }
    }
    await step("monitoring");
    return {
      swapHash,
      state,
      armed,
      pushError,
      quote,
      maxSwapFeeSat,
      htlcExpiry: v.htlcExpiry,
      paymentTimeoutSeconds,
      label,
      initiator,
      fast: Boolean(req.fast),
      initiationHeight,
      invoiceValueMsat,
      paymentRequest: invoice.paymentRequest,
      htlcTxids,
      feeRates: v.feeRates,
    };
  } catch (err) {
    if (armed) {
      // Armed: never unwind; `loopin sync` takes it from here (review §1.1).
      throw err;
    }
    return await unwind(err);
  } finally {
    await cleanupSessions(deps, sessions);
    sessions = [];
    await store.releaseOwner(swapHash).catch((err) =>
      deps.log?.(`loopkit: note: could not clear the owner of swap ${hashHex}: ${(err as Error).message}`)
    );
  }
}

/**
 * Swap-server error codes (core/swapserver/client.ts) proving the loop-in request reached no gRPC server, so the
 * server cannot have registered the swap and needs no abandon push. Every other error is ambiguous.
 */
const NEVER_REACHED_SERVER: ReadonlySet<string> = new Set(["swap_server_tls", "swap_server_protocol"]);

/**
 * Step 8's recovery record: built from the initiation's values ({@linkcode swapRecordOf}) and written through
 * `deps.writeSwapRecord`, before the marker (issue 9 F8).
 * @throws {LoopkitError} `swap_record_writer_missing` when no writer is given (a swap is never armed without
 *   its record); the writer's errors as is (`swap_record_write_failed` naming the path, `data_dir_unwritable`)
 */
async function writeRecoveryRecord(
  deps: LoopInDeps,
  source: Parameters<typeof swapRecordOf>[0],
): Promise<void> {
  if (!deps.writeSwapRecord) {
    throw new LoopkitError(
      "swap_record_writer_missing",
      "No swap recovery record writer (deps.writeSwapRecord): refusing to arm a loop-in whose HTLC parameters " +
        "would live only in the database",
    );
  }
  await deps.writeSwapRecord(swapRecordOf(source));
}

/** `MuSig2Cleanup` for every session; failures are logged (lnd drops them on restart anyway). */
async function cleanupSessions(deps: LoopInDeps, sessions: MuSig2Session[]): Promise<void> {
  for (const s of sessions) {
    try {
      await deps.lnd.muSig2Cleanup(s.sessionId);
    } catch (err) {
      deps.log?.(
        `loopkit: note: MuSig2Cleanup of session ${bytesToHex(s.sessionId)} failed: ${
          (err as Error).message
        }`,
      );
    }
  }
}

/**
 * The availability check (spec §3.8): every outpoint must be a live, unspent wallet output per
 * `GetTransactions`.
 * @throws {LoopkitError} `deposit_unavailable` (exit 1) when one is gone; `deposit_check_failed` (exit 75)
 *   when lnd's answer cannot be read
 */
async function checkAvailability(deps: LoopInDeps, outpoints: string[]): Promise<void> {
  let txs: WalletTransaction[];
  try {
    txs = await deps.lnd.getTransactions();
  } catch (err) {
    const e = asLoopkitError(err);
    throw new LoopkitError(
      "deposit_check_failed",
      `Unable to check the deposits (GetTransactions): ${e.message}`,
      ExitCode.TempFail,
      { cause: e },
    );
  }
  let missing: string[];
  try {
    missing = depositAvailability(outpoints, txs).missing;
  } catch (err) {
    throw new LoopkitError(
      "deposit_check_failed",
      `Unable to check the deposits: ${(err as Error).message}`,
      ExitCode.TempFail,
      { cause: err },
    );
  }
  const gone = missing;
  if (gone.length) {
    throw new LoopkitError(
      "deposit_unavailable",
      `Deposit ${gone.join(", ")} is no longer available (spent or not in lnd's wallet); nothing was signed`,
    );
  }
}

/** After a cancel error: true when `LookupInvoice` reads the invoice CANCELED or unknown (a failed read: false). */
async function invoiceGone(deps: LoopInDeps, swapHash: Uint8Array): Promise<boolean> {
  try {
    const inv = await deps.lnd.lookupInvoice(swapHash);
    return inv === null || inv.state === "CANCELED";
  } catch {
    return false;
  }
}

/**
 * The unwind of a swap that was never armed: abandon push (when the server answered), invoice cancel
 * (acknowledged), then deposits back and `Failed` in one transaction. Returns the error to throw.
 */
async function unwindSwap(
  deps: LoopInDeps,
  store: LoopInStore,
  s: {
    swapHash: Uint8Array;
    state: LoopInState;
    invoiceCreated: boolean;
    abandon: boolean;
    cause: LoopkitError;
  },
): Promise<LoopkitError> {
  const hashHex = bytesToHex(s.swapHash);
  const notes: string[] = [];
  if (s.abandon) {
    try {
      await deps.server.pushStaticAddressHtlcSigs({ swapHash: s.swapHash });
    } catch (err) {
      notes.push(`the abandon push failed: ${(err as Error).message}`);
    }
  }
  let state: LoopInState;
  try {
    state = await store.transition(s.swapHash, s.state, "OnError", { reason: s.cause.message });
  } catch (err) {
    notes.push(
      `recording the failure failed: ${(err as Error).message}; \`loopkit loopin sync\` finishes it`,
    );
    return new LoopInFailed(hashHex, s.state, s.cause, `; ${notes.join("; ")}`);
  }
  let cancelled = !s.invoiceCreated;
  if (s.invoiceCreated) {
    try {
      await deps.lnd.cancelInvoice(s.swapHash);
      cancelled = true;
    } catch (err) {
      if (err instanceof LndError && err.code === "lnd_invoice_not_found") {
        cancelled = true; // lnd never stored it: nothing anyone could pay
      } else if (!(err instanceof LndError && err.code === "lnd_invoice_settled")) {
        // Not an answer about the invoice: lnd's own state decides (review §1.7: acknowledged = read back).
        cancelled = await invoiceGone(deps, s.swapHash);
      }
      if (!cancelled) {
        notes.push(
          `lnd did not acknowledge the invoice cancel (${(err as Error).message}); the deposits stay ` +
            "locked until `loopkit loopin sync` cancels it",
        );
      }
    }
  }
  if (cancelled) {
    try {
      state = await store.transition(s.swapHash, state, "OnError", {
        reason: s.cause.message,
        releaseDeposits: true,
        ...(s.invoiceCreated ? { set: { invoiceCanceledAt: (deps.now ?? (() => new Date()))() } } : {}),
      });
    } catch (err) {
      notes.push(`releasing the deposits failed: ${(err as Error).message}; \`loopkit loopin sync\` retries`);
    }
  }
  if (state === "Failed") notes.push("deposits released");
  return new LoopInFailed(hashHex, state, s.cause, notes.length ? `; ${notes.join("; ")}` : "");
}
