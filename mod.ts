/**
 * loopkit — keep Lightning Loop static-address funds safe without the Loop daemon.
 *
 * Library entry: the core API the CLI is built on. Every function takes its dependencies (lnd, database,
 * file system, clock) as small interfaces, so it can be driven from other programs and tested offline.
 *
 * @module
 */
export * from "./core/errors.ts";
export * from "./core/config/config.ts";
export type * from "./lnd/types.ts";
export { connectLnd } from "./lnd/connect.ts";
export { openDb } from "./core/db/db.ts";
export type { Db, OpenDbOptions } from "./core/db/db.ts";
export * from "./core/db/static_addresses.ts";
export * from "./core/backup/mod.ts";
export * from "./core/staticaddr/mod.ts";
export { addressOfRow, ensureStaticAddress } from "./core/staticaddr/new_address.ts";
export { syncDeposits } from "./core/deposits/sync.ts";
export * from "./core/deposits/types.ts";
export { listDeposits } from "./core/deposits/store.ts";
export { parseRecoverDepositRequest, recoverDeposit } from "./core/deposits/recover_deposit.ts";
export type {
  RecoverDepositDeps,
  RecoverDepositRequest,
  RecoverDepositResult,
} from "./core/deposits/recover_deposit.ts";
// The static loop-in: pure rules (core/loopin/mod.ts, each citing its spec section), the store, one
// reconcile-and-act cycle (`syncLoopIns`), quote and initiation, and the offline views.
export * as loopin from "./core/loopin/mod.ts";
export { initiateLoopIn, quoteLoopIn } from "./core/loopin/initiate.ts";
export { syncExitCode, syncLoopIns } from "./core/loopin/sync.ts";
export { LoopInSwapStore } from "./core/loopin/store.ts";
export { listLoopIns, showLoopIn } from "./core/loopin/view.ts";
