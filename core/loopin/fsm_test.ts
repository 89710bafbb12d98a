import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { LoopkitError } from "../errors.ts";
import {
  acceptsLoopInEvent,
  isFinalLoopInState,
  isWatchedLoopIn,
  LOOP_IN_TRANSITIONS,
  LOOP_TRANSITIONS,
  LOOPKIT_ADDED_TRANSITIONS,
  nextLoopInState,
  recoveryEvent,
} from "./fsm.ts";
import {
  FINAL_LOOP_IN_STATES,
  isLoopInEvent,
  isLoopInState,
  LOOP_IN_EVENTS,
  LOOP_IN_STATE_RPC,
  LOOP_IN_STATES,
  type LoopInEvent,
  type LoopInFsmState,
  type LoopInState,
  PENDING_LOOP_IN_STATES,
} from "./types.ts";

const FSM_MD = new URL("./fsm.md", import.meta.url);
const ALL_FROM: LoopInFsmState[] = ["", ...LOOP_IN_STATES];

interface DocRow {
  key: string;
  origin: string;
}

/** The rows of fsm.md's transition table, as `From Event To` plus the Origin column. */
async function documentedRows(): Promise<DocRow[]> {
  const md = await Deno.readTextFile(FSM_MD);
  const begin = md.indexOf("<!-- transitions:begin -->");
  const end = md.indexOf("<!-- transitions:end -->");
  assert(begin >= 0 && end > begin, "fsm.md has no transitions:begin/end markers");
  const rows: DocRow[] = [];
  for (const line of md.slice(begin, end).split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 6 || cells[1] === "From" || cells[1].startsWith("-")) continue;
    const [fromCell, event, to, origin] = cells.slice(1, 5);
    const from = fromCell === '""' ? "" : fromCell;
    assert(from === "" || isLoopInState(from), `fsm.md: unknown state "${fromCell}"`);
    assert(isLoopInState(to), `fsm.md: unknown state "${to}"`);
    assert(isLoopInEvent(event), `fsm.md: unknown event "${event}"`);
    assert(
      origin === "Loop" || origin === "loopkit",
      `fsm.md: origin "${origin}" is neither Loop nor loopkit`,
    );
    rows.push({ key: `${from} ${event} ${to}`, origin });
  }
  return rows;
}

function rowsOf(
  table: Readonly<Partial<Record<LoopInFsmState, Readonly<Partial<Record<LoopInEvent, LoopInState>>>>>>,
): string[] {
  const rows: string[] = [];
  for (const from of ALL_FROM) {
    for (const [event, to] of Object.entries(table[from] ?? {})) rows.push(`${from} ${event} ${to}`);
  }
  return rows;
}

/** spec/static-loop-in.md §2.2, written out again as the spec prints it (From | Event | To). */
const SPEC_TABLE = `
"" OnInitHtlc InitHtlcTx
InitHtlcTx OnHtlcInitiated SignHtlcTx
InitHtlcTx OnRecover UnlockDeposits
InitHtlcTx OnError UnlockDeposits
SignHtlcTx OnHtlcTxSigned MonitorInvoiceAndHtlcTx
SignHtlcTx OnRecover UnlockDeposits
SignHtlcTx OnError UnlockDeposits
MonitorInvoiceAndHtlcTx OnPaymentReceived PaymentReceived
MonitorInvoiceAndHtlcTx OnSweepHtlcTimeout SweepHtlcTimeout
MonitorInvoiceAndHtlcTx OnSwapTimedOut Failed
MonitorInvoiceAndHtlcTx OnRecover MonitorInvoiceAndHtlcTx
MonitorInvoiceAndHtlcTx OnError UnlockDeposits
SweepHtlcTimeout OnHtlcTimeoutSweepPublished MonitorHtlcTimeoutSweep
SweepHtlcTimeout OnRecover SweepHtlcTimeout
SweepHtlcTimeout OnError Failed
MonitorHtlcTimeoutSweep OnHtlcTimeoutSwept HtlcTimeoutSwept
MonitorHtlcTimeoutSweep OnRecover MonitorHtlcTimeoutSweep
MonitorHtlcTimeoutSweep OnError Failed
PaymentReceived OnSucceeded Succeeded
PaymentReceived OnRecover Succeeded
PaymentReceived OnError SucceededTransitioningFailed
UnlockDeposits OnRecover UnlockDeposits
UnlockDeposits OnError Failed
`.trim().split("\n").map((l) => l.replace(/^"" /, " "));

Deno.test("fsm.md's transition table lists exactly the transitions of fsm.ts, with the right origin", async () => {
  const documented = await documentedRows();
  const keys = documented.map((r) => r.key);
  assertEquals(new Set(keys).size, keys.length, "fsm.md lists a transition twice");
  assertEquals([...keys].sort(), rowsOf(LOOP_IN_TRANSITIONS).sort());
  const loopkit = new Set(rowsOf(LOOPKIT_ADDED_TRANSITIONS));
  for (const r of documented) {
    assertEquals(r.origin, loopkit.has(r.key) ? "loopkit" : "Loop", r.key);
  }
});

Deno.test("fsm.md's diagram only draws transitions the table has", async () => {
  const md = await Deno.readTextFile(FSM_MD);
  const edges = [...md.matchAll(/^\s+(\w+) --> (\w+): (On\w+)/gm)];
  assert(edges.length >= 15, "diagram edges not found");
  for (const [, from, to, event] of edges) {
    assertEquals(
      LOOP_IN_TRANSITIONS[from as LoopInState]?.[event as LoopInEvent],
      to,
      `${from} ${event} ${to}`,
    );
  }
});

Deno.test("Loop's rows are spec §2.2 exactly; loopkit only adds rows, never changes one", () => {
  assertEquals(rowsOf(LOOP_TRANSITIONS).sort(), [...SPEC_TABLE].sort());
  for (const from of ALL_FROM) {
    for (const [event, to] of Object.entries(LOOP_TRANSITIONS[from])) {
      assertEquals(LOOP_IN_TRANSITIONS[from][event as LoopInEvent], to, `${from} ${event}`);
    }
    for (const event of Object.keys(LOOPKIT_ADDED_TRANSITIONS[from] ?? {})) {
      assertEquals(
        LOOP_TRANSITIONS[from][event as LoopInEvent],
        undefined,
        `${from} ${event} overrides Loop`,
      );
    }
  }
  assertEquals(
    rowsOf(LOOP_IN_TRANSITIONS).length,
    SPEC_TABLE.length + rowsOf(LOOPKIT_ADDED_TRANSITIONS).length,
  );
});

Deno.test("walking every (state, event) pair: listed pairs lead to their target, all others are rejected", () => {
  let accepted = 0;
  for (const from of ALL_FROM) {
    for (const event of LOOP_IN_EVENTS) {
      const to = LOOP_IN_TRANSITIONS[from][event];
      if (to !== undefined) {
        accepted++;
        assertEquals(nextLoopInState(from, event), to);
        assert(acceptsLoopInEvent(from, event));
      } else {
        const err = assertThrows(() => nextLoopInState(from, event), LoopkitError);
        assertEquals(err.code, "loopin_event_rejected");
        assertEquals(err.exitCode, 1);
        assert(err.message.includes(event), err.message);
        assert(!acceptsLoopInEvent(from, event));
      }
    }
  }
  assertEquals(accepted, rowsOf(LOOP_IN_TRANSITIONS).length);
});

Deno.test("the armed watch: a late HTLC variant is swept from Failed and UnlockDeposits (review §1.1–1.3)", () => {
  assertEquals(nextLoopInState("Failed", "OnSweepHtlcTimeout"), "SweepHtlcTimeout");
  assertEquals(nextLoopInState("UnlockDeposits", "OnSweepHtlcTimeout"), "SweepHtlcTimeout");
  assertEquals(nextLoopInState("MonitorInvoiceAndHtlcTx", "OnSweepHtlcTimeout"), "SweepHtlcTimeout");
  // Failed leaves only towards the sweep; settlement wins over an unfinished unlock.
  assertEquals(Object.values(LOOP_IN_TRANSITIONS.Failed), ["SweepHtlcTimeout"]);
  assertEquals(nextLoopInState("UnlockDeposits", "OnPaymentReceived"), "PaymentReceived");
  // Succeeded and the swept state are dead ends.
  for (const s of ["Succeeded", "HtlcTimeoutSwept", "SucceededTransitioningFailed"] as const) {
    assertEquals(Object.keys(LOOP_IN_TRANSITIONS[s]).length, 0, s);
  }
  // A sweep that does not confirm can be rebuilt.
  assertEquals(nextLoopInState("MonitorHtlcTimeoutSweep", "OnSweepHtlcTimeout"), "SweepHtlcTimeout");
});

Deno.test("states: final and pending partition the list; every state has its RPC enum (spec §1.5, §2.1)", () => {
  assertEquals([...FINAL_LOOP_IN_STATES].sort(), [
    "Failed",
    "HtlcTimeoutSwept",
    "Succeeded",
    "SucceededTransitioningFailed",
  ]);
  for (const s of LOOP_IN_STATES) {
    assert(FINAL_LOOP_IN_STATES.has(s) !== PENDING_LOOP_IN_STATES.has(s), s);
    assertEquals(isFinalLoopInState(s), FINAL_LOOP_IN_STATES.has(s));
  }
  assertEquals(PENDING_LOOP_IN_STATES.size + FINAL_LOOP_IN_STATES.size, 11);
  const values = LOOP_IN_STATES.map((s) => LOOP_IN_STATE_RPC[s].value).sort((a, b) => a - b);
  assertEquals(values, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assertEquals(LOOP_IN_STATE_RPC.UnlockDeposits, { name: "UNLOCK_DEPOSITS", value: 10 });
  assertEquals(LOOP_IN_STATE_RPC.Failed, { name: "FAILED_STATIC_ADDRESS_SWAP", value: 11 });
});

Deno.test("recoveryEvent: an armed SignHtlcTx resumes monitoring, an unarmed one unlocks (spec §2.5, §2.6)", () => {
  assertEquals(recoveryEvent("SignHtlcTx", true), "OnHtlcTxSigned");
  assertEquals(nextLoopInState("SignHtlcTx", recoveryEvent("SignHtlcTx", true)), "MonitorInvoiceAndHtlcTx");
  assertEquals(nextLoopInState("SignHtlcTx", recoveryEvent("SignHtlcTx", false)), "UnlockDeposits");
  assertEquals(nextLoopInState("InitHtlcTx", recoveryEvent("InitHtlcTx", false)), "UnlockDeposits");
  for (const s of PENDING_LOOP_IN_STATES) {
    for (const armed of [false, true]) {
      // Every pending state accepts its recovery event.
      assert(acceptsLoopInEvent(s, recoveryEvent(s, armed)), `${s} armed=${armed}`);
    }
  }
  for (const s of FINAL_LOOP_IN_STATES) {
    assertEquals(assertThrows(() => recoveryEvent(s, true), LoopkitError).code, "loopin_event_rejected");
  }
});

Deno.test("isWatchedLoopIn: armed swaps stay watched until a chain fact ends it (review §1.1)", () => {
  for (const s of LOOP_IN_STATES) {
    assertEquals(isWatchedLoopIn(s, false, false), false, `${s} unarmed`);
    assertEquals(isWatchedLoopIn(s, true, true), false, `${s} spent elsewhere`);
  }
  for (
    const s of [
      "MonitorInvoiceAndHtlcTx",
      "UnlockDeposits",
      "Failed",
      "SweepHtlcTimeout",
      "MonitorHtlcTimeoutSweep",
    ] as const
  ) {
    assert(isWatchedLoopIn(s, true, false), s);
  }
  for (
    const s of ["Succeeded", "HtlcTimeoutSwept", "SucceededTransitioningFailed", "PaymentReceived"] as const
  ) {
    assert(!isWatchedLoopIn(s, true, false), s);
  }
});
