/**
 * Client-key search over real gRPC to the fake lnd (`tests/fakelnd/server.ts`): 1 001 `DeriveKey`
 * calls (indexes 0..1000, the default `--key-scan-limit`, key not found), pipelined
 * ({@linkcode DERIVE_WINDOW} in flight) against one at a time. Numbers in bench/README.md.
 *
 * Run: `deno bench --allow-all bench/key_scan_bench.ts`
 */
import { connectLnd } from "../lnd/connect.ts";
import { startFakeLnd } from "../tests/fakelnd/server.ts";
import { DEFAULT_CLIENT_KEY_SCAN_LIMIT, findClientKey } from "../core/backup/scan.ts";

const fake = await startFakeLnd({ network: "regtest" });
const { lnd } = await connectLnd({ ...fake, network: "regtest" });
const absent = new Uint8Array(33).fill(2);

Deno.bench("findClientKey pipelined over gRPC: 1 001 indexes, not found", async () => {
  await findClientKey(lnd, 42060, absent, DEFAULT_CLIENT_KEY_SCAN_LIMIT);
});

Deno.bench("sequential DeriveKey over gRPC: 1 001 indexes (the old loop)", async () => {
  for (let index = 0; index <= DEFAULT_CLIENT_KEY_SCAN_LIMIT; index++) {
    await lnd.deriveKey({ family: 42060, index });
  }
});

Deno.bench("one DeriveKey over gRPC (one round trip)", async () => {
  await lnd.deriveKey({ family: 42060, index: 0 });
});

globalThis.addEventListener("unload", () => {
  lnd.close();
  fake.stop();
});
