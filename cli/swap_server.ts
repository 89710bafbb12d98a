/**
 * The swap-server flags of `address new` and the `loopin` commands, resolved the same way for both: the server
 * address (`--swapserver`, `LOOPKIT_SWAPSERVER`, or Loop's default for the network) and the optional PEM of
 * `--swapserver-tlscert`. A helper, not a command file: command files never import each other. The gRPC client
 * loads here, on first use (cli/commands.ts).
 *
 * @module
 */
import type * as SwapServerModule from "../core/swapserver/client.ts";
import type { NetworkName } from "../core/staticaddr/network.ts";
import { usageError } from "../core/errors.ts";
import { lazyImport } from "./lazy.ts";

/** The flags both commands take. */
export interface SwapServerFlags {
  swapserver?: string;
  swapserverTls: boolean;
  swapserverTlscert?: string;
  maxL402CostSat?: string;
}

/**
 * Loads the swap-server client and resolves where to reach it.
 * @returns the client module's `openSwapServer`, the `host:port`, and the certificate bytes if given
 * @throws {LoopkitError} `swap_server_required` (exit 2) with no default for `network`; `config_invalid`
 *   (exit 2) naming `--swapserver-tlscert` when the file cannot be read
 */
export async function resolveSwapServer(network: NetworkName, opts: SwapServerFlags): Promise<{
  openSwapServer: typeof SwapServerModule.openSwapServer;
  address: string;
  tlsCert: Uint8Array | undefined;
}> {
  const { openSwapServer, swapServerAddress } = await lazyImport<typeof SwapServerModule>(
    new URL("../core/swapserver/client.ts", import.meta.url),
  );
  const address = swapServerAddress(network, opts.swapserver ?? Deno.env.get("LOOPKIT_SWAPSERVER"));
  let tlsCert: Uint8Array | undefined;
  if (opts.swapserverTlscert) {
    try {
      tlsCert = await Deno.readFile(opts.swapserverTlscert);
    } catch (err) {
      throw usageError(
        `Cannot read --swapserver-tlscert "${opts.swapserverTlscert}": ${(err as Error).message}`,
        "config_invalid",
      );
    }
  }
  return { openSwapServer, address, tlsCert };
}
