import { validateLabel } from "./label.ts";
import { LABEL_MAX_BYTES, RESERVED_LABEL_PREFIX } from "./types.ts";
import { assertLoopkitError } from "./_testing.ts";

Deno.test("validateLabel accepts up to 500 bytes of UTF-8 and refuses more (spec §3.4 step 3)", () => {
  validateLabel("");
  validateLabel("a".repeat(500));
  assertLoopkitError(
    () => validateLabel("a".repeat(501)),
    "loopin_label_too_long",
    2,
    "invalid label: label exceeds maximum length",
    "501 bytes",
  );
  // Bytes, not characters: 167 × "€" (3 bytes each) = 501 bytes.
  const euro = "€".repeat(167);
  if (new TextEncoder().encode(euro).length !== 501) throw new Error("fixture");
  assertLoopkitError(() => validateLabel(euro), "loopin_label_too_long", 2);
  validateLabel("€".repeat(166));
  if (LABEL_MAX_BYTES !== 500) throw new Error("LABEL_MAX_BYTES");
});

Deno.test("validateLabel refuses the reserved prefix unless loopkit generated the label (scenario 33, 68)", () => {
  assertLoopkitError(
    () => validateLabel("[reserved] autoloop"),
    "loopin_label_reserved",
    2,
    "invalid label: label contains reserved prefix",
  );
  assertLoopkitError(() => validateLabel(RESERVED_LABEL_PREFIX), "loopin_label_reserved", 2);
  validateLabel("[reserved] autoloop", { allowReserved: true });
  validateLabel("x[reserved]");
  validateLabel("[Reserved]");
  // Too long wins over reserved.
  assertLoopkitError(() => validateLabel("[reserved]" + "a".repeat(500)), "loopin_label_too_long", 2);
});
