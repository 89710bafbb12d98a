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
import { writeGenerationBackup } from "../core/backup/generation.ts";
import { listStaleTempFiles } from "../core/fs/temp_files.ts";
import { dirname } from "node:path";
import { parsePathListEnv } from "../core/config/config.ts";
import { ExitCode, LoopkitError, usageError } from "../core/errors.ts";
import { action } from "./context.ts";
import { out, toHex, toJson } from "./output.ts";
import { generationBackupDeps, writeResultJson, writeResultText } from "./generation_backup.ts";

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
    .option(
      "--copy-to <dir>",
      "also place the identical file in this directory (repeatable; default: LOOPKIT_COPY_TO, ':'-separated)",
      collect,
      [],
    )
    .action(action<{ copyTo: string[] }>(async (ctx, opts) => {
      // --copy-to given: the flags; else LOOPKIT_COPY_TO (":"-separated), like every flag's LOOPKIT_<FLAG>.
      opts.copyTo = opts.copyTo.length ? opts.copyTo : parsePathListEnv(Deno.env.get("LOOPKIT_COPY_TO"));
      for (const d of opts.copyTo) {
        const st = await statOrNull(d);
        if (!st?.isDirectory) throw usageError(`Invalid --copy-to "${d}": not an existing directory`);
      }
      const r = await writeGenerationBackup(generationBackupDeps(ctx, opts.copyTo));
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
