// Start-up floor of `deno run` in this project (deno.json, lockfile, node_modules check). Used by bench/startup.ts.
