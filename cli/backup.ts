/**
 * `loopkit backup write` and `loopkit backup verify`.
 *
 * @module
 */
import type { Command } from "commander";
import { deriveBackupKey } from "../core/backup/envelope.ts";
import {
  type BackupInspection,
  checkRestorable,
  inspectBackupDir,
  inspectBackupFile,
} from "../core/backup/inspect.ts";
import {
  checkKeyScanLimit,
  DEFAULT_CLIENT_KEY_SCAN_LIMIT,
  LEGACY_CLIENT_KEY_SCAN_LIMIT,
} from "../core/backup/scan.ts";
import { selectLatest } from "../core/backup/select.ts";
import { listStaleTempFiles } from "../core/backup/temp_files.ts";
import { dirname } from "node:path";
import { writeBackup, type WriteBackupResult } from "../core/backup/write.ts";
import type { BackupAddressParams } from "../core/backup/types.ts";
import { getLegacyStaticAddress, type StaticAddressRow } from "../core/db/static_addresses.ts";
import type { LndClient } from "../lnd/types.ts";
import { ExitCode, LoopkitError, usageError } from "../core/errors.ts";
import type { Context } from "./context.ts";
import { action } from "./main.ts";
import { out, toHex, toJson } from "./output.ts";

/**
 * Writes the generation's backup for the current paid L402 token and the legacy static address
 * (spec/backup-and-recovery.md §5.2). Shared by `backup write` and `address new`.
 *
 * No paid token or no address: returns a no-op result without contacting lnd or opening the database
 * more than needed.
 */
export async function writeGenerationBackup(ctx: Context, copyTo: string[] = []): Promise<WriteBackupResult> {
  const { dataDir, network } = ctx.config;
  let lndInfo: Awaited<ReturnType<Context["lnd"]>> | undefined;
  const lnd = async () => (lndInfo ??= await ctx.lnd());
  return await writeBackup({
    dataDir,
    network,
    copyTo,
    lnd: { deriveSharedKey: async (p, loc) => (await lnd()).lnd.deriveSharedKey(p, loc) },
    staticAddress: async (): Promise<BackupAddressParams | null> => {
      const row = await getLegacyStaticAddress(await ctx.db());
      if (row) await assertLndHoldsClientKey((await lnd()).lnd, row);
      return row && {
        clientPubkey: row.clientPubkey,
        serverPubkey: row.serverPubkey,
        expiry: row.expiry,
        protocolVersion: row.protocolVersion,
        clientKeyFamily: row.clientKeyFamily,
        clientKeyIndex: row.clientKeyIndex,
        initiationHeight: row.initiationHeight,
        pkScript: row.pkScript,
      };
    },
    currentHeight: async () => (await (await lnd()).lnd.getInfo()).blockHeight,
  });
}

/**
 * Refuses an lnd that does not hold the static address's client key (a different seed than the node that
 * created it): a backup sealed by that lnd would be useless to the real node. `DeriveKey` is read-only.
 * @throws {LoopkitError} `wrong_lnd` (exit 2)
 */
export async function assertLndHoldsClientKey(lnd: LndClient, row: StaticAddressRow): Promise<void> {
  const key = await lnd.deriveKey({ family: row.clientKeyFamily, index: row.clientKeyIndex });
  if (toHex(key.rawKeyBytes) !== toHex(row.clientPubkey)) {
    throw new LoopkitError(
      "wrong_lnd",
      `lnd at --rpcserver does not hold the static address's client key (family ${row.clientKeyFamily}, ` +
        `index ${row.clientKeyIndex}): it is not the node that created this address; point --rpcserver, ` +
        `--tlscertpath and --macaroonpath at that node`,
      ExitCode.Usage,
    );
  }
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

function inspectionJson(r: BackupInspection, selected: boolean) {
  const s = r.staticAddress;
  return {
    path: r.path,
    status: r.reason,
    valid: r.reason === "ok",
    message: r.message,
    selected,
    restorable: r.restorable ?? false,
    failed_check: r.failedCheck ?? null,
    client_key_family: r.clientKeyLocator?.family ?? null,
    client_key_index: r.clientKeyLocator?.index ?? null,
    address: r.address?.address ?? null,
    pk_script: r.address ? toHex(r.address.pkScript) : null,
    token_id: r.tokenId ?? null,
    token_created_at: r.createdAtNs?.toString() ?? null,
    network: r.network ?? null,
    static_address: s
      ? {
        protocol_version: s.protocolVersion,
        client_pubkey: s.clientPubkey ? toHex(s.clientPubkey) : null,
        server_pubkey: s.serverPubkey ? toHex(s.serverPubkey) : null,
        expiry: s.expiry,
        legacy_client_key_family: s.legacyClientKeyFamily,
        main_key_family: s.mainKeyFamily,
        change_key_family: s.changeKeyFamily,
        legacy_first_height: s.legacyFirstHeight,
        multi_address_first_height: s.multiAddressFirstHeight,
      }
      : null,
  };
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw new LoopkitError("unreadable", `Cannot read "${path}": ${(err as Error).message}`, ExitCode.Usage);
  }
}

/** Registers `backup` and its subcommands. */
export function registerBackup(program: Command): void {
  const backup = program.command("backup").description(
    "Loop-compatible encrypted backups (one per paid L402)",
  );

  backup.command("write")
    .description("write this generation's backup unless a valid one exists (immutable, 0600, atomic)")
    .option("--copy-to <dir>", "also place the identical file in this directory (repeatable)", collect, [])
    .action(action<{ copyTo: string[] }>(async (ctx, opts) => {
      for (const d of opts.copyTo) {
        const st = await statOrNull(d);
        if (!st?.isDirectory) throw usageError(`Invalid --copy-to "${d}": not an existing directory`);
      }
      const r = await writeGenerationBackup(ctx, opts.copyTo);
      if (ctx.config.json) out(toJson(writeResultJson(r)));
      else for (const l of writeResultText(r)) out(l);
      return r.copies.some((c) => c.status === "failed" || c.status === "conflict")
        ? ExitCode.Partial
        : ExitCode.Ok;
    }));

  backup.command("verify")
    .description(
      "decrypt, validate and run every restore-time check (client key found in lnd) on backup files; writes nothing",
    )
    .argument("[paths...]", "backup files or directories (default: the data directory)")
    .option(
      "--key-scan-limit <n>",
      `highest index of lnd's key family searched for the client key (Loop: ${LEGACY_CLIENT_KEY_SCAN_LIMIT})`,
      String(DEFAULT_CLIENT_KEY_SCAN_LIMIT),
    )
    .action(action<{ keyScanLimit: string }>(async (ctx, opts, paths) => {
      const keyScanLimit = Number(opts.keyScanLimit);
      if (!/^[0-9]+$/.test(opts.keyScanLimit)) {
        throw usageError(`Invalid --key-scan-limit "${opts.keyScanLimit}": expected an integer`);
      }
      checkKeyScanLimit(keyScanLimit);
      const targets = paths.length ? paths : [ctx.config.dataDir];
      const kinds: { path: string; dir: boolean }[] = [];
      for (const p of targets) {
        const st = await statOrNull(p);
        if (!st) throw usageError(`Backup path "${p}" does not exist`, "not_found");
        kinds.push({ path: p, dir: st.isDirectory });
      }
      const { lnd } = await ctx.lnd();
      const key = await deriveBackupKey(lnd);
      const groups: { results: BackupInspection[]; selected?: BackupInspection }[] = [];
      for (const k of kinds) {
        const results = k.dir
          ? await inspectBackupDir(k.path, key, ctx.config.network)
          : [await inspectBackupFile(k.path, key, ctx.config.network)];
        // What recover would select (envelope and generation checks only, spec §5.1), before the
        // restore-time checks: a selected file that then fails them is what recover would fail on.
        const sel = selectLatest(results);
        const selected = sel.kind === "selected" ? sel.selected : undefined;
        const checked: BackupInspection[] = [];
        let selectedChecked: BackupInspection | undefined;
        for (const r of results) {
          const c = await checkRestorable(r, lnd, ctx.config.network, keyScanLimit);
          checked.push(c);
          if (r === selected) selectedChecked = c;
        }
        groups.push({ results: checked, selected: selectedChecked });
      }
      const all = groups.flatMap((g) => g.results.map((r) => ({ r, selected: g.selected === r })));
      const stale: string[] = [];
      for (const k of kinds) {
        stale.push(...await listStaleTempFiles(k.dir ? k.path : dirname(k.path)).catch(() => [] as string[]));
      }
      const staleTemp = [...new Set(stale)];
      const invalid = all.filter((x) => x.r.reason !== "ok").length;
      if (ctx.config.json) {
        out(toJson({
          files: all.map((x) => inspectionJson(x.r, x.selected)),
          selected: groups.map((g) => g.selected?.path).filter(Boolean),
          valid: all.length - invalid,
          invalid,
          stale_temp_files: staleTemp,
        }));
      } else {
        if (!all.length) out(`no backup files found in ${targets.join(", ")}`);
        for (const { r, selected } of all) {
          const what = r.reason === "ok"
            ? `ok, restorable (client key ${r.clientKeyLocator?.family}/${r.clientKeyLocator?.index}, ${r.address?.address})`
            : `INVALID ${r.reason}: ${r.message}`;
          out(`${selected ? "* " : "  "}${r.path}: ${what}`);
          if (r.tokenId) {
            out(
              `    token ${r.tokenId} created ${r.createdAtNs} ns${
                r.network ? `, network ${r.network}` : ""
              }`,
            );
          }
          if (r.staticAddress) {
            const s = r.staticAddress;
            out(
              `    static address: client ${s.clientPubkey ? toHex(s.clientPubkey) : "-"} ` +
                `server ${s.serverPubkey ? toHex(s.serverPubkey) : "-"} ` +
                `expiry ${s.expiry} first height ${s.legacyFirstHeight}`,
            );
          }
        }
        if (all.length) {
          out(`${all.length - invalid} valid, ${invalid} invalid; * = what recover would select`);
        }
        for (const p of staleTemp) {
          out(`stale temporary file left by an interrupted run (the next write removes it): ${p}`);
        }
      }
      return all.length > 0 && invalid === 0 ? ExitCode.Ok : ExitCode.VerifyFailed;
    }));
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
