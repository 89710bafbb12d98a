/**
 * The typed lnd surface loopkit uses. Core code depends on this interface only;
 * `lnd/grpc_client.ts` implements it over gRPC, unit tests implement it in-process.
 *
 * Conventions: byte fields are `Uint8Array`; 64-bit amounts and heights that can
 * exceed 2^53 are `bigint`; txids are display hex (byte-reversed) strings.
 *
 * @module
 */

/** lnd key locator (`signrpc.KeyLocator`). */
export interface KeyLocator {
  /** Key family, e.g. 42060 (spec/static-address-and-deposits.md §1). */
  family: number;
  /** Child index inside the family. */
  index: number;
}

/** A derived key: 33-byte compressed public key plus its locator. */
export interface KeyDescriptor {
  /** 33-byte compressed secp256k1 public key. */
  rawKeyBytes: Uint8Array;
  /** Where lnd derived it. */
  keyLocator: KeyLocator;
}

/** Subset of `lnrpc.GetInfoResponse` loopkit reads. */
export interface LndInfo {
  /** Node identity, 33-byte compressed pubkey as hex. */
  identityPubkey: string;
  /** Best block height lnd knows. */
  blockHeight: number;
  /** Best block hash (display hex). */
  blockHash: string;
  /** Chains lnd runs on, e.g. `[{chain: "bitcoin", network: "regtest"}]`. */
  chains: { chain: string; network: string }[];
  /** True when lnd's wallet is synced to the chain. */
  syncedToChain: boolean;
  /** lnd version string. */
  version: string;
}

/** A wallet UTXO (`lnrpc.Utxo`). */
export interface Utxo {
  /** Outpoint txid, display hex. */
  txid: string;
  /** Outpoint output index. */
  vout: number;
  /** Value in sat. */
  amountSat: bigint;
  /** Output pkScript. */
  pkScript: Uint8Array;
  /** Confirmations; 0 while in the mempool. */
  confirmations: number;
  /** Address string lnd reports (may be empty for imported scripts). */
  address: string;
}

/** Result of {@linkcode LndClient.importTapscript}. */
export interface ImportTapscriptResult {
  /** False when lnd answered "already exists" (the script was tracked before). */
  imported: boolean;
  /** The P2TR address lnd reports; absent when nothing new was imported. */
  address?: string;
}

/** First confirmation of a transaction (`chainrpc.ConfDetails`). */
export interface ConfirmationDetails {
  /** Height of the block that contains the transaction. */
  blockHeight: number;
  /** That block's hash, display hex. */
  blockHash: string;
  /** Index of the transaction inside the block. */
  txIndex: number;
  /** The raw confirmed transaction. */
  rawTx: Uint8Array;
}

/** The spend of an outpoint (`chainrpc.SpendDetails`), the fields loopkit reads. */
export interface SpendDetails {
  /** Txid of the spending transaction, display hex. */
  spendingTxid: string;
  /** Height of the block holding the spending transaction (0 if lnd reports it unconfirmed). */
  spendingHeight: number;
  /** Index of the input that spends the outpoint. */
  spendingInputIndex: number;
}

/** A transaction output (`signrpc.TxOut`): what an input spends. */
export interface TxOut {
  /** Value in sat. */
  valueSat: bigint;
  /** Output script. */
  pkScript: Uint8Array;
}

/** `signrpc.SignMethod`: how lnd signs one input. */
export type SignMethod =
  | "SIGN_METHOD_WITNESS_V0"
  | "SIGN_METHOD_TAPROOT_KEY_SPEND_BIP0086"
  | "SIGN_METHOD_TAPROOT_KEY_SPEND"
  | "SIGN_METHOD_TAPROOT_SCRIPT_SPEND";

/** One input to sign (`signrpc.SignDescriptor`), the fields loopkit sets. */
export interface SignDescriptor {
  /**
   * Which key signs. Give the locator (lnd re-derives the key from it; lnd requires it for keys
   * obtained through `DeriveKey`) and, optionally, the 33-byte compressed public key.
   */
  keyDesc: { keyLocator: KeyLocator; rawKeyBytes?: Uint8Array };
  /** For a taproot script-path spend: the leaf script being satisfied. */
  witnessScript?: Uint8Array;
  /** The output this input spends (value and pkScript). */
  output: TxOut;
  /** Sighash type; 0 is BIP-341 `SIGHASH_DEFAULT`. */
  sighash: number;
  /** Index of the input in the transaction. */
  inputIndex: number;
  /** Signing method. */
  signMethod: SignMethod;
}

/** `lnrpc.Payment.PaymentStatus`, plus `UNKNOWN` when no update arrived before the deadline. */
export type PaymentStatus = "UNKNOWN" | "INITIATED" | "IN_FLIGHT" | "SUCCEEDED" | "FAILED";

/** Latest state of an outgoing payment (`lnrpc.Payment`). */
export interface PaymentResult {
  /** Payment hash, hex. */
  paymentHash: string;
  /**
   * `SUCCEEDED` and `FAILED` are final. `IN_FLIGHT`/`INITIATED`/`UNKNOWN` mean the outcome is
   * not known yet (deadline reached): the payment may still settle; track it again later.
   */
  status: PaymentStatus;
  /** 32-byte preimage, only when `SUCCEEDED`. */
  preimage?: Uint8Array;
  /** Routing fee paid, msat (0 unless settled). */
  feeMsat: bigint;
  /** Amount paid excluding fees, msat. */
  valueMsat: bigint;
  /** `lnrpc.PaymentFailureReason` name, `FAILURE_REASON_NONE` unless `FAILED`. */
  failureReason: string;
}

/**
 * One hop hint of a private route (`lnrpc.HopHint`; the same layout as swapserverrpc's
 * `common.proto` HopHint, spec/static-loop-in.md §1.4).
 */
export interface HopHint {
  /** 33-byte compressed public key of the hop's node, hex (lowercase). */
  nodeId: string;
  /** Short channel id (uint64). */
  chanId: bigint;
  /** Base fee of the channel, msat. */
  feeBaseMsat: number;
  /** Proportional fee, parts per million. */
  feeProportionalMillionths: number;
  /** CLTV expiry delta of the channel, blocks. */
  cltvExpiryDelta: number;
}

/** A private route to the invoice's node (`lnrpc.RouteHint`, spec/static-loop-in.md §1.4). */
export interface RouteHint {
  /** The hops, in route order. */
  hopHints: HopHint[];
}

/**
 * A MuSig2 signing session inside lnd (`signrpc.MuSig2SessionResponse`), BIP-327 draft
 * v1.0.0-rc2 (`MUSIG2_VERSION_V100RC2`). The secret nonce never leaves lnd; the session dies with
 * an lnd restart. spec/static-loop-in.md §4.4.
 */
export interface MuSig2Session {
  /** 32-byte session id, used by the other MuSig2 calls. */
  sessionId: Uint8Array;
  /** 32-byte x-only aggregate key after the taproot tweak (the P2TR output key). */
  combinedKey: Uint8Array;
  /** 32-byte x-only aggregate key before the taproot tweak (the P2TR internal key). */
  taprootInternalKey: Uint8Array;
  /** lnd's 66-byte public nonce (two 33-byte compressed points, R1 || R2). */
  localPublicNonces: Uint8Array;
  /** True once lnd knows every signer's public nonce (signing can start). */
  haveAllNonces: boolean;
}

/** `lnrpc.Invoice.InvoiceState`. */
export type InvoiceState = "OPEN" | "SETTLED" | "CANCELED" | "ACCEPTED";

/** The fields of an lnd invoice (`lnrpc.Invoice`) loopkit reads. */
export interface InvoiceInfo {
  /** Invoice state; `SETTLED` means the preimage was revealed to the payer. */
  state: InvoiceState;
  /** Invoice amount, msat. */
  valueMsat: bigint;
  /** Amount received, msat (0 unless settled). */
  amtPaidMsat: bigint;
  /** Unix time (s) of the settlement; 0 unless settled. */
  settleDate: number;
  /** The BOLT 11 payment request. */
  paymentRequest: string;
}

/** Request of {@linkcode LndClient.addInvoice} (`lnrpc.Invoice`, the fields loopkit sets). */
export interface AddInvoiceRequest {
  /** Invoice amount, msat (> 0). */
  valueMsat: bigint;
  /** Description put into the payment request. */
  memo: string;
  /** 32-byte preimage; the payment hash is its SHA-256. */
  preimage: Uint8Array;
  /** Invoice expiry, seconds (spec/static-loop-in.md §3.6: 31 536 000). */
  expirySec: number;
  /** lnd's `private`: let lnd add hop hints of its own private channels. */
  private: boolean;
  /** Route hints to put into the payment request. */
  routeHints?: RouteHint[];
}

/** Result of {@linkcode LndClient.addInvoice} (`lnrpc.AddInvoiceResponse`). */
export interface AddInvoiceResult {
  /** BOLT 11 payment request. */
  paymentRequest: string;
  /** 32-byte payment hash. */
  paymentHash: Uint8Array;
  /** lnd's invoice add index. */
  addIndex: bigint;
}

/** A wallet transaction (`lnrpc.Transaction`), the fields loopkit reads. */
export interface WalletTransaction {
  /** Txid, display hex. */
  txid: string;
  /** The raw serialized transaction (lnd's `raw_tx_hex`). */
  rawTx: Uint8Array;
  /** Confirmations; 0 while unconfirmed. */
  numConfirmations: number;
  /** Height of the block holding it; 0 while unconfirmed. */
  blockHeight: number;
  /** Outpoints the transaction spends, `txid:vout` (display hex), in input order. */
  previousOutpoints: string[];
}

/**
 * What loopkit needs from lnd. Grows with each capability; every method maps to
 * exactly one lnd RPC, named in its doc.
 */
export interface LndClient {
  /** `lnrpc.Lightning/GetInfo`. */
  getInfo(): Promise<LndInfo>;
  /**
   * `signrpc.Signer/DeriveSharedKey`: SHA-256 of the compressed ECDH point
   * `k(keyLoc) · ephemeralPubkey` (spec/backup-and-recovery.md §1.5).
   * @param ephemeralPubkey 33-byte compressed point
   * @param keyLoc locator of lnd's private key
   * @returns 32-byte shared key
   */
  deriveSharedKey(ephemeralPubkey: Uint8Array, keyLoc: KeyLocator): Promise<Uint8Array>;
  /** `walletrpc.WalletKit/DeriveKey`: read-only derivation at a locator. */
  deriveKey(keyLoc: KeyLocator): Promise<KeyDescriptor>;
  /** `walletrpc.WalletKit/DeriveNextKey`: next unused key of a family (advances lnd's counter). */
  deriveNextKey(family: number): Promise<KeyDescriptor>;
  /**
   * `walletrpc.WalletKit/ListUnspent` with `min_confs`/`max_confs` as given (lnd reads
   * `max_confs = 0` together with `min_confs = 0` as "no upper bound"). Without `opts.account` (or with
   * an empty one) every wallet UTXO; with it, lnd's `account` filter: only outputs of the wallet account
   * of that name. `"imported"` holds the scripts added by `ImportTapscript` (the static-address outputs;
   * checked on regtest, tests/regtest/imported_account_test.ts). An lnd too old for the field ignores it
   * and lists everything. With `opts.pkScripts`, only the UTXOs paying one of those scripts are returned
   * (lnd still sends the whole answer; the others are dropped while it is decoded, so memory stays bounded). spec/backup-and-recovery.md §6.5, spec/static-address-and-deposits.md §4.16.
   */
  listUnspent(
    minConfs: number,
    maxConfs: number,
    opts?: { account?: string; pkScripts?: readonly Uint8Array[] },
  ): Promise<Utxo[]>;
  /**
   * `walletrpc.WalletKit/ImportTapscript` with `full_tree.all_leaves = [{leaf_version: 0xc0,
   * script}]` so lnd tracks the P2TR output. An "already exists" answer counts as success
   * (`imported: false`). spec/static-address-and-deposits.md §2.8.
   * @param internalKeyXOnly 32-byte x-only internal key (pre-tweak)
   * @param leafScript the single tapscript leaf
   */
  importTapscript(internalKeyXOnly: Uint8Array, leafScript: Uint8Array): Promise<ImportTapscriptResult>;
  /** `walletrpc.WalletKit/NextAddr`: default account, `TAPROOT_PUBKEY`, `change = false`. */
  nextAddr(): Promise<string>;
  /**
   * `walletrpc.WalletKit/PublishTransaction`. Throws when lnd reports a publish error.
   * @param tx raw serialized transaction
   * @param label optional wallet label (lnd limits it to 500 characters)
   */
  publishTransaction(tx: Uint8Array, label?: string): Promise<void>;
  /** `walletrpc.WalletKit/EstimateFee`: fee rate (sat/kw) for `confTarget` blocks. */
  estimateFeeSatPerKw(confTarget: number): Promise<bigint>;
  /** `walletrpc.WalletKit/EstimateFee` with `conf_target = 6`: the minimum relay fee (sat/kw). */
  minRelayFeeSatPerKw(): Promise<bigint>;
  /**
   * `chainrpc.ChainNotifier/RegisterConfirmationsNtfn`: waits for the first confirmation event.
   * @param txid display hex, or null to match on `pkScript` alone
   * @param pkScript an output script of the transaction
   * @param numConfs confirmations to wait for (≥ 1)
   * @param heightHint earliest height the transaction can be in
   * @param opts `timeoutMs`: how long to wait
   * @returns the confirmation, or null when none arrived within the timeout
   */
  registerConfirmation(
    txid: string | null,
    pkScript: Uint8Array,
    numConfs: number,
    heightHint: number,
    opts?: { timeoutMs?: number },
  ): Promise<ConfirmationDetails | null>;
  /**
   * `chainrpc.ChainNotifier/RegisterSpendNtfn`: waits for the first spend event of an outpoint. lnd
   * answers at once for a spend already in the chain at or after `heightHint` (its historical spend
   * dispatch); no event within the timeout is not proof the output is unspent.
   * @param outpoint the output, txid as display hex
   * @param pkScript the output's script
   * @param heightHint earliest height the output can have been spent (e.g. its confirmation height)
   * @param opts `timeoutMs`: how long to wait
   * @returns the spend, or null when none arrived within the timeout
   */
  registerSpend(
    outpoint: { txid: string; vout: number },
    pkScript: Uint8Array,
    heightHint: number,
    opts?: { timeoutMs?: number },
  ): Promise<SpendDetails | null>;
  /**
   * `routerrpc.Router/SendPaymentV2`: pays a BOLT 11 invoice and follows the payment until it is
   * final or `timeoutSec` (plus a margin) has passed; see {@linkcode PaymentResult.status}.
   * @param invoice BOLT 11 payment request
   * @param feeLimitSat maximum routing fee, sat
   * @param timeoutSec lnd's `timeout_seconds` for finding routes
   * @throws {LndError} (gRPC client: `LndRpcError`) when lnd refuses the payment, e.g. "invoice is already paid" or
   *   "payment is in transition" (then track it with {@linkcode LndClient.trackPaymentV2})
   */
  sendPaymentV2(invoice: string, feeLimitSat: bigint, timeoutSec: number): Promise<PaymentResult>;
  /**
   * `routerrpc.Router/TrackPaymentV2`: latest state of a payment, following it until it is
   * final or `opts.timeoutMs` has passed.
   * @param paymentHash 32-byte payment hash
   */
  trackPaymentV2(paymentHash: Uint8Array, opts?: { timeoutMs?: number }): Promise<PaymentResult>;
  /**
   * `signrpc.Signer/SignOutputRaw`: one signature per descriptor, in descriptor order. lnd signs
   * with the key at the descriptor's locator, without checking the transaction is final or valid.
   * For taproot spends the signature is 64 bytes with `sighash` 0 (`SIGHASH_DEFAULT`).
   * spec/static-address-and-deposits.md §4.8 (the expiry sweep).
   * @param tx raw serialized unsigned (or partially signed) transaction
   * @param signDescs the inputs to sign
   * @param prevOutputs every input's spent output, in input order (required for taproot)
   * @returns the raw signatures, one per descriptor
   */
  signOutputRaw(tx: Uint8Array, signDescs: SignDescriptor[], prevOutputs: TxOut[]): Promise<Uint8Array[]>;
  /**
   * `signrpc.Signer/MuSig2CreateSession` with `version = MUSIG2_VERSION_V100RC2` and
   * `taproot_tweak = {script_root, key_spend_only: false}`: a session for a key-path spend of a
   * P2TR output whose internal key is the MuSig2 aggregate of `allSignerPubkeys` (lnd sorts them)
   * and whose script tree has root `taprootScriptRoot`. spec/static-loop-in.md §4.4.
   * @param req.keyLocator lnd's own key (must be one of `allSignerPubkeys`)
   * @param req.allSignerPubkeys every signer's 33-byte compressed key, lnd's included
   * @param req.taprootScriptRoot 32-byte taproot merkle root (the tapleaf hash for a one-leaf tree)
   * @param req.otherSignerPublicNonces 66-byte nonces of the other signers, if already known
   * @throws {LndRpcError} when lnd refuses (e.g. its key is not in the list)
   */
  muSig2CreateSession(req: {
    keyLocator: KeyLocator;
    allSignerPubkeys: Uint8Array[];
    taprootScriptRoot: Uint8Array;
    otherSignerPublicNonces?: Uint8Array[];
  }): Promise<MuSig2Session>;
  /**
   * `signrpc.Signer/MuSig2RegisterNonces`: adds the other signers' 66-byte public nonces.
   * @returns lnd's `have_all_nonces`
   * @throws {LndRpcError} for an unknown session or a nonce lnd already has
   */
  muSig2RegisterNonces(sessionId: Uint8Array, otherSignerPublicNonces: Uint8Array[]): Promise<boolean>;
  /**
   * `signrpc.Signer/MuSig2Sign`: lnd's partial signature over a 32-byte digest (for a taproot
   * key-path spend: the BIP-341 sighash). A session signs once.
   * @param cleanup lnd's `cleanup`: forget the session after signing (default false)
   * @returns the 32-byte partial signature
   * @throws {LndRpcError} for an unknown session or missing nonces
   */
  muSig2Sign(sessionId: Uint8Array, messageDigest: Uint8Array, cleanup?: boolean): Promise<Uint8Array>;
  /**
   * `signrpc.Signer/MuSig2Cleanup`: forgets a session (its secret nonce). A session lnd does not
   * know (already cleaned up, signed with cleanup, lnd restarted) is not an error.
   */
  muSig2Cleanup(sessionId: Uint8Array): Promise<void>;
  /**
   * `lnrpc.Lightning/AddInvoice`: a regular (not hold) invoice with the given preimage; lnd settles
   * it by itself when paid. spec/static-loop-in.md §1.7 step 16, §3.6.
   * @throws {LndRpcError} e.g. when an invoice with that payment hash exists
   */
  addInvoice(req: AddInvoiceRequest): Promise<AddInvoiceResult>;
  /**
   * `lnrpc.Lightning/LookupInvoice` by payment hash.
   * @returns the invoice, or null when lnd has no invoice with that hash (lnd's NOT_FOUND)
   */
  lookupInvoice(paymentHash: Uint8Array): Promise<InvoiceInfo | null>;
  /**
   * `invoicesrpc.Invoices/CancelInvoice`. An invoice already canceled counts as success.
   * @throws {LndRpcError} code `lnd_invoice_settled` when the invoice is settled (the preimage is
   *   out: nothing to cancel), `lnd_invoice_not_found` when lnd has no such invoice
   */
  cancelInvoice(paymentHash: Uint8Array): Promise<void>;
  /**
   * `lnrpc.Lightning/GetTransactions{start_height, end_height}`: the wallet's transactions,
   * confirmed and unconfirmed (`endHeight = -1`: up to the mempool). spec/static-loop-in.md §3.8.
   * @param startHeight default 0
   * @param endHeight default -1
   */
  getTransactions(startHeight?: number, endHeight?: number): Promise<WalletTransaction[]>;
  /** Closes the underlying channels. Idempotent. */
  close(): void;
}
