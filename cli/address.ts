/**
 * `loopkit address new` and `loopkit address show`.
 *
 * @module
 */
import type { Command } from "commander";
import { L402TokenStore } from "../core/l402/store.ts";
import { PAID_TOKEN_FILE_NAME, parseTokenFile } from "../core/l402/token_file.ts";
import { parseBackupFileName } from "../core/backup/file_name.ts";
import {
  addressOfRow,
  CREATION_LOCK_FILE_NAME,
  ensureStaticAddress,
  takeCreationLock,
} from "../core/staticaddr/new_address.ts";
import { resolve } from "node:path";
import { getLegacyStaticAddress, type StaticAddressRow } from "../core/db/static_addresses.ts";
import type { StaticAddress } from "../core/staticaddr/script.ts";
import { dataDirUnwritable, ExitCode, isUnwritableError, LoopkitError } from "../core/errors.ts";
import { action } from "./context.ts";
import { parseWholeFlag } from "./flags.ts";
import { resolveSwapServer, type SwapServerFlags } from "./swap_server.ts";
import { diag, out, toHex, toJson } from "./output.ts";
import { writeBackupAfterAddress } from "../core/backup/generation.ts";
import { generationBackupDeps, writeResultJson, writeResultText } from "./generation_backup.ts";

type AddressNewOpts = SwapServerFlags;

function addressJson(row: StaticAddressRow, a: StaticAddress) {
  return {
    address: a.address,
    pk_script: toHex(a.pkScript),
    expiry: row.expiry,
    client_pubkey: toHex(row.clientPubkey),
    server_pubkey: toHex(row.serverPubkey),
    client_key_family: row.clientKeyFamily,
    client_key_index: row.clientKeyIndex,
    protocol_version: row.protocolVersion,
    initiation_height: row.initiationHeight,
  };
}

function addressText(row: StaticAddressRow, a: StaticAddress): string[] {
  return [
    `static address: ${a.address}`,
    `  CSV expiry ${row.expiry} blocks, created at height ${row.initiationHeight}`,
    `  client key ${toHex(row.clientPubkey)} (family ${row.clientKeyFamily}, index ${row.clientKeyIndex})`,
    `  server key ${toHex(row.serverPubkey)}`,
  ];
}

/**
 * A backup file in `dataDir` whose name carries the token ID of the paid `l402.token`, or null. Any such
 * file counts, valid or not: the address it names must be recovered, not replaced.
 */
async function generationBackupPath(dataDir: string): Promise<string | null> {
  let tokenId: string;
  try {
    tokenId = parseTokenFile(await Deno.readFile(`${dataDir}/${PAID_TOKEN_FILE_NAME}`)).tokenId;
  } catch {
    return null; // no paid token yet: this run will pay the generation's first (and only) address
  }
  try {
    for await (const e of Deno.readDir(dataDir)) {
      const n = parseBackupFileName(e.name);
      if (n?.ok && n.tokenId === tokenId) return `${dataDir}/${e.name}`;
    }
  } catch {
    return null;
  }
  return null;
}

/** Token ID of the paid `l402.token` in `dataDir`, or null (none, unreadable, unparsable or unpaid). */
async function paidTokenId(dataDir: string): Promise<string | null> {
  try {
    const t = parseTokenFile(await Deno.readFile(`${dataDir}/${PAID_TOKEN_FILE_NAME}`));
    return t.paid ? t.tokenId : null;
  } catch {
    return null;
  }
}

/** Registers `address` and its subcommands. */
export function registerAddress(program: Command): void {
  const address = program.command("address").description("the static address (one per paid L402 token)");

  address.command("new")
    .description("create the static address with the swap server (paying the L402 if needed), or return it")
    .option("--swapserver <host:port>", "swap server address (default: Loop's server for the network)")
    .option("--swapserver-tls", "use TLS to the swap server", true)
    .option("--no-swapserver-tls", "plaintext to a local swap server on a loopback address")
    .option("--swapserver-tlscert <path>", "PEM certificate to trust for the swap server")
    .option("--max-l402-cost-sat <sat>", "highest L402 price paid automatically (default: 1000)")
    .action(action<AddressNewOpts>(async (ctx, opts) => {
      const { network, dataDir } = ctx.config;
      // The swap server's gRPC client loads only here: `address show` stays offline and light.
      const { openSwapServer, address: serverAddress, tlsCert } = await resolveSwapServer(network, opts);
      const { lnd } = await ctx.lnd();
      const db = await ctx.db();
      const store = await L402TokenStore.open(dataDir);
      const server = openSwapServer({
        address: serverAddress,
        tls: opts.swapserverTls,
        tlsCert,
        network,
        l402: {
          store,
          payer: lnd,
          maxCostSat: parseWholeFlag("--max-l402-cost-sat", opts.maxL402CostSat, "sat"),
        },
      });
      let result;
      try {
        result = await ensureStaticAddress({
          db,
          lnd,
          server,
          network,
          generationBackup: () => generationBackupPath(dataDir),
          paidTokenId: () => paidTokenId(dataDir),
          creationLock: () =>
            takeCreationLock(`${resolve(dataDir)}/${CREATION_LOCK_FILE_NAME}`).catch((e) => {
              throw isUnwritableError(e)
                ? dataDirUnwritable(dataDir, `${dataDir}/${CREATION_LOCK_FILE_NAME}`, e)
                : e;
            }),
          tokenPath: `${dataDir}/${PAID_TOKEN_FILE_NAME}`,
        });
      } finally {
        server.close();
      }
      const after = await writeBackupAfterAddress(generationBackupDeps(ctx));
      const backup = after.ok ? after.backup : undefined;
      const backupError = after.ok ? undefined : after.error;
      if (ctx.config.json) {
        out(toJson({
          created: result.created,
          ...addressJson(result.row, result.address),
          backup: backup ? writeResultJson(backup) : null,
          backup_error: backupError ?? null,
          warnings: result.warnings,
        }));
      } else {
        out(result.created ? "created a new static address" : "static address already exists");
        for (const l of addressText(result.row, result.address)) out(l);
        if (backup) { for (const l of writeResultText(backup)) out(l); }
        for (const w of result.warnings) out(`warning: ${w}`);
      }
      if (backupError) {
        diag(
          `loopkit: the address exists but its backup failed: ${backupError}; run \`loopkit backup write\``,
        );
        return ExitCode.Partial;
      }
      return ExitCode.Ok;
    }));

  address.command("show")
    .description("print the stored static address (offline: no lnd, no server)")
    .action(action(async (ctx) => {
      const db = await ctx.existingDb();
      const row = db && await getLegacyStaticAddress(db);
      if (!row) {
        throw new LoopkitError(
          "no_static_address",
          "No static address in the database: run `loopkit address new` (or `loopkit recover`)",
          ExitCode.Failure,
        );
      }
      const a = addressOfRow(row, ctx.config.network);
      if (ctx.config.json) out(toJson(addressJson(row, a)));
      else for (const l of addressText(row, a)) out(l);
      return ExitCode.Ok;
    }));
}
