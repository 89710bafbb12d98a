/**
 * The client-key search against a real lnd (regtest, `tests/regtest/harness.ts`): 1 001 `DeriveKey` calls
 * (indexes 0..1000, key absent), pipelined (128 in flight) and one at a time, 3 runs each. Prints the
 * wall times; numbers in bench/README.md. Needs the regtest binaries.
 *
 * Run: `deno run --allow-all bench/key_scan_regtest.ts`
 */
import { startRegtest } from "../tests/regtest/harness.ts";
import { GrpcLndClient } from "../lnd/grpc_client.ts";
import { DEFAULT_CLIENT_KEY_SCAN_LIMIT, findClientKey } from "../core/backup/scan.ts";

const net = await startRegtest({ lndNodes: ["alice"], channel: false });
try {
  const lnd = new GrpcLndClient(net.alice.rpc);
  const absent = new Uint8Array(33).fill(2);
  await lnd.deriveKey({ family: 42060, index: 0 }); // warm the connection
  const time = async (f: () => Promise<unknown>) => {
    const t = performance.now();
    await f();
    return Math.round(performance.now() - t);
  };
  const one: number[] = [], piped: number[] = [], seq: number[] = [];
  for (let run = 0; run < 3; run++) {
    one.push(await time(() => lnd.deriveKey({ family: 42060, index: run })));
    piped.push(await time(() => findClientKey(lnd, 42060, absent, DEFAULT_CLIENT_KEY_SCAN_LIMIT)));
    seq.push(
      await time(async () => {
        for (let i = 0; i <= DEFAULT_CLIENT_KEY_SCAN_LIMIT; i++) {
          await lnd.deriveKey({ family: 42060, index: i });
        }
      }),
    );
  }
  console.log(JSON.stringify({ one_derive_ms: one, pipelined_1001_ms: piped, sequential_1001_ms: seq }));
} finally {
  await net.stop();
}
