/**
 * The generation backup as the commands use it (`backup write`, and the backup `address new` writes after
 * the address): its dependencies from the invocation's context, and the rendering of the result. The rules
 * are in `core/backup/generation.ts`.
 *
 * @module
 */
import type { GenerationBackupDeps } from "../core/backup/generation.ts";
import type { WriteBackupResult } from "../core/backup/write.ts";
import { getLegacyStaticAddress } from "../core/db/static_addresses.ts";
import type { Context } from "./context.ts";

/** The generation backup's dependencies from the invocation's context (lnd and the database on first use). */
export function generationBackupDeps(ctx: Context, copyTo: string[] = []): GenerationBackupDeps {
  return {
    dataDir: ctx.config.dataDir,
    network: ctx.config.network,
    copyTo,
    lnd: async () => (await ctx.lnd()).lnd,
    // Only read: a missing database means no address (a no-op), and is not created.
    staticAddress: async () => {
      const db = await ctx.existingDb();
      return db && await getLegacyStaticAddress(db);
    },
  };
}

const SKIP_TEXT: Record<string, string> = {
  no_token: "no L402 token in the data directory: nothing to back up",
  pending_only: "only a pending (unpaid) L402 token exists: nothing to back up",
  token_unpaid: "the L402 token is not paid: nothing to back up",
  no_static_address: "no static address yet: nothing to back up",
  already_backed_up: "a valid backup of this generation already exists",
};

/** JSON shape of `backup write`. */
export function writeResultJson(r: WriteBackupResult) {
  return {
    written: r.written,
    path: r.path ?? null,
    copies: r.copies.map((c) => ({ dir: c.dir, path: c.path, status: c.status, error: c.error })),
    reason: r.reason ?? null,
    token_id: r.tokenId ?? null,
    token_created_at: r.createdAtNs?.toString() ?? null,
    replaced_corrupt: r.corrupt,
    removed_temp_files: r.removedTemp,
    migrated_lsat_token: r.migratedLegacyToken ?? false,
  };
}

/** Human lines of `backup write`. */
export function writeResultText(r: WriteBackupResult): string[] {
  const lines: string[] = [];
  if (r.migratedLegacyToken) lines.push("renamed the legacy lsat.token to l402.token (as Loop does)");
  if (r.written) lines.push(`backup written: ${r.path}`);
  else lines.push(`${SKIP_TEXT[r.reason ?? ""] ?? r.reason}${r.path ? `: ${r.path}` : ""}`);
  for (const c of r.copies) {
    lines.push(`copy ${c.status}: ${c.path}${c.error ? ` (${c.error})` : ""}`);
  }
  for (const p of r.corrupt) lines.push(`replaced an invalid file; the old one was moved aside to: ${p}`);
  for (const p of r.removedTemp) {
    lines.push(`removed a stale temporary file left by an interrupted run: ${p}`);
  }
  return lines;
}
