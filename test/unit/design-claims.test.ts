/** Claims docs/design.md makes about how the code is built, checked against the code. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

/** The module specifiers a TypeScript source file imports (static and dynamic). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1] ?? m[2]!);
}

test("verify shares no code with the batch run: src/serving/verify.ts imports nothing from src/batch/", () => {
  const imports = importsOf("src/serving/verify.ts");
  assert.ok(imports.length > 0, "the import scan found the imports");
  assert.deepEqual(
    imports.filter((i) => /(^|\/)batch\//.test(i)),
    [],
    "docs/design.md promises that verify's SQL is its own, so a bug in the batch SQL cannot hide itself",
  );
  assert.match(readFileSync("docs/design.md", "utf8"), /verify\.ts`?, sharing nothing with the batch run/);
});
