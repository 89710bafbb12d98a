/**
 * Versioned schema migrations of the loopkit database. Append only: a released migration is never edited.
 *
 * Our own schema, following spec/static-address-and-deposits.md §5 with loopkit's decisions
 * (spec/README.md decisions 1 and 2): a unique outpoint, a persisted current state next to the
 * state history, and a `meta` table that pins the network of the database.
 *
 * @module
 */

/** One schema version: statements applied in one transaction. */
export interface Migration {
  /** Strictly increasing, starting at 1. */
  version: number;
  /** Short description, stored in `schema_migrations`. */
  name: string;
  /** DDL statements. */
  statements: string[];
}

/** All migrations, in order. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "static addresses, deposits, deposit history, meta",
    statements: [
      `CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      )`,
      `CREATE TABLE static_addresses (
        id INTEGER PRIMARY KEY,
        client_pubkey BLOB NOT NULL CHECK (length(client_pubkey) = 33),
        server_pubkey BLOB NOT NULL CHECK (length(server_pubkey) = 33),
        expiry INTEGER NOT NULL CHECK (expiry > 0),
        client_key_family INTEGER NOT NULL,
        client_key_index INTEGER NOT NULL CHECK (client_key_index >= 0),
        pkscript BLOB NOT NULL UNIQUE CHECK (length(pkscript) = 34),
        protocol_version INTEGER NOT NULL,
        initiation_height INTEGER NOT NULL,
        created_at TEXT NOT NULL
      )`,
      `CREATE TABLE deposits (
        id INTEGER PRIMARY KEY,
        deposit_id BLOB NOT NULL UNIQUE CHECK (length(deposit_id) = 32),
        tx_hash BLOB NOT NULL CHECK (length(tx_hash) = 32),
        out_index INTEGER NOT NULL CHECK (out_index >= 0),
        amount INTEGER NOT NULL CHECK (amount > 0),
        confirmation_height INTEGER NOT NULL DEFAULT 0 CHECK (confirmation_height >= 0),
        pkscript BLOB NOT NULL,
        timeout_sweep_pk_script BLOB NOT NULL,
        expiry_sweep_txid BLOB CHECK (expiry_sweep_txid IS NULL OR length(expiry_sweep_txid) = 32),
        finalized_withdrawal_tx TEXT,
        swap_hash BLOB CHECK (swap_hash IS NULL OR length(swap_hash) = 32),
        state TEXT NOT NULL,
        wallet_visible INTEGER NOT NULL DEFAULT 1 CHECK (wallet_visible IN (0, 1)),
        UNIQUE (tx_hash, out_index)
      )`,
      `CREATE TABLE deposit_updates (
        id INTEGER PRIMARY KEY,
        deposit_id BLOB NOT NULL REFERENCES deposits (deposit_id),
        update_state TEXT NOT NULL,
        update_timestamp TEXT NOT NULL
      )`,
      `CREATE INDEX deposit_updates_id_timestamp_index
        ON deposit_updates (deposit_id, update_timestamp DESC, id DESC)`,
    ],
  },
  {
    version: 2,
    name: "deposits: the stored expiry sweep transaction",
    statements: [
      // The one signed expiry sweep of a deposit (raw bytes), persisted before it is first published and
      // republished unchanged: a deposit never gets two different sweeps (core/deposits/sweep.ts).
      `ALTER TABLE deposits ADD COLUMN expiry_sweep_tx BLOB
        CHECK (expiry_sweep_tx IS NULL OR expiry_sweep_txid IS NOT NULL)`,
    ],
  },
  {
    version: 3,
    name: "deposits: the spend of a deposit by a transaction loopkit did not make",
    statements: [
      // `SpentElsewhere` (core/deposits/fsm.md): what spent the output, as lnd's spend notifier reported it.
      // On the deposit for the listings, and on the history row that records the state change.
      `ALTER TABLE deposits ADD COLUMN spending_txid BLOB
        CHECK (spending_txid IS NULL OR length(spending_txid) = 32)`,
      `ALTER TABLE deposits ADD COLUMN spending_height INTEGER`,
      `ALTER TABLE deposit_updates ADD COLUMN spending_txid BLOB
        CHECK (spending_txid IS NULL OR length(spending_txid) = 32)`,
      `ALTER TABLE deposit_updates ADD COLUMN spending_height INTEGER`,
    ],
  },
];
