/**
 * A minimal static loop-in CLIENT for the local swap server's tests: bare gRPC, the npm macaroon package
 * for the L402 token, its own MuSig2 (BIP-327 via @scure/btc-signer/musig2.js), and its own HTLC script
 * assembled from raw opcode bytes (spec §4.2) so it does not share the server's `Script.encode` path. The
 * static address comes from loopkit's `core/staticaddr` (a third computation the server must agree with).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type { MethodDefinition } from "@grpc/proto-loader";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { ripemd160 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { base64, hex } from "@scure/base";
import { assert } from "../assert.ts";
import { Transaction } from "@scure/btc-signer";
import {
  keyAggExport,
  keyAggregate,
  nonceAggregate,
  nonceGen,
  Session,
  sortKeys,
} from "@scure/btc-signer/musig2.js";
import * as macaroonLib from "macaroon";
import { Buffer } from "node:buffer";
import { loadSwapServerProto } from "../../proto/mod.ts";
import { type StaticAddress, staticAddress } from "../../core/staticaddr/script.ts";
import type { InProcessLightning } from "./lightning.ts";

// deno-lint-ignore no-explicit-any
export type Msg = Record<string, any>;

const pkg = loadSwapServerProto();

/** A proto method by service and name. */
export const method = (service: string, name: string): MethodDefinition<Msg, Msg> =>
  (pkg[`looprpc.${service}`] as unknown as Record<string, MethodDefinition<Msg, Msg>>)[name];

/** Result of {@linkcode call}. */
export interface CallResult {
  err?: grpc.ServiceError;
  res?: Msg;
}

/** One unary call with a 10 s deadline; never throws. */
export function call(
  client: grpc.Client,
  service: string,
  name: string,
  req: Msg,
  md = new grpc.Metadata(),
): Promise<CallResult> {
  const def = method(service, name);
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      req,
      md,
      { deadline: Date.now() + 10_000 },
      (err, res) => resolve(err ? { err } : { res: res! }),
    )
  );
}

/** Like {@linkcode call} but throws on a gRPC error. */
export async function mustCall(
  client: grpc.Client,
  service: string,
  name: string,
  req: Msg,
  md: grpc.Metadata,
) {
  const r = await call(client, service, name, req, md);
  if (r.err) throw new Error(`${service}/${name}: ${r.err.code} ${r.err.details}`);
  return r.res!;
}

/**
 * Buys an L402 token from the server; returns the credential metadata.
 *
 * @param pay the server's invoice source when in-process, or a function paying the challenge invoice
 *   (e.g. alice's lnd) and resolving to its preimage
 */
export async function buyToken(
  client: grpc.Client,
  pay: InProcessLightning | ((invoice: string) => Promise<Uint8Array>),
): Promise<grpc.Metadata> {
  const first = await call(client, "SwapServer", "FetchL402", {});
  const values = first.err!.metadata.get("www-authenticate").map(String).join(", ");
  const m = /LSAT macaroon="([^"]+)", invoice="([^"]+)"/.exec(values)!;
  const preimage = typeof pay === "function"
    ? await pay(m[2])
    : [...pay.invoices.values()].find((i) => i.paymentRequest === m[2])!.preimage;
  const mac = macaroonLib.importMacaroon(base64.decode(m[1]));
  mac.addFirstPartyCaveat(`preimage=${hex.encode(preimage)}`);
  const md = new grpc.Metadata();
  md.set("macaroon", hex.encode(mac.exportBinary()));
  return md;
}

/** Notifications received on one `SubscribeNotifications` stream. */
export class NotificationStream {
  readonly received: Msg[] = [];
  readonly #stream: grpc.ClientReadableStream<Msg>;
  #waiters: (() => void)[] = [];

  constructor(client: grpc.Client, md: grpc.Metadata) {
    const def = method("SwapServer", "SubscribeNotifications");
    this.#stream = client.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, {
      version: 1,
    }, md);
    this.#stream.on("data", (m: Msg) => {
      this.received.push(m);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.#stream.on("error", () => {});
  }

  /** Resolves with the first received notification (from index `from`) that `pred` accepts. */
  async next(pred: (m: Msg) => boolean, from = 0, timeoutMs = 5000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.slice(from).find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no matching notification within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Cancels the stream. */
  close(): void {
    this.#stream.cancel();
  }
}

/** The client's side of a static address: its private key and the address as loopkit computes it. */
export interface ClientAddress {
  clientPriv: Uint8Array;
  clientPub: Uint8Array;
  serverKey: Uint8Array;
  csvExpiry: number;
  address: StaticAddress;
  sortedKeys: Uint8Array[];
  tweak: Uint8Array;
  outputKeyXOnly: Uint8Array;
}

/** `ServerNewAddress` with a fresh client key. */
export async function newClientAddress(client: grpc.Client, md: grpc.Metadata): Promise<ClientAddress> {
  const clientPriv = secp256k1.utils.randomSecretKey();
  const clientPub = secp256k1.getPublicKey(clientPriv, true);
  const res = await mustCall(client, "StaticAddressServer", "ServerNewAddress", {
    protocolVersion: 0,
    clientKey: Buffer.from(clientPub),
  }, md);
  const serverKey = Uint8Array.from(res.params.serverKey);
  const csvExpiry = res.params.expiry;
  const address = staticAddress({
    clientPubkey: clientPub,
    serverPubkey: serverKey,
    csvExpiry,
    network: "regtest",
  });
  const sortedKeys = sortKeys([clientPub, serverKey]);
  const tweak = schnorr.utils.taggedHash("TapTweak", address.internalKeyXOnly, address.tapLeafHash);
  const outputKeyXOnly = keyAggExport(keyAggregate(sortedKeys, [tweak], [true]));
  return { clientPriv, clientPub, serverKey, csvExpiry, address, sortedKeys, tweak, outputKeyXOnly };
}

/** Minimal script-number push of a positive integer > 16. */
function pushNumber(n: number): number[] {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.push(v % 256);
  if (bytes[bytes.length - 1] & 0x80) bytes.push(0);
  return [bytes.length, ...bytes];
}

/** V2 HTLC script from raw opcodes (spec §4.2). */
export function clientHtlcScript(
  sender: Uint8Array,
  receiver: Uint8Array,
  swapHash: Uint8Array,
  cltv: number,
) {
  return Uint8Array.from([
    0x21,
    ...receiver,
    0xac, // <receiver> OP_CHECKSIG
    0x64, // OP_NOTIF
    0x76,
    0xa9,
    0x14,
    ...ripemd160(sha256(sender)),
    0x88,
    0xad, // DUP HASH160 <h160(sender)> EQUALVERIFY CHECKSIGVERIFY
    ...pushNumber(cltv),
    0xb1, // <cltv> OP_CHECKLOCKTIMEVERIFY
    0x67, // OP_ELSE
    0x82,
    0x01,
    0x20,
    0x88, // OP_SIZE <0x20> OP_EQUALVERIFY
    0xa9,
    0x14,
    ...ripemd160(swapHash),
    0x88, // OP_HASH160 <ripemd160(hash)> OP_EQUALVERIFY
    0x51,
    0xb2, // OP_1 OP_CHECKSEQUENCEVERIFY
    0x68, // OP_ENDIF
  ]);
}

/** Client's weight formula (spec §4.3). */
export function clientHtlcWeight(n: number, change: boolean): number {
  const outs = change ? 2 : 1;
  return 4 * (8 + 1 + 41 * n + 1 + 43 * outs) + 2 + 66 * n;
}

/** A deposit as the client knows it. */
export interface ClientDeposit {
  txid: string;
  vout: number;
  valueSat: bigint;
}

/** The HTLC tx for one variant (spec §4.3). */
export function clientHtlcTx(
  deposits: ClientDeposit[],
  staticPkScript: Uint8Array,
  htlcScript: Uint8Array,
  swapAmount: bigint,
  change: bigint,
  feeRate: bigint,
): Transaction {
  const tx = new Transaction({ version: 2, lockTime: 0, allowUnknownOutputs: true });
  for (const d of deposits) {
    tx.addInput({
      txid: d.txid,
      index: d.vout,
      sequence: 0,
      witnessUtxo: { script: staticPkScript, amount: d.valueSat },
    });
  }
  const fee = (feeRate * BigInt(clientHtlcWeight(deposits.length, change > 0n))) / 1000n;
  tx.addOutput({ script: Uint8Array.of(0x00, 0x20, ...sha256(htlcScript)), amount: swapAmount - fee });
  if (change > 0n) tx.addOutput({ script: staticPkScript, amount: change });
  return tx;
}

/** BIP-341 key-path sighash, SIGHASH_DEFAULT. */
export function sighashOf(tx: Transaction, i: number, prevouts: { script: Uint8Array; amount: bigint }[]) {
  return tx.preimageWitnessV1(i, prevouts.map((p) => p.script), 0, prevouts.map((p) => p.amount));
}

/** One MuSig2 partial signature by the client for `sighash`, against the server's nonce. */
export function clientPartialSign(a: ClientAddress, serverNonce: Uint8Array, sighash: Uint8Array) {
  const nonces = nonceGen(a.clientPub, a.clientPriv, a.outputKeyXOnly);
  const clientFirst = hex.encode(a.sortedKeys[0]) === hex.encode(a.clientPub);
  const ordered = clientFirst ? [nonces.public, serverNonce] : [serverNonce, nonces.public];
  const session = new Session(nonceAggregate(ordered), a.sortedKeys, sighash, [a.tweak], [true]);
  return { nonce: nonces.public, sig: session.sign(nonces.secret, a.clientPriv) };
}

/** Proto field names of the variants in the server response / client push. */
export const VARIANTS = [
  ["standard", "standardHtlcInfo"],
  ["high", "highFeeHtlcInfo"],
  ["extreme", "extremeFeeHtlcInfo"],
] as const;

/** What {@linkcode signHtlcs} needs from a loop-in: the request sent, the answer and the amounts. */
export interface LoopInAnswer {
  req: Msg;
  res?: Msg;
  swapHash: Uint8Array;
  swapAmount: bigint;
  change: bigint;
  deposits: ClientDeposit[];
}

/** The client's HTLC txs and partial signatures for a loop-in answer. */
export function signHtlcs(addr: ClientAddress, init: LoopInAnswer) {
  const res = init.res!;
  const script = clientHtlcScript(
    Uint8Array.from(init.req.htlcClientPubKey),
    Uint8Array.from(res.htlcServerPubKey),
    init.swapHash,
    res.htlcExpiry,
  );
  const prevouts = init.deposits.map((d) => ({ script: addr.address.pkScript, amount: d.valueSat }));
  const push: Msg = { swapHash: Buffer.from(init.swapHash) };
  const txs: Record<string, { tx: Transaction; sighashes: Uint8Array[] }> = {};
  for (const [variant, field] of VARIANTS) {
    const info = res[field];
    const tx = clientHtlcTx(
      init.deposits,
      addr.address.pkScript,
      script,
      init.swapAmount,
      init.change,
      BigInt(info.feeRate),
    );
    const sighashes = init.deposits.map((_, i) => sighashOf(tx, i, prevouts));
    const signed = sighashes.map((h, i) => clientPartialSign(addr, Uint8Array.from(info.nonces[i]), h));
    push[field] = {
      nonces: signed.map((s) => Buffer.from(s.nonce)),
      sigs: signed.map((s) => Buffer.from(s.sig)),
    };
    txs[variant] = { tx, sighashes };
  }
  return { push, txs, script };
}

/** The client's answer to a sweep notification: checks, then signs every listed deposit. */
export function signSweep(addr: ClientAddress, n: Msg, expectedChange: bigint) {
  const sweep = n.staticLoopInSweep;
  const tx = Transaction.fromPSBT(Uint8Array.from(sweep.sweepTxPsbt), { allowUnknownOutputs: true });
  const outs = Array.from({ length: tx.outputsLength }, (_, i) => tx.getOutput(i));
  if (expectedChange > 0n) {
    assert(
      outs.some((o) =>
        o.amount === expectedChange && hex.encode(o.script!) === hex.encode(addr.address.pkScript)
      ),
      "sweep pays the exact change to the static address",
    );
  }
  const prevouts = (sweep.prevoutInfo as Msg[]).map((p) => ({
    script: Uint8Array.from(p.pkScript),
    amount: BigInt(p.value),
  }));
  const signingInfo: Msg = {};
  for (let i = 0; i < tx.inputsLength; i++) {
    const inp = tx.getInput(i);
    const op = `${hex.encode(inp.txid!)}:${inp.index}`;
    const nonce = Uint8Array.from(sweep.depositToNonces[op]);
    const s = clientPartialSign(addr, nonce, sighashOf(tx, i, prevouts));
    signingInfo[op] = { nonce: Buffer.from(s.nonce), sig: Buffer.from(s.sig) };
  }
  return {
    tx,
    prevouts,
    push: {
      swapHash: sweep.swapHash,
      txid: Buffer.from(hex.decode(tx.id).reverse()),
      signingInfo,
    },
  };
}

export const isRisk = (kind: "Accepted" | "Rejected", hash: Uint8Array) => (m: Msg) =>
  m.notification === `staticLoopInRisk${kind}` &&
  hex.encode(m[`staticLoopInRisk${kind}`].swapHash) === hex.encode(hash);
export const isSweep = (hash: Uint8Array) => (m: Msg) =>
  m.notification === "staticLoopInSweep" && hex.encode(m.staticLoopInSweep.swapHash) === hex.encode(hash);
