/** `lambdactl ingest` output: a refused line shows every bad field, one row each. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { renderIngest } from "../../src/cli/commands/ingest.js";

test("a refused line prints every bad field with its reason", () => {
  const problems = [
    { field: "article_id", reason: "expected string, got number 5" },
    { field: "ts", reason: "is missing" },
  ];
  const text = renderIngest({ accepted: 3, duplicates: 0, refused: 1, refusals: [{ line: 4, eventId: "e-4", field: "article_id", reason: problems[0]!.reason, problems }] });
  const rows = text.split("\n").filter((l) => l.includes("e-4"));
  assert.equal(rows.length, 2, text);
  assert.match(rows[0]!, /4\s+e-4\s+article_id\s+expected string, got number 5/);
  assert.match(rows[1]!, /4\s+e-4\s+ts\s+is missing/);
});
