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
    name: "static loop-ins: swaps, their deposits, their history",
    statements: [
      // One row per loop-in (spec/static-loop-in.md §2.4, our own layout; core/loopin/store.ts). Amounts are
      // sat, fee rates sat/kw, heights block heights, times ISO-8601 UTC. Hashes and txids are stored in
      // internal byte order (like deposits.tx_hash). The current state is persisted beside the history.
      `CREATE TABLE loopin_swaps (
        swap_hash BLOB PRIMARY KEY CHECK (length(swap_hash) = 32),
        preimage BLOB NOT NULL CHECK (length(preimage) = 32),
        state TEXT NOT NULL,
        initiation_height INTEGER NOT NULL CHECK (initiation_height >= 0),
        initiation_time TEXT NOT NULL,
        static_address_id INTEGER NOT NULL REFERENCES static_addresses (id),
        selected_amount INTEGER NOT NULL CHECK (selected_amount >= 0),
        swap_amount INTEGER NOT NULL CHECK (swap_amount > 0),
        total_deposit_amount INTEGER NOT NULL CHECK (total_deposit_amount >= swap_amount),
        quoted_swap_fee INTEGER NOT NULL CHECK (quoted_swap_fee >= 0),
        max_swap_fee INTEGER NOT NULL CHECK (max_swap_fee >= 0),
        payment_timeout_seconds INTEGER NOT NULL CHECK (payment_timeout_seconds > 0),
        fast INTEGER NOT NULL CHECK (fast IN (0, 1)),
        label TEXT NOT NULL,
        initiator TEXT NOT NULL,
        last_hop BLOB CHECK (last_hop IS NULL OR length(last_hop) = 33),
        htlc_key_family INTEGER NOT NULL,
        htlc_key_index INTEGER NOT NULL CHECK (htlc_key_index >= 0),
        htlc_client_pubkey BLOB NOT NULL CHECK (length(htlc_client_pubkey) = 33),
        htlc_server_pubkey BLOB CHECK (htlc_server_pubkey IS NULL OR length(htlc_server_pubkey) = 33),
        htlc_expiry INTEGER CHECK (htlc_expiry IS NULL OR htlc_expiry > 0),
        swap_invoice TEXT,
        invoice_state TEXT,
        invoice_checked_at TEXT,
        htlc_timeout_sweep_pkscript BLOB,
        fee_rate_standard INTEGER,
        fee_rate_high INTEGER,
        fee_rate_extreme INTEGER,
        htlc_txid_standard BLOB CHECK (htlc_txid_standard IS NULL OR length(htlc_txid_standard) = 32),
        htlc_txid_high BLOB CHECK (htlc_txid_high IS NULL OR length(htlc_txid_high) = 32),
        htlc_txid_extreme BLOB CHECK (htlc_txid_extreme IS NULL OR length(htlc_txid_extreme) = 32),
        htlc_tx_standard BLOB,
        htlc_tx_high BLOB,
        htlc_tx_extreme BLOB,
        armed_at TEXT,
        payment_deadline_started_at TEXT,
        payment_deadline_source TEXT CHECK (payment_deadline_source IS NULL OR
          payment_deadline_source IN ('risk_accepted', 'legacy_confirmations')),
        risk_decision TEXT NOT NULL DEFAULT '' CHECK (risk_decision IN ('', 'accepted', 'rejected')),
        risk_decision_at TEXT,
        invoice_canceled_at TEXT,
        deposits_released_at TEXT,
        confirmed_htlc_variant TEXT CHECK (confirmed_htlc_variant IS NULL OR
          confirmed_htlc_variant IN ('standard', 'high', 'extreme')),
        confirmed_htlc_txid BLOB CHECK (confirmed_htlc_txid IS NULL OR length(confirmed_htlc_txid) = 32),
        confirmed_htlc_height INTEGER,
        timeout_sweep_tx BLOB,
        timeout_sweep_txid BLOB CHECK (timeout_sweep_txid IS NULL OR length(timeout_sweep_txid) = 32),
        timeout_sweep_fee INTEGER,
        timeout_sweep_published_at TEXT,
        timeout_sweep_confirmed_height INTEGER,
        sweepless_signed_at TEXT,
        sweepless_txid BLOB CHECK (sweepless_txid IS NULL OR length(sweepless_txid) = 32),
        watch_ended_at TEXT,
        watch_end_reason TEXT,
        watch_end_txid BLOB CHECK (watch_end_txid IS NULL OR length(watch_end_txid) = 32),
        owner_host TEXT,
        owner_pid INTEGER,
        owner_start TEXT,
        last_error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        CHECK (timeout_sweep_tx IS NULL OR timeout_sweep_txid IS NOT NULL),
        CHECK (confirmed_htlc_txid IS NULL OR confirmed_htlc_variant IS NOT NULL)
      )`,
      `CREATE INDEX loopin_swaps_state_index ON loopin_swaps (state)`,
      // The swap's deposits in snapshot order (= HTLC input order). A deposit is held by at most one swap
      // at a time: the partial unique index covers the rows not released, so a second live swap for the same
      // deposit cannot be written, whatever two processes do at once.
      `CREATE TABLE loopin_swap_deposits (
        swap_hash BLOB NOT NULL REFERENCES loopin_swaps (swap_hash),
        position INTEGER NOT NULL CHECK (position >= 0),
        deposit_id BLOB NOT NULL REFERENCES deposits (deposit_id),
        tx_hash BLOB NOT NULL CHECK (length(tx_hash) = 32),
        out_index INTEGER NOT NULL CHECK (out_index >= 0),
        amount INTEGER NOT NULL CHECK (amount > 0),
        released INTEGER NOT NULL DEFAULT 0 CHECK (released IN (0, 1)),
        PRIMARY KEY (swap_hash, position),
        UNIQUE (swap_hash, deposit_id)
      )`,
      `CREATE UNIQUE INDEX loopin_swap_deposits_live_index ON loopin_swap_deposits (deposit_id)
        WHERE released = 0`,
      // History: one row per state change and per fact that matters (armed, risk decision, invoice
      // canceled, deadline started, deposits released, HTLC confirmed, sweep stored, watch ended).
      `CREATE TABLE loopin_swap_updates (
        id INTEGER PRIMARY KEY,
        swap_hash BLOB NOT NULL REFERENCES loopin_swaps (swap_hash),
        state TEXT NOT NULL,
        event TEXT,
        reason TEXT NOT NULL DEFAULT '',
        update_timestamp TEXT NOT NULL
      )`,
      `CREATE INDEX loopin_swap_updates_hash_index ON loopin_swap_updates (swap_hash, id)`,
    ],
  },
  {
    version: 4,
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
