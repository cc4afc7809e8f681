/**
 * The lambdactl entry as a shell sees it, with no cluster: `--version`, and the
 * completion script loaded into a real bash and asked what it completes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, lambdactl } from "../harness/cli.js";

const PACKAGE = JSON.parse(readFileSync(join(process.cwd(), "package.json"), "utf8")) as { name: string; version: string };

test("--version prints the version of package.json", async () => {
  const r = await lambdactl(["--version"], { cwd: tmpdir() });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `lambdactl ${PACKAGE.version} (${PACKAGE.name})\n`);
  const j = await lambdactl(["--version", "--json"], { cwd: tmpdir() });
  assert.deepEqual(JSON.parse(j.stdout), { name: PACKAGE.name, version: PACKAGE.version });
});

test("`npx lambdactl` in the repository runs the built bin (executable, with its shebang)", () => {
  // npm links the package's own bin; without the execute bit a shell answers "Permission denied".
  const out = execFileSync("npx", ["--no-install", "lambdactl", "--version"], { cwd: process.cwd(), encoding: "utf8" });
  assert.equal(out, `lambdactl ${PACKAGE.version} (${PACKAGE.name})\n`);
  assert.ok(statSync(CLI).mode & 0o111, `${CLI} is executable`);
});

test("bash completion from the command table: commands, subcommands, flags, choices, files", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "lambdactl-completion-"));
  try {
    writeFileSync(join(dir, "catalog-next.json"), "{}");
    writeFileSync(join(dir, "events.jsonl"), "");
    // A `lambdactl` on PATH, as an installed one would be, so `source <(lambdactl completion bash)` runs as documented.
    const bin = join(dir, "lambdactl");
    writeFileSync(bin, `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, { mode: 0o755 });
    /** What bash completes for `line`, the last word being the one under the cursor. */
    const complete = (...words: string[]): string[] => {
      const script = `source <(lambdactl completion bash) || exit 3
COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")})
COMP_CWORD=${words.length - 1}
_lambdactl
printf '%s\\n' "\${COMPREPLY[@]}"`;
      const out = execFileSync("bash", ["-c", script], { cwd: dir, env: { PATH: `${dir}:${process.env.PATH ?? ""}` }, encoding: "utf8" });
      return out.split("\n").filter((l) => l !== "").sort();
    };
    await t.test("the first word: every command", () => {
      assert.deepEqual(complete("lambdactl", ""), ["catalog", "completion", "help", "ingest", "metrics", "nats-users", "query", "run", "status", "top", "watermark"]);
      assert.deepEqual(complete("lambdactl", "wa"), ["watermark"]);
      assert.deepEqual(complete("lambdactl", "--"), ["--help", "--version"]);
    });
    await t.test("after a command: its subcommands, or the choices of its first argument", () => {
      assert.deepEqual(complete("lambdactl", "watermark", ""), ["diff", "history", "rollback", "timeline", "verify"]);
      assert.deepEqual(complete("lambdactl", "watermark", "h"), ["history"]);
      assert.deepEqual(complete("lambdactl", "catalog", ""), ["apply", "show", "validate"]);
      assert.deepEqual(complete("lambdactl", "completion", ""), ["bash", "zsh"]);
    });
    await t.test("flags of the command or subcommand on the line", () => {
      const grpc = ["--cert", "--grpc", "--key", "--timeout", "--tls-ca", "--tls-server-name", "--token", "--token-file"];
      assert.deepEqual(complete("lambdactl", "watermark", "verify", "--"), ["--admin-grpc", ...grpc, "--help", "--json"].sort());
      assert.deepEqual(complete("lambdactl", "metrics", "--"), [...grpc, "--help", "--json"].sort());
      assert.deepEqual(complete("lambdactl", "watermark", "--w"), ["--watch"]);
      assert.deepEqual(complete("lambdactl", "top", "article_views", "-k", "3", "--w"), ["--where"]);
      assert.deepEqual(complete("lambdactl", "query", "m", "--from", "-1h", "--ti"), ["--timeout"]);
      assert.deepEqual(complete("lambdactl", "query", "m", "--from", "-1h", "--to"), ["--to", "--token", "--token-file"]);
    });
    await t.test("file names where an argument or a flag's value is a file; nothing for other values", () => {
      assert.deepEqual(complete("lambdactl", "catalog", "apply", "cat"), ["catalog-next.json"]);
      assert.deepEqual(complete("lambdactl", "ingest", "pageviews", "ev"), ["events.jsonl"]);
      assert.deepEqual(complete("lambdactl", "ingest", "pageviews", "--catalog", "cat"), ["catalog-next.json"]);
      assert.deepEqual(complete("lambdactl", "watermark", "timeline", "--out", "ev"), ["events.jsonl"]);
      assert.deepEqual(complete("lambdactl", "query", "m", "--tls-ca", "ev"), ["events.jsonl"]);
      assert.deepEqual(complete("lambdactl", "run", "--token-file", "ev"), ["events.jsonl"]);
      assert.deepEqual(complete("lambdactl", "run", "--token", ""), [], "a token is not a file name");
      assert.deepEqual(complete("lambdactl", "query", "m", "--from", ""), []);
      // bash splits host:port at ":"; the value does not count as an argument.
      assert.deepEqual(complete("lambdactl", "ingest", "--nats-url", "nats", ":", "//h", "pageviews", "ev"), ["events.jsonl"]);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("zsh completion loads the same function through bashcompinit", async () => {
  const r = await lambdactl(["completion", "zsh"], { cwd: tmpdir() });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^#compdef lambdactl$/m);
  assert.match(r.stdout, /^autoload -U \+X bashcompinit && bashcompinit$/m);
  assert.match(r.stdout, /^complete -F _lambdactl lambdactl$/m);
  const bad = await lambdactl(["completion", "fish"], { cwd: tmpdir() });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown shell "fish"; expected bash or zsh/);
});
