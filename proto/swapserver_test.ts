/**
 * Tests for proto/swapserver.proto: service and method names, gRPC paths, field numbers and types,
 * and a few messages encoded byte by byte from the protobuf wire rules.
 *
 * The expected names and numbers are the facts listed in spec/static-address-and-deposits.md §3.3
 * and spec/static-loop-in.md §1.3–§1.4, transcribed literally.
 */
import { Buffer } from "node:buffer";
import type { MessageTypeDefinition, MethodDefinition, PackageDefinition } from "@grpc/proto-loader";
import { hex } from "@scure/base";
import nodeAssert from "node:assert/strict";
import { loadSwapServerProto, SWAP_SERVER_LOADER_OPTIONS } from "./mod.ts";

// Local helpers on node:assert (tests/assert.ts does not type-check once @types/node is in the
// graph, which @grpc/proto-loader brings in).
function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  nodeAssert.ok(cond, msg);
}

function assertEquals<T>(actual: T, expected: T, msg = "values differ"): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

function typeName(t: unknown): string {
  return (t as { type: { name: string } }).type.name;
}

/** Loaded with field names as written in the .proto, so they compare with the spec's names. */
const snake = loadSwapServerProto({ ...SWAP_SERVER_LOADER_OPTIONS, keepCase: true });
/** Loaded the way loopkit's RPC code loads it. */
const camel = loadSwapServerProto();

// deno-lint-ignore no-explicit-any
type AnyMethod = MethodDefinition<any, any>;

function service(def: PackageDefinition, name: string): Record<string, AnyMethod> {
  const s = def[`looprpc.${name}`];
  assert(s !== undefined && !("format" in s), `service looprpc.${name} is defined`);
  return s as unknown as Record<string, AnyMethod>;
}

interface FieldDescriptor {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}

interface MessageDescriptor {
  field: FieldDescriptor[];
  nestedType: { name: string; field: FieldDescriptor[]; options?: { mapEntry?: boolean } }[];
}

function message(name: string): MessageDescriptor {
  const m = snake[`looprpc.${name}`] as MessageTypeDefinition<unknown, unknown> | undefined;
  assert(
    m !== undefined && m.format === "Protocol Buffer 3 DescriptorProto",
    `message looprpc.${name} is defined`,
  );
  return m.type as never;
}

/**
 * `name number type` per field, in field-number order; repeated fields prefixed with "repeated ",
 * map fields rendered as `map<key,value>`.
 */
function fieldTable(name: string): string[] {
  const m = message(name);
  const typeOf = (f: FieldDescriptor) =>
    f.type === "TYPE_MESSAGE" || f.type === "TYPE_ENUM" ? f.typeName : f.type.slice(5).toLowerCase();
  return m.field
    .slice()
    .sort((a, b) => a.number - b.number)
    .map((f) => {
      const entry = m.nestedType.find((t) => t.name === f.typeName && t.options?.mapEntry === true);
      if (entry !== undefined && f.label === "LABEL_REPEATED") {
        const [k, v] = [...entry.field].sort((a, b) => a.number - b.number);
        assertEquals([k.number, v.number], [1, 2], `map entry of ${f.name}`);
        return `map<${typeOf(k)},${typeOf(v)}> ${f.name} ${f.number}`;
      }
      return `${f.label === "LABEL_REPEATED" ? "repeated " : ""}${f.name} ${f.number} ${typeOf(f)}`;
    });
}

function enumValues(def: PackageDefinition, name: string): string[] {
  const e = def[`looprpc.${name}`] as { type: { value: { name: string; number: number }[] } };
  return e.type.value.map((v) => `${v.name}=${v.number}`);
}

// ---------------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------------

Deno.test("StaticAddressServer has the four static-address methods with Loop's gRPC paths", () => {
  const s = service(snake, "StaticAddressServer");
  assertEquals(Object.keys(s).sort(), [
    "PushStaticAddressHtlcSigs",
    "PushStaticAddressSweeplessSigs",
    "ServerNewAddress",
    "ServerStaticAddressLoopIn",
  ]);
  for (const [method, m] of Object.entries(s)) {
    assertEquals(m.path, `/looprpc.StaticAddressServer/${method}`);
    assertEquals([m.requestStream, m.responseStream], [false, false], method);
  }
  assertEquals(typeName(s.ServerNewAddress.requestType), "ServerNewAddressRequest");
  assertEquals(typeName(s.ServerNewAddress.responseType), "ServerNewAddressResponse");
  assertEquals(typeName(s.ServerStaticAddressLoopIn.requestType), "ServerStaticAddressLoopInRequest");
  assertEquals(typeName(s.PushStaticAddressHtlcSigs.responseType), "PushStaticAddressHtlcSigsResponse");
  assertEquals(
    typeName(s.PushStaticAddressSweeplessSigs.requestType),
    "PushStaticAddressSweeplessSigsRequest",
  );
});

Deno.test("SwapServer has terms, quote, probe, FetchL402 and the server-streaming notifications", () => {
  const s = service(snake, "SwapServer");
  assertEquals(Object.keys(s).sort(), [
    "FetchL402",
    "LoopInQuote",
    "LoopInTerms",
    "LoopOutTerms",
    "Probe",
    "SubscribeNotifications",
  ]);
  for (const [method, m] of Object.entries(s)) {
    assertEquals(m.path, `/looprpc.SwapServer/${method}`);
    assertEquals(m.requestStream, false, method);
    assertEquals(m.responseStream, method === "SubscribeNotifications", method);
  }
  assertEquals(typeName(s.LoopInQuote.responseType), "ServerLoopInQuoteResponse");
  assertEquals(typeName(s.LoopInTerms.responseType), "ServerLoopInTerms");
});

// ---------------------------------------------------------------------------------------------
// Enums
// ---------------------------------------------------------------------------------------------

Deno.test("enums have the spec's values", () => {
  assertEquals(enumValues(snake, "StaticAddressProtocolVersion"), ["V0=0"]);
  assertEquals(enumValues(snake, "ProtocolVersion"), [
    "LEGACY=0",
    "MULTI_LOOP_OUT=1",
    "NATIVE_SEGWIT_LOOP_IN=2",
    "PREIMAGE_PUSH_LOOP_OUT=3",
    "USER_EXPIRY_LOOP_OUT=4",
    "HTLC_V2=5",
    "MULTI_LOOP_IN=6",
    "LOOP_OUT_CANCEL=7",
    "PROBE=8",
    "ROUTING_PLUGIN=9",
    "HTLC_V3=10",
    "MUSIG2=11",
  ]);
  const listener = message("SubscribeNotificationsRequest") as unknown as {
    enumType: { name: string; value: { name: string; number: number }[] }[];
  };
  assertEquals(listener.enumType.map((e) => e.name), ["ListenerVersion"]);
  assertEquals(listener.enumType[0].value.map((v) => `${v.name}=${v.number}`), ["LEGACY=0", "V1=1"]);
});

// ---------------------------------------------------------------------------------------------
// Field numbers (spec tables, literally)
// ---------------------------------------------------------------------------------------------

const expectedFields: Record<string, string[]> = {
  // static-address-and-deposits.md §3.3
  ServerNewAddressRequest: ["protocol_version 1 StaticAddressProtocolVersion", "client_key 2 bytes"],
  ServerNewAddressResponse: ["params 1 ServerAddressParameters"],
  ServerAddressParameters: ["server_key 1 bytes", "expiry 2 uint32"],
  // static-loop-in.md §1.4
  HopHint: [
    "node_id 1 string",
    "chan_id 2 uint64",
    "fee_base_msat 3 uint32",
    "fee_proportional_millionths 4 uint32",
    "cltv_expiry_delta 5 uint32",
  ],
  RouteHint: ["repeated hop_hints 1 HopHint"],
  // Loop swapserverrpc/server.proto (answered by the local test server for loopd's `loop terms`)
  ServerLoopOutTermsRequest: ["protocol_version 1 ProtocolVersion", "user_agent 2 string"],
  ServerLoopOutTerms: [
    "min_swap_amount 1 uint64",
    "max_swap_amount 2 uint64",
    "min_cltv_delta 3 int32",
    "max_cltv_delta 4 int32",
  ],
  ServerLoopInTermsRequest: ["protocol_version 1 ProtocolVersion", "user_agent 2 string"],
  ServerLoopInTerms: ["min_swap_amount 1 uint64", "max_swap_amount 2 uint64"],
  ServerProbeRequest: [
    "protocol_version 1 ProtocolVersion",
    "amt 2 uint64",
    "target 3 bytes",
    "last_hop 4 bytes",
    "repeated route_hints 5 RouteHint",
  ],
  ServerProbeResponse: [],
  ServerLoopInQuoteRequest: [
    "amt 1 uint64",
    "protocol_version 2 ProtocolVersion",
    "pubkey 3 bytes",
    "last_hop 4 bytes",
    "repeated route_hints 5 RouteHint",
    "user_agent 6 string",
    "num_static_address_deposits 7 uint32",
    "fast 8 bool",
  ],
  ServerLoopInQuoteResponse: [
    "swap_fee 1 int64",
    "swap_fee_rate 2 int64",
    "min_swap_amount 4 uint64",
    "max_swap_amount 5 uint64",
    "cltv_delta 6 int32",
  ],
  ServerStaticAddressLoopInRequest: [
    "htlc_client_pub_key 1 bytes",
    "swap_hash 2 bytes",
    "repeated deposit_outpoints 3 string",
    "swap_invoice 4 string",
    "last_hop 5 bytes",
    "protocol_version 6 StaticAddressProtocolVersion",
    "user_agent 7 string",
    "payment_timeout_seconds 8 uint32",
    "amount 9 uint64",
    "fast 10 bool",
  ],
  ServerStaticAddressLoopInResponse: [
    "htlc_server_pub_key 1 bytes",
    "htlc_expiry 2 int32",
    "standard_htlc_info 3 ServerHtlcSigningInfo",
    "high_fee_htlc_info 4 ServerHtlcSigningInfo",
    "extreme_fee_htlc_info 5 ServerHtlcSigningInfo",
  ],
  ServerHtlcSigningInfo: ["repeated nonces 1 bytes", "fee_rate 2 uint64"],
  PushStaticAddressHtlcSigsRequest: [
    "swap_hash 1 bytes",
    "standard_htlc_info 2 ClientHtlcSigningInfo",
    "high_fee_htlc_info 3 ClientHtlcSigningInfo",
    "extreme_fee_htlc_info 4 ClientHtlcSigningInfo",
  ],
  ClientHtlcSigningInfo: ["repeated nonces 1 bytes", "repeated sigs 2 bytes"],
  PushStaticAddressHtlcSigsResponse: [],
  PushStaticAddressSweeplessSigsRequest: [
    "swap_hash 1 bytes",
    "txid 2 bytes",
    "map<string,ClientSweeplessSigningInfo> signing_info 3",
    "error_message 4 string",
  ],
  ClientSweeplessSigningInfo: ["nonce 1 bytes", "sig 2 bytes"],
  PushStaticAddressSweeplessSigsResponse: [],
  SubscribeNotificationsRequest: ["version 1 ListenerVersion"],
  SubscribeNotificationsResponse: [
    "reservation_notification 1 ServerReservationNotification",
    "static_loop_in_sweep 2 ServerStaticLoopInSweepNotification",
    "unfinished_swap 3 ServerUnfinishedSwapNotification",
    "static_loop_in_risk_accepted 4 ServerStaticLoopInRiskAcceptedNotification",
    "static_loop_in_risk_rejected 5 ServerStaticLoopInRiskRejectedNotification",
    "htlc_confirmed 6 ServerHtlcConfirmedNotification",
  ],
  ServerStaticLoopInSweepNotification: [
    "sweep_tx_psbt 1 bytes",
    "swap_hash 2 bytes",
    "map<string,bytes> deposit_to_nonces 3",
    "repeated prevout_info 4 PrevoutInfo",
  ],
  PrevoutInfo: ["value 1 uint64", "pk_script 2 bytes", "txid_bytes 3 bytes", "output_index 4 uint32"],
  ServerStaticLoopInRiskAcceptedNotification: ["swap_hash 1 bytes"],
  ServerStaticLoopInRiskRejectedNotification: ["swap_hash 1 bytes"],
  FetchL402Request: [],
  FetchL402Response: [],
  // The other three notification payloads: the spec names only the oneof members; these tables
  // are from Loop's swapserverrpc/server.proto at the reference revision 5ddf3b88.
  ServerReservationNotification: [
    "reservation_id 1 bytes",
    "value 2 uint64",
    "server_key 3 bytes",
    "expiry 4 uint32",
    "protocol_version 5 ReservationProtocolVersion",
  ],
  ServerUnfinishedSwapNotification: ["swap_hash 1 bytes", "is_loop_in 2 bool"],
  ServerHtlcConfirmedNotification: [
    "swap_hash 1 bytes",
    "htlc_outpoint 2 string",
    "htlc_address 3 string",
    "sat_per_vbyte 4 uint32",
  ],
};

Deno.test("every message in the proto has a field table in this test", () => {
  const messages = Object.entries(snake)
    .filter(([, d]) => "format" in d && d.format === "Protocol Buffer 3 DescriptorProto")
    .map(([name]) => name.replace(/^looprpc\./, ""))
    .sort();
  assertEquals(messages, Object.keys(expectedFields).sort());
});

for (const [name, fields] of Object.entries(expectedFields)) {
  Deno.test(`${name} has exactly the spec's fields and numbers`, () => {
    assertEquals(fieldTable(name), fields);
  });
}

Deno.test("the notification fields form one oneof named notification", () => {
  const m = message("SubscribeNotificationsResponse") as unknown as {
    oneofDecl: { name: string }[];
    field: { oneofIndex: number }[];
  };
  assertEquals(m.oneofDecl.map((o) => o.name), ["notification"]);
  assert(m.field.every((f) => f.oneofIndex === 0));
});

// ---------------------------------------------------------------------------------------------
// Wire bytes, built by hand from the protobuf encoding rules (tag = number << 3 | wire type)
// ---------------------------------------------------------------------------------------------

const KEY_A = hex.decode("02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5");
const KEY_B = hex.decode("02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9");

function bytesField(number: number, value: Uint8Array): Uint8Array {
  assert(value.length < 128, "single-byte length only");
  return Uint8Array.of((number << 3) | 2, value.length, ...value);
}

Deno.test("ServerNewAddressRequest encodes protocol_version as field 1 and client_key as field 2", () => {
  const m = service(camel, "StaticAddressServer").ServerNewAddress;
  // protobufjs writes an explicitly set proto3 default (field 1 varint 0: 08 00); Go accepts both.
  const explicit = m.requestSerialize({ protocolVersion: 0, clientKey: Buffer.from(KEY_A) });
  assertEquals(hex.encode(explicit), "0800" + hex.encode(bytesField(2, KEY_A)));
  const implicit = m.requestSerialize({ clientKey: Buffer.from(KEY_A) });
  assertEquals(hex.encode(implicit), hex.encode(bytesField(2, KEY_A)));
  for (const wire of [explicit, implicit]) {
    const decoded = m.requestDeserialize(wire);
    assertEquals(decoded.protocolVersion, 0);
    assertEquals(hex.encode(decoded.clientKey), hex.encode(KEY_A));
  }
});

Deno.test("ServerNewAddressResponse decodes params.server_key (1) and params.expiry (2)", () => {
  // expiry 14400 = 0x3840 -> varint c0 70; field 2 varint tag = 0x10.
  const params = Uint8Array.of(...bytesField(1, KEY_B), 0x10, 0xc0, 0x70);
  const wire = bytesField(1, params);
  const m = service(camel, "StaticAddressServer").ServerNewAddress;
  const decoded = m.responseDeserialize(Buffer.from(wire));
  assertEquals(decoded.params.expiry, 14400);
  assertEquals(hex.encode(decoded.params.serverKey), hex.encode(KEY_B));
  assertEquals(hex.encode(m.responseSerialize(decoded)), hex.encode(wire));
});

Deno.test("a risk-accepted notification decodes as oneof member 4", () => {
  const swapHash = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
  const wire = bytesField(4, bytesField(1, swapHash));
  const m = service(camel, "SwapServer").SubscribeNotifications;
  const decoded = m.responseDeserialize(Buffer.from(wire));
  assertEquals(decoded.notification, "staticLoopInRiskAccepted");
  assertEquals(hex.encode(decoded.staticLoopInRiskAccepted.swapHash), hex.encode(swapHash));
});

Deno.test("a risk-rejected notification decodes as oneof member 5", () => {
  const swapHash = new Uint8Array(32).fill(0xab);
  const wire = bytesField(5, bytesField(1, swapHash));
  const decoded = service(camel, "SwapServer").SubscribeNotifications.responseDeserialize(Buffer.from(wire));
  assertEquals(decoded.notification, "staticLoopInRiskRejected");
});

Deno.test("the sweepless signing_info map encodes as entries of (1: outpoint, 2: message)", () => {
  const outpoint = "aa".repeat(32) + ":1";
  const nonce = new Uint8Array(66).fill(7);
  const sig = new Uint8Array(32).fill(9);
  const value = Uint8Array.of(...bytesField(1, nonce), ...bytesField(2, sig));
  const entry = Uint8Array.of(...bytesField(1, new TextEncoder().encode(outpoint)), ...bytesField(2, value));
  // The entry is (2 + 66) + (2 + 102) = 172 bytes: its length is the 2-byte varint ac 01.
  assertEquals(entry.length, 172);
  const want = Uint8Array.of(0x1a, 0xac, 0x01, ...entry);
  const m = service(camel, "StaticAddressServer").PushStaticAddressSweeplessSigs;
  const wire = m.requestSerialize({
    signingInfo: { [outpoint]: { nonce: Buffer.from(nonce), sig: Buffer.from(sig) } },
  });
  assertEquals(hex.encode(wire), hex.encode(want));
});

Deno.test("uint64 amounts decode as exact decimal strings with loopkit's loader options", () => {
  // min_swap_amount = 2^60 + 1 as a varint (not representable as a JS number).
  let v = (1n << 60n) + 1n;
  const varint: number[] = [];
  while (v >= 0x80n) {
    varint.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  varint.push(Number(v));
  const wire = Uint8Array.of(0x08, ...varint);
  const decoded = service(camel, "SwapServer").LoopInTerms.responseDeserialize(Buffer.from(wire));
  assertEquals(decoded.minSwapAmount, ((1n << 60n) + 1n).toString());
  assertEquals(decoded.maxSwapAmount, "0");
});
