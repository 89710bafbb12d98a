/**
 * Progress lines for long runs (a first sync of many deposits), on stderr only, and only for a person: when
 * stderr is a terminal that reports more than 0 columns (a terminal reporting 0 columns makes redraw loops
 * misbehave: /work/shared/notes/stack.md), never with `--json`, never into a pipe or a file. Everything else gets
 * a no-op, so data on stdout and diagnostics on stderr stay exactly as without progress.
 *
 * @module
 */

/** Receives progress: `done` of `total` units of `what`. */
export interface Progress {
  update(done: number, total: number, what: string): void;
  /** Clears the line (call once at the end). */
  end(): void;
}

/** A no-op {@linkcode Progress}. */
export const NO_PROGRESS: Progress = { update() {}, end() {} };

/** The terminal a progress line goes to (default: the process's stderr). */
export interface ProgressTerminal {
  isTerminal(): boolean;
  /** Columns of the terminal; 0 or undefined when unknown. */
  columns(): number | undefined;
  write(text: string): void;
}

const stderrTerminal: ProgressTerminal = {
  isTerminal: () => Deno.stderr.isTerminal(),
  columns: () => {
    try {
      return Deno.consoleSize().columns;
    } catch {
      return undefined;
    }
  },
  write: (text) => {
    Deno.stderr.writeSync(new TextEncoder().encode(text));
  },
};

/**
 * A progress line on `term` (stderr), or {@linkcode NO_PROGRESS} when `json` is set, `term` is not a terminal,
 * or it reports no columns. The line is redrawn in place (`\r`), cut to the terminal's width, and at most every
 * `minIntervalMs` (default 100 ms) except for the last update.
 */
export function progressFor(
  opts: { json: boolean; term?: ProgressTerminal; minIntervalMs?: number; now?: () => number },
): Progress {
  const term = opts.term ?? stderrTerminal;
  if (opts.json || !term.isTerminal()) return NO_PROGRESS;
  const cols = term.columns() ?? 0;
  if (!(cols > 0)) return NO_PROGRESS;
  const now = opts.now ?? (() => Date.now());
  const every = opts.minIntervalMs ?? 100;
  let last = -Infinity;
  let shown = false;
  return {
    update(done, total, what) {
      const t = now();
      if (done < total && t - last < every) return;
      last = t;
      const pct = total > 0 ? Math.floor((done * 100) / total) : 100;
      const line = `${what}: ${done}/${total} (${pct}%)`.slice(0, cols - 1);
      term.write(`\r${line}\x1b[K`);
      shown = true;
    },
    end() {
      if (shown) term.write("\r\x1b[K");
      shown = false;
    },
  };
}
