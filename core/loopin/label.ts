/**
 * Swap label rules (spec/static-loop-in.md §3.4 step 3; Loop's `labels.Validate`).
 *
 * @module
 */
import { LABEL_MAX_BYTES, RESERVED_LABEL_PREFIX } from "./types.ts";
import { inputError } from "./_util.ts";

/** Options of {@linkcode validateLabel}. */
export interface LabelOptions {
  /**
   * Accept the reserved prefix: only for labels loopkit itself generates (scenario 33: internal
   * initiation accepts reserved labels, the user-facing boundary does not). Default false.
   */
  allowReserved?: boolean;
}

/**
 * Validates a swap label: at most 500 bytes of UTF-8, and not starting with `[reserved]`.
 *
 * @param label the `--label` value ("" is fine)
 * @throws {LoopkitError} exit 2: `loopin_label_too_long` (`invalid label: label exceeds maximum length …`),
 *   `loopin_label_reserved` (`invalid label: label contains reserved prefix …`)
 */
export function validateLabel(label: string, options: LabelOptions = {}): void {
  if (typeof label !== "string") {
    throw inputError("loopin_label_invalid", "invalid label: --label must be text");
  }
  const bytes = new TextEncoder().encode(label).length;
  if (bytes > LABEL_MAX_BYTES) {
    throw inputError(
      "loopin_label_too_long",
      `invalid label: label exceeds maximum length: ${bytes} bytes, at most ${LABEL_MAX_BYTES}`,
    );
  }
  if (!options.allowReserved && label.startsWith(RESERVED_LABEL_PREFIX)) {
    throw inputError(
      "loopin_label_reserved",
      `invalid label: label contains reserved prefix ${JSON.stringify(RESERVED_LABEL_PREFIX)}`,
    );
  }
}
