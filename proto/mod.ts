/**
 * loopkit's own swap-server protocol definition (`swapserver.proto`, package `looprpc`): where it
 * is and how to load it with `@grpc/proto-loader`.
 *
 * Loading needs read permission on this directory. For `deno compile`, include `proto/` next to
 * lnd's protos (`--include proto`).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { loadSync, type Options, type PackageDefinition } from "@grpc/proto-loader";

/** Absolute file-system path of `swapserver.proto`. */
export const SWAP_SERVER_PROTO_PATH: string = fileURLToPath(new URL("./swapserver.proto", import.meta.url));

/**
 * Loader options loopkit uses for the swap-server protocol:
 * - field names in lowerCamelCase (`serverKey`, `depositOutpoints`);
 * - 64-bit integers as decimal strings, so callers convert with `BigInt()` and never lose precision;
 * - enums as numbers; defaults filled in (proto3 has no presence for scalars); the name of the set
 *   oneof member under its oneof name (`notification`).
 */
export const SWAP_SERVER_LOADER_OPTIONS: Readonly<Options> = Object.freeze({
  keepCase: false,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
});

/**
 * Loads `swapserver.proto` synchronously.
 *
 * @param options proto-loader options; default {@linkcode SWAP_SERVER_LOADER_OPTIONS}
 * @returns the package definition; services at `looprpc.SwapServer` and
 *   `looprpc.StaticAddressServer`, messages at `looprpc.<Message>`
 * @throws Error from proto-loader if the file cannot be read or parsed
 */
export function loadSwapServerProto(options: Options = SWAP_SERVER_LOADER_OPTIONS): PackageDefinition {
  return loadSync(SWAP_SERVER_PROTO_PATH, { ...options });
}
