/**
 * Static-address rows (spec/static-address-and-deposits.md §3.1, §5.1).
 *
 * @module
 */
import type { Transaction } from "@libsql/client";
import { ExitCode, LoopkitError } from "../errors.ts";
import { type Db, dbError } from "./db.ts";

/** One stored static address. The address string is not stored; it is recomputed from the keys. */
export interface StaticAddressRow {
  /** Row id; the lowest id is the "legacy" (V0) address. */
  id: number;
  /** 33-byte compressed client public key. */
  clientPubkey: Uint8Array;
  /** 33-byte compressed server public key. */
  serverPubkey: Uint8Array;
  /** CSV expiry in blocks. */
  expiry: number;
  /** Client key family (42060 for the legacy address). */
  clientKeyFamily: number;
  /** Client key index inside the family. */
  clientKeyIndex: number;
  /** 34-byte P2TR pkScript. */
  pkScript: Uint8Array;
  /** Static-address protocol version (0). */
  protocolVersion: number;
  /** Block height when the row was created. */
  initiationHeight: number;
}

/** A new row, before it has an id. */
export type NewStaticAddress = Omit<StaticAddressRow, "id">;

type Row = Record<string, unknown>;

function toBytes(v: unknown, column: string): Uint8Array {
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (v instanceof Uint8Array) return new Uint8Array(v);
  throw new LoopkitError(
    "db_corrupt",
    `Database column static_addresses.${column} is not a blob`,
    ExitCode.Failure,
  );
}

function fromRow(r: Row): StaticAddressRow {
  return {
    id: Number(r.id),
    clientPubkey: toBytes(r.client_pubkey, "client_pubkey"),
    serverPubkey: toBytes(r.server_pubkey, "server_pubkey"),
    expiry: Number(r.expiry),
    clientKeyFamily: Number(r.client_key_family),
    clientKeyIndex: Number(r.client_key_index),
    pkScript: toBytes(r.pkscript, "pkscript"),
    protocolVersion: Number(r.protocol_version),
    initiationHeight: Number(r.initiation_height),
  };
}

const COLUMNS =
  "id, client_pubkey, server_pubkey, expiry, client_key_family, client_key_index, pkscript, protocol_version, initiation_height";

/** All static addresses, ordered by id (the first is the legacy address). */
export async function listStaticAddresses(db: Db | Transaction): Promise<StaticAddressRow[]> {
  const exec = "client" in db ? db.client : db;
  try {
    const rs = await exec.execute(`SELECT ${COLUMNS} FROM static_addresses ORDER BY id`);
    return rs.rows.map((r) => fromRow(r as unknown as Row));
  } catch (err) {
    throw dbError(err, "reading static addresses");
  }
}

/** The legacy (lowest id) static address, or `null` when there is none (spec §3.1). */
export async function getLegacyStaticAddress(db: Db | Transaction): Promise<StaticAddressRow | null> {
  const rows = await listStaticAddresses(db);
  return rows[0] ?? null;
}

/**
 * Inserts a static address inside the caller's transaction.
 * @returns the new row id
 * @throws {LibsqlError} on a duplicate pkScript (UNIQUE) or a CHECK failure; callers map it with `dbError`
 */
export async function insertStaticAddress(tx: Transaction, a: NewStaticAddress): Promise<number> {
  const rs = await tx.execute({
    sql:
      `INSERT INTO static_addresses (client_pubkey, server_pubkey, expiry, client_key_family, client_key_index,
            pkscript, protocol_version, initiation_height, created_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    args: [
      a.clientPubkey,
      a.serverPubkey,
      a.expiry,
      a.clientKeyFamily,
      a.clientKeyIndex,
      a.pkScript,
      a.protocolVersion,
      a.initiationHeight,
      new Date().toISOString(),
    ],
  });
  return Number(rs.lastInsertRowid);
}
