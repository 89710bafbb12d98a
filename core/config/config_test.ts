import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { LoopkitError } from "../errors.ts";
import { envVarName, resolveConfig } from "./config.ts";
import { parseDbUrl } from "../db/url.ts";

Deno.test("resolveConfig() applies loopd/lncli defaults under the home directory", () => {
  const c = resolveConfig({}, {}, "/home/op");
  assertEquals(c.network, "mainnet");
  assertEquals(c.dataDir, "/home/op/.loop/mainnet");
  assertEquals(c.dbUrl, "file:/home/op/.loop/mainnet/loopkit.db");
  assertEquals(c.rpcServer, "localhost:10009");
  assertEquals(c.tlsCertPath, "/home/op/.lnd/tls.cert");
  assertEquals(c.macaroonPath, "/home/op/.lnd/data/chain/bitcoin/mainnet/admin.macaroon");
  assertEquals(c.json, false);
});

Deno.test("resolveConfig() puts the network in the data dir and macaroon path", () => {
  const c = resolveConfig({ network: "regtest", loopdir: "/srv/loop", lnddir: "/srv/lnd" }, {}, "/h");
  assertEquals(c.dataDir, "/srv/loop/regtest");
  assertEquals(c.macaroonPath, "/srv/lnd/data/chain/bitcoin/regtest/admin.macaroon");
});

Deno.test("resolveConfig() takes LOOPKIT_<FLAG> env vars, and a flag beats its env var", () => {
  const env = { LOOPKIT_NETWORK: "signet", LOOPKIT_RPCSERVER: "10.0.0.1:10019", LOOPKIT_JSON: "true" };
  const c = resolveConfig({ rpcserver: "127.0.0.1:1" }, env, "/h");
  assertEquals(c.network, "signet");
  assertEquals(c.rpcServer, "127.0.0.1:1");
  assertEquals(c.json, true);
});

Deno.test("resolveConfig() rejects an unknown network with exit 2 naming the flag", () => {
  const err = assertThrows(() => resolveConfig({ network: "bitcoin" }, {}, "/h"), LoopkitError);
  assertEquals(err.exitCode, 2);
  assertEquals(err.message.includes("--network"), true);
});

Deno.test("resolveConfig() rejects a malformed --rpcserver", () => {
  const err = assertThrows(() => resolveConfig({ rpcserver: "localhost" }, {}, "/h"), LoopkitError);
  assertEquals(err.exitCode, 2);
});

Deno.test("envVarName() maps dashed flags", () => {
  assertEquals(envVarName("--copy-to"), "LOOPKIT_COPY_TO");
});

Deno.test("resolveConfig(): the default database is the file inside --loopdir even when it holds %, ? or #", () => {
  const c = resolveConfig({ network: "regtest", loopdir: "/x/a%20b?c#d" }, {}, "/home/u");
  assertEquals(c.dbFile, "/x/a%20b?c#d/regtest/loopkit.db");
  assertEquals(parseDbUrl(c.dbUrl).kind === "file" && parseDbUrl(c.dbUrl).url === c.dbUrl, true);
});

Deno.test("resolveConfig(): --db file: with query parameters is exit 2 naming --db; the decoded path is dbFile", () => {
  const e = assertThrows(() => resolveConfig({ db: "file:/x/loopkit.db?mode=ro" }, {}, "/h"), LoopkitError);
  assertEquals(e.exitCode, 2);
  assertEquals(e.message.includes("--db"), true);
  assertEquals(resolveConfig({ db: "file:///x/my%20db.db" }, {}, "/h").dbFile, "/x/my db.db");
  assertEquals(resolveConfig({ db: "libsql://db.example" }, {}, "/h").dbFile, null);
});
