/**
 * `loopkit recover deposit`: brings back one static-address deposit from on-chain data when lnd's
 * wallet cannot see it (an lnd rebuilt from its seed does not rescan the chain for imported tapscripts).
 * Loop's `RecoverDeposit` (spec/backup-and-recovery.md §7.2 [R2]) with loopkit's stricter checks:
 *
 * 1. the request is checked before any lnd call (outpoint, positive height hint, P2TR pkScript);
 * 2. a given pkScript must be one of ours (a stored row, or a child 0..20 of the legacy, receive or change
 *    family built with the stored server key and expiry) before anything waits on the chain;
 * 3. lnd's chain notifier confirms the transaction from the height hint (bounded wait); the output is
 *    read from the raw transaction in the confirmation: txid, vout, script, value > 0;
 * 3a. lnd's spend notifier is asked whether the output was spent since its block (short bounded wait): a
 *    reported spend refuses the recovery (`deposit_already_spent`). lnd's historical spend dispatch
 *    answers at once for a spend already in the chain, but "no spend seen within the wait" is not proof
 *    the output is unspent;
 * 4. a child address not stored yet is imported into lnd, then stored (initiation height = height hint);
 * 5. the deposit is created (`Deposited`, first-confirmation height of the block, history row) or an
 *    existing one with the same value is re-activated (`Replaced` → `Deposited`) and its height fixed.
 *
 * Steps 4–5 write in one database transaction; on any earlier failure nothing is written.
 *
 * @module
 */
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { Transaction } from "@scure/btc-signer";
import type { KeyLocator, LndClient } from "../../lnd/types.ts";
import { type Db, dbError } from "../db/db.ts";
import {
  insertStaticAddress,
  listStaticAddresses,
  type NewStaticAddress,
  type StaticAddressRow,
} from "../db/static_addresses.ts";
import { ExitCode, LoopkitError } from "../errors.ts";
import type { NetworkName } from "../staticaddr/network.ts";
import { type Outpoint, parseOutpoint } from "../staticaddr/outpoint.ts";
import { type StaticAddress, staticAddress } from "../staticaddr/script.ts";
import { addressOfRow, STATIC_ADDRESS_KEY_FAMILY } from "../staticaddr/new_address.ts";
import { applyDepositUpdate, insertDeposit, listDeposits } from "./store.ts";
import { type Deposit, type DepositState, outpointOf } from "./types.ts";
import type { DepositUpdatePlan } from "./reconcile.ts";
import { equalBytes } from "@noble/curves/utils.js";
import { DEFAULT_CLIENT_KEY_SCAN_LIMIT, deriveInOrder } from "../backup/scan.ts";

/** Receive and change families scanned besides the legacy one (spec/static-address-and-deposits.md §1). */
export const RECOVERY_SCAN_FAMILIES: readonly number[] = [42061, 42062];

/**
 * Highest child index tried per family by default (`--key-scan-limit`). Loop's `DefaultRecoveryScanLimit`
 * (spec/backup-and-recovery.md §0) is 20; family 42060 also supplies every loop-in HTLC key, so loopkit
 * searches well past it ({@linkcode DEFAULT_CLIENT_KEY_SCAN_LIMIT}, pipelined).
 */
export const RECOVERY_SCAN_LIMIT = DEFAULT_CLIENT_KEY_SCAN_LIMIT;

/**
 * Highest child index `recover deposit` asks lnd to watch per key family when no `--pkscript` is given (Loop's
 * gap of 20): each candidate is one `RegisterConfirmationsNtfn` in lnd, so the key search depth of
 * {@linkcode RECOVERY_SCAN_LIMIT} (1 000) would be 3 000 watches.
 */
export const CANDIDATE_WATCH_LIMIT = 20;

/** Default bound of the wait for lnd's confirmation event, ms. */
export const DEFAULT_RECOVER_DEPOSIT_WAIT_MS = 60_000;

/**
 * Default bound of the wait for lnd's spend event, ms. lnd answers a registration for an output spent
 * in an earlier block at once (historical dispatch), so a few seconds suffice; the wait is not proof.
 */
export const DEFAULT_RECOVER_DEPOSIT_SPEND_WAIT_MS = 5_000;

const MAX_HEIGHT = 2 ** 31 - 1;

/** A checked `recover deposit` request. */
export interface RecoverDepositRequest {
  outpoint: Outpoint;
  /** A height at or before the transaction's block (lnd scans from here). */
  heightHint: number;
  /** The output's pkScript, 34-byte P2TR; when absent every stored static-address script is tried. */
  pkScript?: Uint8Array;
}

function usage(message: string): LoopkitError {
  return new LoopkitError("usage", message, ExitCode.Usage);
}

/**
 * Checks the flags before any lnd call (spec §7.2 request validation, stricter: the outpoint spelling
 * of core/staticaddr/outpoint.ts).
 *
 * @param outpoint `--outpoint TXID:VOUT`
 * @param heightHint `--height-hint` as typed
 * @param pkScriptHex `--pkscript`, hex with an optional `0x`
 * @throws {LoopkitError} exit 2: `invalid_outpoint`, `--height-hint must be positive …` (0 or negative),
 *   `… must be a whole block height` (not digits: `1.5`), `… is above the highest block height` (> 2^31 − 1),
 *   `invalid --pkscript …`, `--pkscript must encode a P2TR pkScript …`
 */
export function parseRecoverDepositRequest(
  outpoint: string,
  heightHint: string,
  pkScriptHex?: string,
): RecoverDepositRequest {
  const op = parseOutpoint(outpoint);
  const give = "give a block height at or before the deposit's block";
  if (/^-?0*$/.test(heightHint) || /^-[0-9]+$/.test(heightHint)) {
    throw usage(`--height-hint must be positive: got "${heightHint}"; ${give}`);
  }
  if (!/^[0-9]+$/.test(heightHint)) {
    throw usage(`--height-hint must be a whole block height (digits only): got "${heightHint}"; ${give}`);
  }
  if (Number(heightHint) > MAX_HEIGHT) {
    throw usage(
      `--height-hint ${heightHint} is above the highest block height loopkit accepts (${MAX_HEIGHT}); ${give}`,
    );
  }
  const req: RecoverDepositRequest = { outpoint: op, heightHint: Number(heightHint) };
  if (pkScriptHex !== undefined) {
    const h = pkScriptHex.startsWith("0x") ? pkScriptHex.slice(2) : pkScriptHex;
    let script: Uint8Array;
    try {
      if (h.length === 0 || !/^[0-9a-fA-F]*$/.test(h)) throw new Error("not hex");
      script = hexToBytes(h);
    } catch {
      throw usage(`invalid --pkscript "${pkScriptHex}": not an even number of hex digits`);
    }
    if (script.length !== 34 || script[0] !== 0x51 || script[1] !== 0x20) {
      throw usage(
        `--pkscript must encode a P2TR pkScript (34 bytes starting 5120): got ${script.length} bytes ` +
          `"${bytesToHex(script)}"`,
      );
    }
    req.pkScript = script;
  }
  return req;
}

/** What `recover deposit` needs from lnd. */
export type RecoverDepositLnd =
  & Pick<
    LndClient,
    "registerConfirmation" | "registerSpend" | "deriveKey" | "importTapscript" | "listUnspent"
  >
  & {
    /** A fresh wallet pkScript for the deposit's expiry sweep (`WalletKit.NextAddr`, decoded). */
    nextSweepPkScript(): Promise<Uint8Array>;
  };

/** Dependencies of {@linkcode recoverDeposit}. */
export interface RecoverDepositDeps {
  db: Db;
  lnd: RecoverDepositLnd;
  network: NetworkName;
  /** Bound of the wait for the confirmation, ms (default 60 s). */
  waitMs?: number;
  /** Bound of the wait for a spend event, ms (default {@linkcode DEFAULT_RECOVER_DEPOSIT_SPEND_WAIT_MS}). */
  spendWaitMs?: number;
  /** Highest child index tried per family when the pkScript is not stored (default 1 000; Loop's is 20). */
  scanLimit?: number;
  now?: () => Date;
  randomId?: () => Uint8Array;
}

/** Result of {@linkcode recoverDeposit} (Loop's `RecoverDepositResponse` plus loopkit's state fields). */
export interface RecoverDepositResult {
  outpoint: string;
  valueSat: bigint;
  /** Height of the block holding the transaction (the deposit's first-confirmation height). */
  confirmationHeight: number;
  keyLocator: KeyLocator;
  staticAddress: string;
  pkScript: Uint8Array;
  /** A static-address row was created or lnd newly imported its tapscript. */
  recoveredAddress: boolean;
  /** The deposit was created, re-activated, or its height corrected. */
  recoveredDeposit: boolean;
  depositId: Uint8Array;
  state: DepositState;
  /** lnd's wallet lists the output (false after an lnd rebuilt from seed: it does not rescan). */
  walletVisible: boolean;
}

function refused(code: string, message: string, exitCode: 1 | 75 = ExitCode.Failure): LoopkitError {
  return new LoopkitError(code, message, exitCode);
}

/** Address parameters matched to a pkScript: a stored row, or a child to store. */
interface MatchedAddress {
  row: NewStaticAddress;
  address: StaticAddress;
  stored: boolean;
}

/** The key families a child address is searched in: the legacy row's family, then 42061, 42062 (deduplicated). */
function scanFamilies(seed: StaticAddressRow): number[] {
  return [seed.clientKeyFamily || STATIC_ADDRESS_KEY_FAMILY, ...RECOVERY_SCAN_FAMILIES]
    .filter((f, i, all) => all.indexOf(f) === i);
}

/** `scan_derive_failed`: lnd could not derive child `family:index`. */
function deriveFailed(family: number, index: number, err: unknown): LoopkitError {
  return new LoopkitError(
    "scan_derive_failed",
    `unable to derive static address child ${family}:${index}: ${(err as Error).message ?? err}`,
    err instanceof LoopkitError ? err.exitCode : ExitCode.Failure,
    { cause: err },
  );
}

/**
 * The child address `family:index` (client key `key`) built with the legacy row's server key, expiry and
 * protocol version, as a not-yet-stored row with initiation height = the height hint.
 */
function childAddress(
  seed: StaticAddressRow,
  key: { rawKeyBytes: Uint8Array },
  family: number,
  index: number,
  heightHint: number,
  network: NetworkName,
): MatchedAddress {
  const address = staticAddress({
    clientPubkey: key.rawKeyBytes,
    serverPubkey: seed.serverPubkey,
    csvExpiry: seed.expiry,
    network,
  });
  return {
    address,
    stored: false,
    row: {
      clientPubkey: key.rawKeyBytes.slice(),
      serverPubkey: seed.serverPubkey,
      expiry: seed.expiry,
      clientKeyFamily: family,
      clientKeyIndex: index,
      pkScript: address.pkScript,
      protocolVersion: seed.protocolVersion,
      initiationHeight: heightHint,
    },
  };
}

/**
 * Finds our address for `pkScript` (spec §7.2 algorithm step 2): a stored row wins; otherwise the
 * families `[legacy family, 42061, 42062]` (deduplicated), indexes 0..scanLimit (pipelined), built with the legacy row's
 * server key, expiry and protocol version; initiation height = the height hint.
 *
 * @param scanLimit highest index tried per family (default {@linkcode RECOVERY_SCAN_LIMIT})
 * @returns the match, or null when none of the candidates has this pkScript
 * @throws {LoopkitError} `scan_derive_failed` (`unable to derive static address child %d:%d: …`)
 */
export async function findOurAddress(
  rows: readonly StaticAddressRow[],
  pkScript: Uint8Array,
  lnd: Pick<LndClient, "deriveKey">,
  network: NetworkName,
  heightHint: number,
  scanLimit: number = RECOVERY_SCAN_LIMIT,
): Promise<MatchedAddress | null> {
  const stored = rows.find((r) => equalBytes(r.pkScript, pkScript));
  if (stored) return { row: stored, address: addressOfRow(stored, network), stored: true };
  const seed = rows[0];
  if (!seed) return null;
  for (const family of scanFamilies(seed)) {
    for await (const d of deriveInOrder(lnd, family, 0, scanLimit)) {
      if (!d.ok) throw deriveFailed(family, d.index, d.error);
      const m = childAddress(seed, d.key, family, d.index, heightHint, network);
      if (equalBytes(m.address.pkScript, pkScript)) return m;
    }
  }
  return null;
}

/**
 * Every address `recover deposit` would match (spec §7.2 step 2), without a pkScript to look for: the stored
 * rows, then each child `[legacy family, 42061, 42062]` × 0..`scanLimit` that is not stored (derived pipelined and
 * built like {@linkcode findOurAddress} builds it). Without `--pkscript` lnd is asked about all of them at once, so a
 * deposit to a child the database does not hold confirms at once instead of after the whole wait.
 *
 * @throws {LoopkitError} `scan_derive_failed` as {@linkcode findOurAddress}
 */
export async function scanCandidates(
  rows: readonly StaticAddressRow[],
  lnd: Pick<LndClient, "deriveKey">,
  network: NetworkName,
  heightHint: number,
  scanLimit: number = RECOVERY_SCAN_LIMIT,
): Promise<MatchedAddress[]> {
  const out: MatchedAddress[] = rows.map((r) => ({
    row: r,
    address: addressOfRow(r, network),
    stored: true,
  }));
  const seen = new Set(out.map((m) => bytesToHex(m.address.pkScript)));
  const seed = rows[0];
  if (!seed) return out;
  for (const family of scanFamilies(seed)) {
    for await (const d of deriveInOrder(lnd, family, 0, scanLimit)) {
      if (!d.ok) throw deriveFailed(family, d.index, d.error);
      const m = childAddress(seed, d.key, family, d.index, heightHint, network);
      const hex = bytesToHex(m.address.pkScript);
      if (seen.has(hex)) continue;
      seen.add(hex);
      out.push(m);
    }
  }
  return out;
}

/** The confirmed output, read from lnd's confirmation event. */
interface ConfirmedOutput {
  pkScript: Uint8Array;
  valueSat: bigint;
  blockHeight: number;
}

/**
 * Waits for lnd's confirmation of the outpoint's transaction with `pkScript` and checks the output
 * (spec §7.2 step 1).
 * @returns the output, or null when lnd did not confirm within the wait
 */
async function confirmOutput(
  lnd: RecoverDepositLnd,
  req: RecoverDepositRequest,
  pkScript: Uint8Array,
  waitMs: number,
): Promise<ConfirmedOutput | null> {
  const conf = await lnd.registerConfirmation(req.outpoint.txid, pkScript, 1, req.heightHint, {
    timeoutMs: waitMs,
  });
  if (conf === null) return null;
  const op = `${req.outpoint.txid}:${req.outpoint.vout}`;
  if (!conf.rawTx || conf.rawTx.length === 0) {
    throw refused("deposit_unconfirmed", `missing confirmation transaction: lnd confirmed ${op} without it`);
  }
  if (!(conf.blockHeight > 0)) {
    throw refused("deposit_unconfirmed", `missing confirmation height: lnd confirmed ${op} at height 0`);
  }
  let tx: Transaction;
  try {
    tx = Transaction.fromRaw(conf.rawTx, {
      allowUnknownOutputs: true,
      allowUnknownInputs: true,
      disableScriptCheck: true,
    });
  } catch (e) {
    throw refused(
      "lnd_bad_answer",
      `Cannot parse the transaction lnd confirmed for ${op}: ${(e as Error).message}`,
    );
  }
  if (tx.id !== req.outpoint.txid) {
    throw refused(
      "lnd_bad_answer",
      `confirmation txid ${tx.id} does not match requested txid ${req.outpoint.txid}`,
    );
  }
  if (req.outpoint.vout >= tx.outputsLength) {
    throw refused(
      "deposit_not_ours",
      `vout ${req.outpoint.vout} not found in transaction ${req.outpoint.txid} (it has ${tx.outputsLength} outputs)`,
    );
  }
  const out = tx.getOutput(req.outpoint.vout);
  const script = out.script ?? new Uint8Array();
  if (!equalBytes(script, pkScript)) {
    throw refused(
      "deposit_not_ours",
      `confirmed output pkScript mismatch: ${op} pays ${bytesToHex(script)}, not ${bytesToHex(pkScript)}`,
    );
  }
  const value = out.amount ?? 0n;
  if (value <= 0n) throw refused("deposit_not_ours", `confirmed output has invalid value ${value}`);
  return { pkScript: script, valueSat: value, blockHeight: conf.blockHeight };
}

/**
 * Recovers one deposit (module doc). Idempotent: a second run finds the deposit in place and reports
 * `recoveredDeposit: false`.
 *
 * @throws {LoopkitError} `no_static_address` (nothing to match against: run `recover` first),
 *   `deposit_not_ours` (pkScript not ours, output paying another script, wrong vout, value ≤ 0),
 *   `deposit_unconfirmed` (not confirmed within the wait), `deposit_already_spent` (lnd reports a
 *   spend of the output; exit 1, nothing written), `deposit_conflict` (an existing deposit
 *   with another value or in another state), lnd errors (exit 75 when unreachable), `db_busy`/`db_error`
 */
export async function recoverDeposit(
  deps: RecoverDepositDeps,
  req: RecoverDepositRequest,
): Promise<RecoverDepositResult> {
  const now = deps.now ?? (() => new Date());
  const randomId = deps.randomId ?? (() => crypto.getRandomValues(new Uint8Array(32)));
  const waitMs = deps.waitMs ?? DEFAULT_RECOVER_DEPOSIT_WAIT_MS;
  const scanLimit = deps.scanLimit ?? RECOVERY_SCAN_LIMIT;
  const op = `${req.outpoint.txid}:${req.outpoint.vout}`;
  const rows = await listStaticAddresses(deps.db);
  if (rows.length === 0) {
    throw refused(
      "no_static_address",
      `No static address in the database to match ${op} against: run "loopkit recover" first`,
    );
  }

  // Which of our scripts to ask lnd about: the given one (checked to be ours first), or every stored one.
  let matched: MatchedAddress | null = null;
  let scanned: MatchedAddress[] = [];
  let candidates: Uint8Array[];
  if (req.pkScript) {
    matched = await findOurAddress(rows, req.pkScript, deps.lnd, deps.network, req.heightHint, scanLimit);
    if (!matched) {
      throw refused(
        "deposit_not_ours",
        `no static address child matched pkScript ${
          bytesToHex(req.pkScript)
        }: it is neither a stored static ` +
          `address nor a child 0..${scanLimit} of key families ` +
          `${[rows[0].clientKeyFamily, ...RECOVERY_SCAN_FAMILIES].join(", ")} with this node's server key ` +
          "(a later child needs a larger --key-scan-limit)",
      );
    }
    candidates = [req.pkScript];
  } else {
    // The scan range is derived before lnd is asked: a child the database does not hold is a candidate too.
    // Every candidate is one confirmation watch in lnd, so without --pkscript the children asked about stop at
    // Loop's gap (CANDIDATE_WATCH_LIMIT); the key search depth (--key-scan-limit) applies to --pkscript.
    scanned = await scanCandidates(
      rows,
      deps.lnd,
      deps.network,
      req.heightHint,
      Math.min(scanLimit, CANDIDATE_WATCH_LIMIT),
    );
    candidates = scanned.map((m) => m.address.pkScript);
  }

  // Confirmation, from the chain notifier. Several candidates are asked at once; the first confirmation wins.
  let confirmed: ConfirmedOutput | null = null;
  if (candidates.length === 1) {
    confirmed = await confirmOutput(deps.lnd, req, candidates[0], waitMs);
  } else {
    confirmed = await Promise.any(
      candidates.map(async (s) => {
        const c = await confirmOutput(deps.lnd, req, s, waitMs);
        if (c === null) throw new Error("not confirmed");
        return c;
      }),
    ).catch((agg: AggregateError) => {
      const real = agg.errors.find((e) => e instanceof LoopkitError);
      if (real) throw real;
      return null;
    });
  }
  if (confirmed === null) {
    throw refused(
      "deposit_unconfirmed",
      `lnd did not confirm ${op} ${
        req.pkScript
          ? `paying ${bytesToHex(req.pkScript)} `
          : `paying any stored static address or child 0..${
            Math.min(scanLimit, CANDIDATE_WATCH_LIMIT)
          } of the scanned key families `
      }within ${Math.round(waitMs / 1000)} s from height hint ${req.heightHint}: check the outpoint, that ` +
        "--height-hint is at or before its block" +
        (req.pkScript ? "" : ", or give --pkscript (a later child is found up to --key-scan-limit)"),
    );
  }
  matched ??= scanned.find((m) => equalBytes(m.address.pkScript, confirmed.pkScript)) ?? await findOurAddress(
    rows,
    confirmed.pkScript,
    deps.lnd,
    deps.network,
    req.heightHint,
    scanLimit,
  );
  if (!matched) {
    throw refused(
      "deposit_not_ours",
      `no static address child matched pkScript ${bytesToHex(confirmed.pkScript)}`,
    );
  }

  // Spent already? Asked from the transaction's block; lnd answers a historical spend at once. A spend
  // reported here means the output is gone: recording it as Deposited would overstate the balance.
  const spendWaitMs = deps.spendWaitMs ?? DEFAULT_RECOVER_DEPOSIT_SPEND_WAIT_MS;
  const spend = await deps.lnd.registerSpend(req.outpoint, confirmed.pkScript, confirmed.blockHeight, {
    timeoutMs: spendWaitMs,
  });
  if (spend !== null) {
    throw refused(
      "deposit_already_spent",
      `${op} is already spent by transaction ${spend.spendingTxid} ` +
        (spend.spendingHeight > 0 ? `at height ${spend.spendingHeight}` : "(unconfirmed)") +
        ": nothing to recover, nothing written",
    );
  }

  // Before the transaction: the tapscript import (lnd first, so a failed import stores nothing), the
  // wallet view, and a sweep destination if the deposit is new.
  const imported =
    (await deps.lnd.importTapscript(matched.address.internalKeyXOnly, matched.address.timeoutLeafScript))
      .imported;
  const walletVisible = (await deps.lnd.listUnspent(0, 0, { pkScripts: [confirmed.pkScript] })).some((u) =>
    u.txid === req.outpoint.txid && u.vout === req.outpoint.vout
  );
  let existing = await findDeposit(deps.db, op);
  checkExisting(existing, op, confirmed.valueSat);
  const sweep = existing ? null : await deps.lnd.nextSweepPkScript();

  const m = matched;
  const c = confirmed;
  const outcome = await deps.db.write(async (tx) => {
    let rowCreated = false;
    if (!m.stored) {
      const again = (await listStaticAddresses(tx)).find((r) => equalBytes(r.pkScript, m.row.pkScript));
      if (!again) {
        await insertStaticAddress(tx, m.row);
        rowCreated = true;
      }
    }
    existing = (await listDeposits(tx)).find((d) => outpointOf(d) === op) ?? null;
    checkExisting(existing, op, c.valueSat);
    const at = now();
    if (!existing) {
      const depositId = randomId();
      await insertDeposit(tx, {
        txid: req.outpoint.txid,
        vout: req.outpoint.vout,
        amountSat: c.valueSat,
        confirmationHeight: c.blockHeight,
        pkScript: c.pkScript,
        depositId,
        timeoutSweepPkScript: sweep ?? await deps.lnd.nextSweepPkScript(),
      }, at);
      if (!walletVisible) {
        await applyDepositUpdate(tx, {
          depositId,
          outpoint: op,
          walletVisible: false,
          resultingState: "Deposited",
          reasons: ["vanished"],
        }, at);
      }
      return { rowCreated, depositId, state: "Deposited" as DepositState, changed: true };
    }
    const plan: DepositUpdatePlan = {
      depositId: existing.depositId,
      outpoint: op,
      resultingState: existing.state,
      reasons: [],
    };
    if (existing.state === "Replaced") {
      plan.state = "Deposited";
      plan.resultingState = "Deposited";
      plan.reasons.push("revived");
    }
    if (existing.confirmationHeight !== c.blockHeight) {
      plan.confirmationHeight = c.blockHeight;
      plan.reasons.push("confirmed");
    }
    if (existing.walletVisible !== walletVisible) plan.walletVisible = walletVisible;
    const changed = plan.state !== undefined || plan.confirmationHeight !== undefined;
    if (changed || plan.walletVisible !== undefined) await applyDepositUpdate(tx, plan, at);
    return { rowCreated, depositId: existing.depositId, state: plan.resultingState, changed };
  }).catch((e) => {
    throw e instanceof LoopkitError ? e : dbError(e, `recovering deposit ${op}`);
  });

  return {
    outpoint: op,
    valueSat: c.valueSat,
    confirmationHeight: c.blockHeight,
    keyLocator: { family: m.row.clientKeyFamily, index: m.row.clientKeyIndex },
    staticAddress: m.address.address,
    pkScript: c.pkScript,
    recoveredAddress: outcome.rowCreated || imported,
    recoveredDeposit: outcome.changed,
    depositId: outcome.depositId,
    state: outcome.state,
    walletVisible,
  };
}

async function findDeposit(db: Db, op: string): Promise<Deposit | null> {
  try {
    return (await listDeposits(db.client)).find((d) => outpointOf(d) === op) ?? null;
  } catch (e) {
    throw dbError(e, "reading deposits");
  }
}

/** An existing deposit must have the on-chain value and be `Deposited` or `Replaced` (spec §7.2 step 4). */
function checkExisting(d: Deposit | null, op: string, valueSat: bigint): void {
  if (!d) return;
  if (d.amountSat !== valueSat) {
    throw refused(
      "deposit_conflict",
      `existing deposit ${op} has value ${d.amountSat}, recovered output has value ${valueSat}`,
    );
  }
  if (d.state !== "Deposited" && d.state !== "Replaced") {
    throw refused(
      "deposit_conflict",
      `existing deposit ${op} is in state ${d.state}: only a Deposited or Replaced deposit can be recovered`,
    );
  }
}
