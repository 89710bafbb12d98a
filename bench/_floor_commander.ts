// Start-up floor of any command that parses with commander: Deno plus commander (and the Node compatibility
// layer its `node:fs` / `node:child_process` imports start). Used by bench/startup.ts.
import "commander";
