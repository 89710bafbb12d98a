import { assertEquals, assertNotEquals } from "../../tests/assert.ts";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  type ServerLoopInResponse,
  type ServerResponseContext,
  validateLoopInResponse,
} from "./validate_server.ts";
import { assertLoopkitError } from "./_testing.ts";

const pub = (seed: number) => secp256k1.getPublicKey(sha256(Uint8Array.of(seed, 7)), true);
const nonce = (seed: number) => Uint8Array.of(...pub(seed), ...pub(seed + 100));

const H = 863_000;
const N = 2;

function response(over: Partial<ServerLoopInResponse> = {}): ServerLoopInResponse {
  return {
    htlcServerPubKey: pub(1),
    htlcExpiry: H + 1_000,
    standard: { nonces: [nonce(10), nonce(11)], feeRateSatPerKw: 1_000n },
    high: { nonces: [nonce(20), nonce(21)], feeRateSatPerKw: 5_000n },
    extreme: { nonces: [nonce(30), nonce(31)], feeRateSatPerKw: 20_000n },
    ...over,
  };
}

const ctx: ServerResponseContext = {
  initiationHeight: H,
  numDeposits: N,
  swapAmountSat: 1_000_000n,
  changeSat: 100_000n,
  earliestConfirmedDepositExpiryHeight: H + 10_000,
};

/** Spec §4.3 weight for N inputs with change, written out. */
const W = 4 * (8 + 1 + 41 * N + 1 + 43 * 2) + 2 + 66 * N;

Deno.test("validateLoopInResponse accepts a good answer and returns copies, rates and fees", () => {
  const r = response();
  const v = validateLoopInResponse(r, ctx);
  assertEquals(v.serverHtlcPubkey, pub(1));
  assertEquals(v.htlcExpiry, H + 1_000);
  assertEquals(v.nonces.standard, [nonce(10), nonce(11)]);
  assertEquals(v.nonces.extreme[1], nonce(31));
  assertEquals(v.feeRates, { standard: 1_000n, high: 5_000n, extreme: 20_000n });
  assertEquals(v.fees.high, 5_000n * BigInt(W) / 1000n);
  // Copies: changing the input afterwards changes nothing returned.
  r.standard!.nonces[0][0] ^= 1;
  assertNotEquals(v.nonces.standard[0], r.standard!.nonces[0]);
});

Deno.test("server HTLC key: 33-byte compressed, on the curve", () => {
  assertLoopkitError(
    () => validateLoopInResponse(response({ htlcServerPubKey: pub(1).slice(1) }), ctx),
    "server_htlc_key_invalid",
    1,
    "32 bytes",
  );
  const uncompressed = secp256k1.getPublicKey(sha256(Uint8Array.of(1, 7)), false);
  assertLoopkitError(
    () => validateLoopInResponse(response({ htlcServerPubKey: uncompressed }), ctx),
    "server_htlc_key_invalid",
    1,
  );
  assertLoopkitError(
    () =>
      validateLoopInResponse(response({ htlcServerPubKey: Uint8Array.of(0x04, ...pub(1).slice(1)) }), ctx),
    "server_htlc_key_invalid",
    1,
    "0x04",
  );
  // An x coordinate with no curve point: x³ + 7 is not a square for x = 5 (checked by trying both parities).
  let offCurve: Uint8Array | null = null;
  for (let x = 1; offCurve === null; x++) {
    const cand = Uint8Array.of(0x02, ...new Uint8Array(31), x);
    try {
      secp256k1.Point.fromBytes(cand);
    } catch {
      offCurve = cand;
    }
  }
  assertLoopkitError(
    () => validateLoopInResponse(response({ htlcServerPubKey: offCurve! }), ctx),
    "server_htlc_key_invalid",
    1,
    "not a point",
  );
  assertLoopkitError(
    () => validateLoopInResponse(response({ htlcServerPubKey: new Uint8Array(0) }), ctx),
    "server_htlc_key_invalid",
    1,
  );
  // The key is checked before the expiry.
  assertLoopkitError(
    () => validateLoopInResponse(response({ htlcServerPubKey: new Uint8Array(3), htlcExpiry: H }), ctx),
    "server_htlc_key_invalid",
    1,
  );
});

Deno.test("htlc_expiry window: 100..1500 blocks above the initiation height (spec §3.7)", () => {
  validateLoopInResponse(response({ htlcExpiry: H + 1_500 }), ctx);
  validateLoopInResponse(response({ htlcExpiry: H + 100 }), ctx);
  assertLoopkitError(
    () => validateLoopInResponse(response({ htlcExpiry: H + 1_501 }), ctx),
    "server_htlc_expiry_too_far",
    1,
    `htlc_expiry ${H + 1_501}`,
    "1501 blocks",
    `${H}`,
  );
  assertLoopkitError(
    () => validateLoopInResponse(response({ htlcExpiry: H + 99 }), ctx),
    "server_htlc_expiry_too_soon",
    1,
    "99 blocks",
  );
  assertLoopkitError(
    () => validateLoopInResponse(response({ htlcExpiry: H - 5 }), ctx),
    "server_htlc_expiry_too_soon",
    1,
  );
  assertLoopkitError(
    () => validateLoopInResponse(response({ htlcExpiry: -1 }), ctx),
    "server_htlc_expiry_invalid",
    1,
  );
});

Deno.test("htlc_expiry + 50 must not pass the earliest deposit expiry (review §1.4)", () => {
  const E = H + 1_200;
  const c = { ...ctx, earliestConfirmedDepositExpiryHeight: E };
  validateLoopInResponse(response({ htlcExpiry: E - 50 }), c);
  assertLoopkitError(
    () => validateLoopInResponse(response({ htlcExpiry: E - 49 }), c),
    "server_htlc_expiry_after_deposit_expiry",
    1,
    `${E - 49}`,
    `${E}`,
  );
  // Nothing confirmed: only the window applies…
  validateLoopInResponse(response({ htlcExpiry: H + 1_500 }), {
    ...ctx,
    earliestConfirmedDepositExpiryHeight: null,
  });
  // …unless the CSV is so short that an unconfirmed deposit confirming next block expires first.
  const csv = 1_000;
  const u = {
    ...ctx,
    earliestConfirmedDepositExpiryHeight: null,
    csvExpiry: csv,
    hasUnconfirmedDeposits: true,
  };
  validateLoopInResponse(response({ htlcExpiry: H + 1 + csv - 50 }), u);
  assertLoopkitError(
    () => validateLoopInResponse(response({ htlcExpiry: H + 1 + csv - 49 }), u),
    "server_htlc_expiry_after_deposit_expiry",
    1,
    "unconfirmed",
  );
});

Deno.test("nonces: every variant present, exactly N per variant, 66 bytes, valid points (review §1.5, scenario 34)", () => {
  assertLoopkitError(
    () => validateLoopInResponse(response({ high: undefined }), ctx),
    "server_htlc_info_missing",
    1,
    "high_fee_htlc_info",
  );
  for (const v of ["standard", "high", "extreme"] as const) {
    const r = response();
    r[v] = { ...r[v]!, nonces: r[v]!.nonces.slice(1) };
    assertLoopkitError(
      () => validateLoopInResponse(r, ctx),
      "server_nonce_count",
      1,
      "1 nonces",
      "exactly 2",
    );
    const more = response();
    more[v] = { ...more[v]!, nonces: [...more[v]!.nonces, nonce(40)] };
    assertLoopkitError(() => validateLoopInResponse(more, ctx), "server_nonce_count", 1, "3 nonces");
    const short = response();
    short[v] = { ...short[v]!, nonces: [nonce(50).slice(1), nonce(51)] };
    assertLoopkitError(() => validateLoopInResponse(short, ctx), "server_nonce_length", 1, "65 bytes", "66");
    const badPoint = response();
    badPoint[v] = {
      ...badPoint[v]!,
      nonces: [nonce(52), Uint8Array.of(...pub(3), 0x05, ...new Uint8Array(32))],
    };
    assertLoopkitError(() => validateLoopInResponse(badPoint, ctx), "server_nonce_invalid", 1, "nonces[1]");
  }
});

Deno.test("fee guards use the §4.3 weight of N inputs and the change output", () => {
  const cap = 1_000_000n * 20n / 100n;
  const maxStd = ((cap + 1n) * 1000n - 1n) / BigInt(W);
  validateLoopInResponse(
    response({ standard: { nonces: [nonce(10), nonce(11)], feeRateSatPerKw: maxStd } }),
    ctx,
  );
  assertLoopkitError(
    () =>
      validateLoopInResponse(
        response({ standard: { nonces: [nonce(10), nonce(11)], feeRateSatPerKw: maxStd + 1n } }),
        ctx,
      ),
    "server_htlc_fee_too_high",
    1,
    "standard",
  );
  // Without change the weight is 172 WU lower, so that rate fits again.
  const W0 = 4 * (8 + 1 + 41 * N + 1 + 43) + 2 + 66 * N;
  const maxStd0 = ((cap + 1n) * 1000n - 1n) / BigInt(W0);
  validateLoopInResponse(
    response({ standard: { nonces: [nonce(10), nonce(11)], feeRateSatPerKw: maxStd0 } }),
    { ...ctx, changeSat: 0n },
  );
});
