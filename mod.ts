/**
 * loopkit — keep Lightning Loop static-address funds safe without the Loop daemon.
 *
 * Library entry: re-exports the public core API.
 *
 * @module
 */
export * from "./core/errors.ts";
export type * from "./lnd/types.ts";
