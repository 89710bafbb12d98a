/**
 * Minimal test assertions (jsr:@std/assert is unreachable here), built on `node:assert/strict`.
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

/** Asserts `cond` is truthy. */
export function assert(cond: unknown, msg?: string): asserts cond {
  if (msg === undefined) nodeAssert.ok(cond);
  else nodeAssert.ok(cond, msg);
}

/** Deep strict equality (Uint8Array compared by bytes, bigint by value). */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  if (msg === undefined) nodeAssert.deepStrictEqual(actual, expected);
  else nodeAssert.deepStrictEqual(actual, expected, msg);
}

/** Deep strict inequality. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  if (msg === undefined) nodeAssert.notDeepStrictEqual(actual, expected);
  else nodeAssert.notDeepStrictEqual(actual, expected, msg);
}

/** Asserts `text` contains `part`. */
export function assertStringIncludes(text: string, part: string, msg?: string): void {
  nodeAssert.ok(
    text.includes(part),
    msg ?? `expected ${JSON.stringify(text)} to include ${JSON.stringify(part)}`,
  );
}

// deno-lint-ignore no-explicit-any
type ErrorClass<E extends Error> = new (...args: any[]) => E;

/** Asserts `fn` throws (optionally an instance of `cls` whose message includes `msgIncludes`); returns the error. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  cls?: ErrorClass<E>,
  msgIncludes?: string,
): E {
  try {
    fn();
  } catch (e) {
    checkError(e, cls, msgIncludes);
    return e as E;
  }
  throw new nodeAssert.AssertionError({ message: "Expected function to throw" });
}

/** Async variant of {@linkcode assertThrows}. */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  cls?: ErrorClass<E>,
  msgIncludes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    checkError(e, cls, msgIncludes);
    return e as E;
  }
  throw new nodeAssert.AssertionError({ message: "Expected promise to reject" });
}

function checkError<E extends Error>(e: unknown, cls?: ErrorClass<E>, msgIncludes?: string): void {
  if (cls && !(e instanceof cls)) {
    throw new nodeAssert.AssertionError({
      message: `Expected error to be instance of ${cls.name}, got ${(e as Error)?.name}: ${
        (e as Error)?.message
      }`,
    });
  }
  if (msgIncludes !== undefined && !String((e as Error)?.message).includes(msgIncludes)) {
    throw new nodeAssert.AssertionError({
      message: `Expected error message to include ${JSON.stringify(msgIncludes)}, got ${
        JSON.stringify((e as Error)?.message)
      }`,
    });
  }
}
