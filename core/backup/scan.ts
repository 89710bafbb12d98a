/**
 * Restore-time key searches over lnd's key families (spec/backup-and-recovery.md §6.2 step 5, §6.5):
 * the legacy client-key search (read-only `DeriveKey`, indexes 0..`--key-scan-limit`, pipelined) and the rolling-gap scan of
 * the multi-address receive/change branches against one wallet snapshot.
 *
 * Both use `DeriveKey` only, never `DeriveNextKey`: a restore does not advance lnd's next-key
 * counters (spec §10).
 *
 * @module
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import type { KeyDescriptor, KeyLocator, LndClient } from "../../lnd/types.ts";
import { ExitCode, LoopkitError } from "../errors.ts";
import type { NetworkName } from "../staticaddr/network.ts";
import { type StaticAddress, staticAddress } from "../staticaddr/script.ts";
import { equalBytes } from "@noble/curves/utils.js";

/**
 * Highest index Loop's own restore searches for the legacy client key (`backupKeyScanLimit`, spec §0):
 * Loop finds the key only at indexes 0..20. An address whose client key index is above this is not
 * restorable by Loop, only by loopkit with a large enough `--key-scan-limit`.
 */
export const LEGACY_CLIENT_KEY_SCAN_LIMIT = 20;

/**
 * Default highest index loopkit searches for a client key (`--key-scan-limit`). Family 42060 also
 * supplies every loop-in HTLC key (spec/static-loop-in.md §1.2), so lnd's next index grows with each swap
 * and each interrupted `address new` of older versions; 1 000 leaves room for years of swaps and costs
 * about {@linkcode DERIVE_WINDOW}-fold fewer round trips than indexes, as the derivations are pipelined.
 */
export const DEFAULT_CLIENT_KEY_SCAN_LIMIT = 1000;

/** Largest `--key-scan-limit` accepted (a guard against typos). */
export const MAX_CLIENT_KEY_SCAN_LIMIT = 1_000_000;

/** `DeriveKey` calls in flight at once during a key search (one HTTP/2 connection multiplexes them). */
export const DERIVE_WINDOW = 128;

/** One settled `DeriveKey` of {@linkcode deriveInOrder}. */
export type Derived = { index: number; ok: true; key: KeyDescriptor } | {
  index: number;
  ok: false;
  error: unknown;
};

/**
 * `DeriveKey(family, first..last)` pipelined: up to `window` calls in flight (opening from 8), results
 * yielded in index order (each settled: a key or the call's error). Stopping the iteration early issues no further calls
 * (the few in flight finish and are dropped).
 *
 * @param first first index (≥ 0)
 * @param last last index, inclusive
 * @param window calls in flight at once (default {@linkcode DERIVE_WINDOW})
 */
export async function* deriveInOrder(
  lnd: Pick<LndClient, "deriveKey">,
  family: number,
  first: number,
  last: number,
  window: number = DERIVE_WINDOW,
): AsyncGenerator<Derived> {
  const derive = (index: number): Promise<Derived> =>
    lnd.deriveKey({ family, index }).then(
      (key) => ({ index, ok: true as const, key }),
      (error) => ({ index, ok: false as const, error }),
    );
  // The window opens gradually (8, 16, … up to `window`): a key at a low index (the usual case) costs a
  // few derivations, not a whole window; a long search still runs `window` calls in flight.
  const inflight: Promise<Derived>[] = [];
  let next = first;
  let target = Math.min(8, window);
  const fill = () => {
    while (next <= last && inflight.length < target) inflight.push(derive(next++));
  };
  let seen = 0;
  fill();
  while (inflight.length) {
    const r = await inflight.shift()!;
    // Double the window each time as many results as it held have come back (8, then 16, …).
    if (++seen >= target) {
      seen = 0;
      target = Math.min(window, target * 2);
    }
    fill();
    yield r;
  }
}

/**
 * Checks a `--key-scan-limit`: an integer from {@linkcode LEGACY_CLIENT_KEY_SCAN_LIMIT} to
 * {@linkcode MAX_CLIENT_KEY_SCAN_LIMIT} (below Loop's own window would find less than Loop).
 * @throws {LoopkitError} `usage` (exit 2)
 */
export function checkKeyScanLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < LEGACY_CLIENT_KEY_SCAN_LIMIT || limit > MAX_CLIENT_KEY_SCAN_LIMIT) {
    throw new LoopkitError(
      "usage",
      `invalid key scan limit ${limit}: --key-scan-limit must be an integer from ${LEGACY_CLIENT_KEY_SCAN_LIMIT} ` +
        `to ${MAX_CLIENT_KEY_SCAN_LIMIT}`,
      ExitCode.Usage,
    );
  }
}

/** Default rolling gap of the multi-address scan (`DefaultMultiAddressScanGap`, spec §0). */
export const DEFAULT_MULTI_ADDRESS_SCAN_GAP = 20;

/** Largest `--gap` loopkit accepts (a guard against typos; each unit costs one `DeriveKey` per family). */
export const MAX_MULTI_ADDRESS_SCAN_GAP = 10_000;

/** Largest key family or index lnd accepts (`uint32` on the wire, `int32` in Loop's payload). */
const MAX_INT32 = 2 ** 31 - 1;

/** Checks lnd's `DeriveKey` answer: a 33-byte key at the locator that was asked for. */
function checkDerived(key: KeyDescriptor, want: KeyLocator): void {
  if (!(key.rawKeyBytes instanceof Uint8Array) || key.rawKeyBytes.length !== 33) {
    throw new LoopkitError(
      "lnd_bad_answer",
      `lnd DeriveKey(${want.family}, ${want.index}) returned a ${key.rawKeyBytes?.length}-byte key, want 33`,
    );
  }
  if (key.keyLocator.family !== want.family || key.keyLocator.index !== want.index) {
    throw new LoopkitError(
      "lnd_bad_answer",
      `lnd DeriveKey(${want.family}, ${want.index}) answered for locator ` +
        `(${key.keyLocator.family}, ${key.keyLocator.index})`,
    );
  }
}

/**
 * Finds the backed-up client key among lnd's keys: `DeriveKey(family, i)` for `i = 0..limit`, pipelined
 * ({@linkcode deriveInOrder}); the lowest index whose 33-byte key equals `clientPubkey` wins (spec §6.2
 * step 5; Loop searches 0..{@linkcode LEGACY_CLIENT_KEY_SCAN_LIMIT} only, loopkit 0..limit). Only
 * `family` is searched; the search stops at the match.
 *
 * A failing `DeriveKey` is skipped like Loop does, except a temporary failure (exit 75, e.g. lnd
 * unreachable), which is rethrown: "not found" must never stand in for "could not ask".
 *
 * @param lnd anything with `deriveKey`
 * @param family the backup's `legacy_client_key_family` (42060)
 * @param clientPubkey the backup's 33-byte `client_pubkey`
 * @param limit highest index searched (default {@linkcode DEFAULT_CLIENT_KEY_SCAN_LIMIT})
 * @returns the matching key, or null when none of the `limit + 1` children matches
 * @throws {LoopkitError} temporary lnd failures as is; `lnd_bad_answer` when lnd answers for another locator
 */
export async function findClientKey(
  lnd: Pick<LndClient, "deriveKey">,
  family: number,
  clientPubkey: Uint8Array,
  limit: number = DEFAULT_CLIENT_KEY_SCAN_LIMIT,
): Promise<KeyDescriptor | null> {
  for await (const d of deriveInOrder(lnd, family, 0, limit)) {
    if (!d.ok) {
      if (d.error instanceof LoopkitError && d.error.exitCode === ExitCode.TempFail) throw d.error;
      continue;
    }
    checkDerived(d.key, { family, index: d.index });
    if (equalBytes(d.key.rawKeyBytes, clientPubkey)) return d.key;
  }
  return null;
}

/** One child address found in the wallet snapshot. */
export interface BranchHit {
  /** Where lnd derives its client key. */
  keyLocator: KeyLocator;
  /** 33-byte compressed client key. */
  clientPubkey: Uint8Array;
  /** The static address built from it with the backup's server key and CSV expiry. */
  address: StaticAddress;
}

/** What the scan did in one family. */
export interface BranchScan {
  /** Key family (42061 receive, 42062 change). */
  family: number;
  /** First index derived (always 0). */
  firstIndex: number;
  /** Last index derived; null when nothing was derived (the wallet snapshot had no outputs). */
  lastIndex: number | null;
  /** Children whose pkScript is in the snapshot, in index order. */
  hits: BranchHit[];
}

/** Inputs of {@linkcode scanBranches}. */
export interface BranchScanInput {
  /** The backup's `[main_key_family, change_key_family]`; zeros, negatives and duplicates are dropped. */
  families: readonly number[];
  /** Rolling gap: the scan of a family stops after this many consecutive unused children (≥ 1). */
  gap: number;
  /** Hex pkScripts of the one `ListUnspent(0, 0)` snapshot. */
  walletPkScripts: ReadonlySet<string>;
  /** The backup's 33-byte server key. */
  serverPubkey: Uint8Array;
  /** The backup's CSV expiry, blocks. */
  csvExpiry: number;
  /** Network of the addresses. */
  network: NetworkName;
  /** lnd `DeriveKey`. */
  lnd: Pick<LndClient, "deriveKey">;
}

/**
 * The families a scan covers: `[main, change]` without zeros (or other non-positive values) and
 * duplicates, order kept (spec §6.5 step 1).
 */
export function scanFamilies(families: readonly number[]): number[] {
  const out: number[] = [];
  for (const f of families) {
    if (Number.isInteger(f) && f > 0 && f <= MAX_INT32 && !out.includes(f)) out.push(f);
  }
  return out;
}

/**
 * Checks a rolling gap: an integer from 1 to {@linkcode MAX_MULTI_ADDRESS_SCAN_GAP}.
 * @throws {LoopkitError} `usage` (exit 2) `invalid multi-address scan gap %d` (Loop's wording, spec §4.8)
 */
export function checkScanGap(gap: number): void {
  if (!Number.isInteger(gap) || gap <= 0 || gap > MAX_MULTI_ADDRESS_SCAN_GAP) {
    throw new LoopkitError(
      "usage",
      `invalid multi-address scan gap ${gap}: --gap must be an integer from 1 to ${MAX_MULTI_ADDRESS_SCAN_GAP}`,
      ExitCode.Usage,
    );
  }
}

/**
 * Rolling-gap scan of the multi-address branches (spec §6.5). For each family independently:
 * `unused = 0`; for `index = 0, 1, …` while `unused < gap`: `DeriveKey(family, index)`, build the
 * static address with the backup's server key and expiry; a pkScript in the snapshot is a hit and
 * resets `unused`, anything else counts as unused. With gap 20 and hits at 19, 39, 59 the scan
 * finds all three and stops after 60..79, so a hit at 80 is missed. An empty snapshot derives
 * nothing.
 *
 * @returns one {@linkcode BranchScan} per family of {@linkcode scanFamilies}
 * @throws {LoopkitError} `usage` for a bad gap; `scan_derive_failed`
 *   (`unable to derive multi-address child %d:%d: …`, exit of the cause) when a `DeriveKey` fails —
 *   unlike the client-key search a failure is fatal here; `invalid_static_address` when the
 *   backup's server key or expiry cannot build an address
 */
export async function scanBranches(input: BranchScanInput): Promise<BranchScan[]> {
  checkScanGap(input.gap);
  const out: BranchScan[] = [];
  for (const family of scanFamilies(input.families)) {
    const scan: BranchScan = { family, firstIndex: 0, lastIndex: null, hits: [] };
    out.push(scan);
    if (input.walletPkScripts.size === 0) continue;
    let unused = 0;
    for (let index = 0; unused < input.gap && index <= MAX_INT32; index++) {
      let key: KeyDescriptor;
      try {
        key = await input.lnd.deriveKey({ family, index });
      } catch (err) {
        const exit = err instanceof LoopkitError ? err.exitCode : ExitCode.Failure;
        throw new LoopkitError(
          "scan_derive_failed",
          `unable to derive multi-address child ${family}:${index}: ${(err as Error).message ?? err}`,
          exit,
          { cause: err },
        );
      }
      checkDerived(key, { family, index });
      scan.lastIndex = index;
      const address = staticAddress({
        clientPubkey: key.rawKeyBytes,
        serverPubkey: input.serverPubkey,
        csvExpiry: input.csvExpiry,
        network: input.network,
      });
      if (input.walletPkScripts.has(bytesToHex(address.pkScript))) {
        scan.hits.push({ keyLocator: { family, index }, clientPubkey: key.rawKeyBytes.slice(), address });
        unused = 0;
      } else {
        unused++;
      }
    }
  }
  return out;
}
