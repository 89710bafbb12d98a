/**
 * Tests for the network table. Expected values are the chain-parameter facts (spec §1, §2.6 and
 * btcd's chain parameters) and btc-signer's own NETWORK / TEST_NETWORK objects.
 */
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { hex } from "@scure/base";
import { NETWORK, p2pkh, TEST_NETWORK } from "@scure/btc-signer";
import { LoopkitError } from "../errors.ts";
import { isNetworkName, NETWORK_NAMES, networkParams, NETWORKS, parseNetwork } from "./network.ts";

Deno.test("NETWORK_NAMES lists the six networks lnd and Loop know", () => {
  assertEquals([...NETWORK_NAMES], ["mainnet", "testnet", "testnet4", "signet", "regtest", "simnet"]);
});

Deno.test("each network has the bech32 HRP of spec §2.6", () => {
  const want = { mainnet: "bc", testnet: "tb", testnet4: "tb", signet: "tb", regtest: "bcrt", simnet: "sb" };
  for (const name of NETWORK_NAMES) {
    assertEquals(NETWORKS[name].bech32Hrp, want[name], name);
    assertEquals(NETWORKS[name].btcSigner.bech32, want[name], name);
    assertEquals(NETWORKS[name].name, name);
  }
});

Deno.test("coin type is 0 on mainnet and 1 on every other network", () => {
  for (const name of NETWORK_NAMES) assertEquals(NETWORKS[name].coinType, name === "mainnet" ? 0 : 1, name);
});

Deno.test("mainnet and testnet match btc-signer's NETWORK and TEST_NETWORK", () => {
  assertEquals({ ...NETWORKS.mainnet.btcSigner }, { ...NETWORK });
  assertEquals({ ...NETWORKS.testnet.btcSigner }, { ...TEST_NETWORK });
});

Deno.test("base58 version bytes give the well-known address prefixes", () => {
  // Compressed generator point G: its P2PKH mainnet address is a well-known constant.
  const g = hex.decode("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798");
  assertEquals(p2pkh(g, NETWORKS.mainnet.btcSigner).address, "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH");
  for (const name of ["testnet", "testnet4", "signet", "regtest"] as const) {
    assert(/^[mn]/.test(p2pkh(g, NETWORKS[name].btcSigner).address!), name);
  }
  assert(p2pkh(g, NETWORKS.simnet.btcSigner).address!.startsWith("S"), "simnet P2PKH starts with S");
});

Deno.test("parseNetwork() accepts each exact name", () => {
  for (const name of NETWORK_NAMES) {
    assertEquals(parseNetwork(name), name);
    assert(isNetworkName(name));
    assertEquals(networkParams(name), NETWORKS[name]);
  }
});

Deno.test("parseNetwork() rejects other spellings with a usage error naming the value", () => {
  for (const bad of ["testnet3", "Mainnet", "bitcoin", "", " regtest"]) {
    const err = assertThrows(
      () => parseNetwork(bad),
      LoopkitError,
      `network: unknown network ${JSON.stringify(bad)}`,
    );
    assertEquals(err.code, "unknown_network");
    assertEquals(err.exitCode, 2);
    assert(!isNetworkName(bad));
  }
});

Deno.test("the network table cannot be modified", () => {
  assertThrows(() => {
    (NETWORKS.mainnet as { bech32Hrp: string }).bech32Hrp = "tb";
  }, TypeError);
  assertEquals(NETWORKS.mainnet.bech32Hrp, "bc");
});
