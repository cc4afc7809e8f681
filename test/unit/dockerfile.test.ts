/**
 * The Dockerfile stays true to the tree and to package-lock.json, without Docker (none runs on
 * these machines): its base image is a supported Node LTS; everything it copies from the build
 * context exists and is let through by .dockerignore; the build stage has every file `npm run
 * build` reads from src/; the entry its CMD runs is what the build produces; and the default
 * target's `npm ci --omit=dev --omit=optional` keeps every package the server code imports while
 * leaving chDB's engine out, which the `embedded` target keeps. Which packages each install keeps
 * is read from the lockfile's own flags (`dev`, `optional`, `devOptional`), the ones npm ci obeys.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

/** One stage of the Dockerfile: its name, its base and its instructions (continuations joined). */
interface Stage {
  readonly name: string;
  readonly from: string;
  readonly lines: string[];
}

function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  const joined = text.replace(/\\\n/g, " ").split("\n");
  for (const raw of joined) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) {
      stages.push({ name: from[2] ?? String(stages.length), from: from[1]!, lines: [] });
      continue;
    }
    const arg = /^ARG\s+(\w+)=(\S+)$/.exec(line);
    if (arg && stages.length === 0) args.set(arg[1]!, arg[2]!);
    else stages.at(-1)?.lines.push(line);
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(readFileSync("Dockerfile", "utf8"));
const stage = (name: string) => {
  const s = dockerfile.stages.find((x) => x.name === name);
  assert.ok(s, `Dockerfile has no stage ${name}`);
  return s;
};

/** .dockerignore is an allow-list (`*`, then `!path`): is `path` in the build context? */
function inContext(path: string): boolean {
  const rules = readFileSync(".dockerignore", "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  assert.equal(rules[0], "*", ".dockerignore starts by leaving everything out");
  const allowed = rules.slice(1).map((r) => {
    assert.ok(r.startsWith("!"), `.dockerignore: ${r} is not an allow rule`);
    return r.slice(1).replace(/\/$/, "");
  });
  return allowed.some((a) => path === a || path.startsWith(`${a}/`));
}

/** The sources of the COPY instructions of a stage that read the build context. */
const contextCopies = (s: Stage) =>
  s.lines
    .filter((l) => /^COPY\s/.test(l) && !/--from=/.test(l))
    .flatMap((l) => {
      const parts = l.split(/\s+/).slice(1).filter((p) => !p.startsWith("--"));
      return parts.slice(0, -1);
    });

test("the image is built on a supported Node LTS (22 or 24)", () => {
  const base = dockerfile.args.get("NODE_IMAGE");
  assert.ok(base, "ARG NODE_IMAGE has a default");
  const major = /^node:(\d+)[-.]/.exec(base)?.[1];
  assert.ok(major === "22" || major === "24", `NODE_IMAGE ${base}: not Node 22 or 24`);
  for (const s of dockerfile.stages) assert.ok(s.from === "${NODE_IMAGE}" || dockerfile.stages.some((o) => o.name === s.from), `stage ${s.name} is built FROM ${s.from}, not the Node image or a stage`);
});

test("everything the Dockerfile copies from the context exists and .dockerignore lets it in", () => {
  let copies = 0;
  for (const s of dockerfile.stages) {
    for (const src of contextCopies(s)) {
      copies++;
      const path = normalize(src).replace(/\/$/, "");
      assert.ok(existsSync(path), `stage ${s.name} copies ${src}, which does not exist`);
      assert.ok(inContext(path), `stage ${s.name} copies ${src}, which .dockerignore leaves out of the context`);
    }
  }
  assert.ok(copies >= 8, `found the COPY instructions (${copies})`);
});

/** Relative imports of every .ts file under src/ that point outside src/ (the build stage has only src/). */
function importsOutsideSrc(dir = "src"): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...importsOutsideSrc(path));
    else if (e.name.endsWith(".ts")) {
      for (const m of readFileSync(path, "utf8").matchAll(/(?:from|import\()\s*"(\.[^"]+)"/g)) {
        const target = relative("src", join(dirname(path), m[1]!));
        if (target.startsWith("..")) out.push(`${path} imports ${m[1]}`);
      }
    }
  }
  return out;
}

test("the build stage holds what npm run build reads, and builds the entry the CMD runs", () => {
  const copied = contextCopies(stage("build")).map((p) => normalize(p).replace(/\/$/, ""));
  for (const need of ["package.json", "package-lock.json", "tsconfig.json", "buf.yaml", "buf.gen.yaml", "proto", "src", "scripts/gen-descriptors.mjs"]) {
    assert.ok(copied.includes(need), `the build stage does not copy ${need}`);
  }
  assert.deepEqual(importsOutsideSrc(), [], "src/ must compile alone: the image has no test/ or bench/");
  const runtime = stage("runtime");
  assert.ok(runtime.lines.includes("COPY --from=build /src/dist/src ./dist/src"), "the runtime takes dist/src from the build");
  const cmd = runtime.lines.find((l) => l.startsWith("CMD "));
  assert.ok(cmd, "the runtime stage has a CMD");
  const argv = JSON.parse(cmd.slice(4)) as string[];
  const entry = argv.find((a) => a.startsWith("dist/src/"));
  assert.ok(entry, `CMD ${cmd} runs a file of dist/src`);
  // The tests run from the same tsc output the build stage makes (npm run build).
  assert.ok(existsSync(entry), `${entry} is not what npm run build produces`);
  for (const s of ["catalog/catalog.json", "package.json"]) assert.ok(contextCopies(runtime).some((c) => s.startsWith(normalize(c).replace(/\/$/, ""))), `the runtime copies ${s}`);
});

interface LockPackage {
  readonly dev?: boolean;
  readonly optional?: boolean;
  readonly devOptional?: boolean;
}
const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as { lockfileVersion: number; packages: Record<string, LockPackage> };

/** The lockfile paths `npm ci` installs with these omissions (npm's flags: dev, optional, devOptional). */
function installed(omit: { dev: boolean; optional: boolean }): Set<string> {
  const keep = new Set<string>();
  for (const [path, p] of Object.entries(lock.packages)) {
    if (path === "") continue;
    // devOptional: needed by a dev dependency and optionally by a production one, so it goes
    // only when both kinds are omitted.
    if ((omit.dev && p.dev) || (omit.optional && p.optional) || (omit.dev && omit.optional && p.devOptional)) continue;
    keep.add(path);
  }
  return keep;
}

/** Package names the server code imports (bare specifiers of src/, node: builtins left out). */
function bareImports(dir = "src", out = new Set<string>()): Set<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) bareImports(path, out);
    else if (e.name.endsWith(".ts")) {
      for (const m of readFileSync(path, "utf8").matchAll(/(?:^import[^"]*?from|^export[^"]*?from|import\()\s*"([^".][^"]*)"/gm)) {
        const spec = m[1]!;
        if (spec.startsWith("node:")) continue;
        out.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);
      }
    }
  }
  return out;
}

/** Bytes under a directory of this machine's node_modules (0 when it is not installed here). */
function bytesUnder(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((n, e) => n + bytesUnder(join(path, e)), 0);
}

test("the server image's npm ci leaves chDB's engine out and keeps every package the server code imports", () => {
  assert.ok(lock.lockfileVersion >= 2, "a lockfile with a packages map");
  const serverInstall = stage("deps-server").lines.find((l) => l.startsWith("RUN npm ci"));
  const embeddedInstall = stage("deps-embedded").lines.find((l) => l.startsWith("RUN npm ci"));
  assert.match(serverInstall ?? "", /--omit=dev\b.*--omit=optional\b|--omit=optional\b.*--omit=dev\b/, "deps-server omits dev and optional dependencies");
  assert.match(embeddedInstall ?? "", /--omit=dev\b/);
  assert.doesNotMatch(embeddedInstall ?? "", /--omit=optional/, "the embedded image keeps chDB's engine");
  // The default target is the last stage, and it takes the server's node_modules.
  const last = dockerfile.stages.at(-1)!;
  assert.equal(last.name, "server", "the last stage (docker build's default target) is the server image");
  assert.ok(last.lines.includes("COPY --from=deps-server /src/node_modules ./node_modules"));
  assert.ok(stage("embedded").lines.includes("COPY --from=deps-embedded /src/node_modules ./node_modules"));

  const server = installed({ dev: true, optional: true });
  const embedded = installed({ dev: true, optional: false });
  const engines = [...embedded].filter((p) => p.startsWith("node_modules/@chdb/lib-"));
  assert.ok(engines.includes("node_modules/@chdb/lib-linux-x64-gnu"), `the embedded install has the linux x64 engine: ${engines.join(", ")}`);
  assert.deepEqual([...server].filter((p) => p.includes("@chdb/lib-")), [], "the server install has no chDB engine");
  // chdb's JavaScript stays (src/ch/client.ts imports chdb/connection only when no URL is set).
  for (const pkg of bareImports()) {
    assert.ok(server.has(`node_modules/${pkg}`), `src/ imports ${pkg}, which npm ci --omit=dev --omit=optional leaves out`);
  }
  // What this saves, measured on this machine's node_modules (information, not an assertion).
  const mb = (paths: Iterable<string>) => Math.round([...paths].filter((p) => !p.includes("/node_modules/", 13)).reduce((n, p) => n + bytesUnder(p), 0) / 2 ** 20);
  console.log(`# server install: ${server.size} packages, ~${mb(server)} MB here; chDB engines left out: ~${mb(engines)} MB`);
});
