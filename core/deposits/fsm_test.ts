import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { LoopkitError } from "../errors.ts";
import { accepts, DEPOSIT_EVENTS, type DepositEvent, isFinal, nextState, TRANSITIONS } from "./fsm.ts";
import { DEPOSIT_STATES, type DepositState, isDepositState } from "./types.ts";

const FSM_MD = new URL("./fsm.md", import.meta.url);

/** The rows of fsm.md's transition table, as `From Event To`. */
async function documentedRows(): Promise<string[]> {
  const md = await Deno.readTextFile(FSM_MD);
  const begin = md.indexOf("<!-- transitions:begin -->");
  const end = md.indexOf("<!-- transitions:end -->");
  assert(begin >= 0 && end > begin, "fsm.md has no transitions:begin/end markers");
  const rows: string[] = [];
  for (const line of md.slice(begin, end).split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 5 || cells[1] === "From" || cells[1].startsWith("-")) continue;
    const [from, event, to] = cells.slice(1, 4);
    assert(isDepositState(from), `fsm.md: unknown state "${from}"`);
    assert(isDepositState(to), `fsm.md: unknown state "${to}"`);
    assert((DEPOSIT_EVENTS as readonly string[]).includes(event), `fsm.md: unknown event "${event}"`);
    rows.push(`${from} ${event} ${to}`);
  }
  return rows;
}

function codeRows(): string[] {
  const rows: string[] = [];
  for (const from of DEPOSIT_STATES) {
    for (const [event, to] of Object.entries(TRANSITIONS[from])) rows.push(`${from} ${event} ${to}`);
  }
  return rows;
}

Deno.test("fsm.md's transition table lists exactly the transitions of fsm.ts", async () => {
  const documented = await documentedRows();
  assertEquals(new Set(documented).size, documented.length, "fsm.md lists a transition twice");
  assertEquals([...documented].sort(), codeRows().sort());
});

Deno.test("fsm.md's diagram only draws transitions the table has", async () => {
  const md = await Deno.readTextFile(FSM_MD);
  const edges = [...md.matchAll(/^\s+(\w+) --> (\w+): (On\w+)/gm)];
  assert(edges.length >= 10, "diagram edges not found");
  for (const [, from, to, event] of edges) {
    assertEquals(TRANSITIONS[from as DepositState]?.[event as DepositEvent], to, `${from} ${event} ${to}`);
  }
});

Deno.test("walking every (state, event) pair: listed pairs lead to their target, all others are rejected", () => {
  let accepted = 0;
  for (const from of DEPOSIT_STATES) {
    for (const event of DEPOSIT_EVENTS) {
      const to = TRANSITIONS[from][event];
      if (to !== undefined) {
        accepted++;
        assertEquals(nextState(from, event), to);
        assert(accepts(from, event));
      } else {
        const err = assertThrows(() => nextState(from, event), LoopkitError);
        assertEquals(err.code, "deposit_event_rejected");
        assert(!accepts(from, event));
      }
    }
  }
  assertEquals(accepted, codeRows().length);
});

Deno.test("the table has Loop's consequences (§4.4) and loopkit's Replaced rules (decision 2)", () => {
  // Final states absorb OnExpiry as a self-loop; five final states are Loop's, SpentElsewhere is loopkit's.
  const finals = DEPOSIT_STATES.filter(isFinal);
  assertEquals(finals.sort(), [
    "ChannelPublished",
    "Expired",
    "HtlcTimeoutSwept",
    "LoopedIn",
    "SpentElsewhere",
    "Withdrawn",
  ]);
  for (const s of finals) assertEquals(nextState(s, "OnExpiry"), s);
  // OnExpiry is rejected while publishing the expiry sweep, while sweeping the HTLC timeout, and for Replaced.
  for (const s of ["PublishExpirySweep", "SweepHtlcTimeout", "Replaced"] as const) {
    assert(!accepts(s, "OnExpiry"));
  }
  // Deposited and LoopingIn start the expiry sweep; Withdrawing and OpeningChannel absorb expiry.
  assertEquals(nextState("Deposited", "OnExpiry"), "PublishExpirySweep");
  assertEquals(nextState("LoopingIn", "OnExpiry"), "PublishExpirySweep");
  assertEquals(nextState("Withdrawing", "OnExpiry"), "Withdrawing");
  assertEquals(nextState("OpeningChannel", "OnExpiry"), "OpeningChannel");
  // The sweep path and recovery after a restart.
  assertEquals(nextState("PublishExpirySweep", "OnExpiryPublished"), "WaitForExpirySweep");
  assertEquals(nextState("WaitForExpirySweep", "OnExpirySwept"), "Expired");
  assertEquals(nextState("WaitForExpirySweep", "OnRecover"), "PublishExpirySweep");
  // Replaced only from Deposited, and only back to Deposited.
  for (const s of DEPOSIT_STATES) assertEquals(accepts(s, "OnReplaced"), s === "Deposited", s);
  assertEquals(Object.keys(TRANSITIONS.Replaced), ["OnRevived"]);
  assertEquals(nextState("Replaced", "OnRevived"), "Deposited");
  // SpentElsewhere only from Deposited and the two expiry-sweep states: never from a loop-in's states.
  for (const s of DEPOSIT_STATES) {
    assertEquals(
      accepts(s, "OnSpentElsewhere"),
      ["Deposited", "PublishExpirySweep", "WaitForExpirySweep"].includes(s),
      s,
    );
  }
  assertEquals(Object.keys(TRANSITIONS.LoopingIn).includes("OnSpentElsewhere"), false);
  assertEquals(Object.keys(TRANSITIONS.SweepHtlcTimeout).includes("OnSpentElsewhere"), false);
  // Final states have no way out except self-loops.
  for (const s of finals) for (const to of Object.values(TRANSITIONS[s])) assertEquals(to, s);
});
