/** The README stays true: its configuration table names every variable the config schema knows. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { configEnvVars } from "../../src/core/config.js";

test("README documents every LAMBDA_* variable, and no unknown one", () => {
  const readme = readFileSync("README.md", "utf8");
  const documented = new Set(readme.match(/LAMBDA_[A-Z_]+/g) ?? []);
  for (const v of configEnvVars()) assert.ok(documented.has(v), `README does not document ${v}`);
  const known = new Set([...configEnvVars(), "LAMBDA_TEST_NATS_URL", "LAMBDA_TEST_LOG"]);
  for (const v of documented) assert.ok(known.has(v), `README documents ${v}, which the config does not know`);
});
