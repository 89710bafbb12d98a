/**
 * Static address (protocol V0): construction from the client key, server key and CSV expiry,
 * validation of the server's parameters, network constants and outpoint strings.
 *
 * Pure code: no lnd, database or network access. See README.md beside this file for what the
 * unit owns and what it leaves to others; the rules come from spec/static-address-and-deposits.md
 * §1–§3.
 *
 * @example
 * ```ts
 * import { hex } from "@scure/base";
 * import { staticAddress } from "./mod.ts";
 * const { address, pkScript } = staticAddress({
 *   clientPubkey: hex.decode("02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5"),
 *   serverPubkey: hex.decode("02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9"),
 *   csvExpiry: 10,
 *   network: "mainnet",
 * });
 * address; // "bc1p7dhrvmvnm4lqdsr0ntntkh8ea7u69wqx3trskraekwun42mk9qlsh9pkgg"
 * pkScript.length; // 34
 * ```
 *
 * @module
 */
export * from "./network.ts";
export * from "./outpoint.ts";
export * from "./script.ts";
