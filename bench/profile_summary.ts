#!/usr/bin/env node
/**
 * Summarises V8 CPU profiles (node --cpu-prof) into what costs what: self and
 * inclusive time per function, and self time per area (a package under
 * node_modules, a folder of this repo, node internals, GC, idle).
 *
 *   node dist/bench/profile_summary.js <file.cpuprofile | dir>... [--top N]
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { REPO_ROOT } from "./paths.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function area(url: string, fn: string): string {
  if (!url) return fn.startsWith("(") ? fn : "(native)";
  if (url.startsWith("node:")) return "node internals";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const parts = url.slice(nm + "node_modules/".length).split("/");
    return parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  const path = url.replace(/^file:\/\//, "");
  const rel = relative(REPO_ROOT, path).replace(/^dist\//, "");
  const parts = rel.split("/");
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

function where(f: CallFrame): string {
  const path = f.url.replace(/^file:\/\//, "");
  const short = f.url ? `${relative(REPO_ROOT, path).replace(/^.*node_modules\//, "")}:${f.lineNumber + 1}` : "";
  return `${f.functionName || "(anonymous)"} ${short}`.trim();
}

/** The `top` entries per list of one profile, as text. */
export function summarise(p: Profile, top: number): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const node = byId.get(p.samples[i]!)!;
    const key = where(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + dt);
    const a = area(node.callFrame.url, node.callFrame.functionName);
    areas.set(a, (areas.get(a) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const k = where(byId.get(id)!.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + dt);
    }
  }
  const busy = total - (areas.get("(idle)") ?? 0);
  const pct = (ms: number) => `${((ms / busy) * 100).toFixed(1).padStart(5)} %`;
  const list = (m: Map<string, number>, skip: (k: string) => boolean) =>
    [...m.entries()]
      .filter(([k]) => !skip(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, ms]) => `  ${ms.toFixed(0).padStart(7)} ms ${pct(ms)}  ${k}`);
  const pseudo = (k: string) => k.startsWith("(root)") || k.startsWith("(program)") || k.startsWith("(idle)");
  return [
    `profile: ${(total / 1000).toFixed(1)} s sampled, ${(busy / 1000).toFixed(1)} s busy (percentages are of busy time)`,
    "self time by area:",
    ...list(areas, (k) => k === "(idle)"),
    "self time by function:",
    ...list(self, (k) => k.startsWith("(idle)")),
    "inclusive time by function:",
    ...list(incl, pseudo),
  ].join("\n");
}

function files(args: string[]): string[] {
  return args.flatMap((a) => (statSync(a).isDirectory() ? readdirSync(a).filter((f) => f.endsWith(".cpuprofile")).map((f) => join(a, f)) : [a]));
}

const argv = process.argv.slice(2);
const topAt = argv.indexOf("--top");
const top = topAt >= 0 ? Number(argv.splice(topAt, 2)[1]) : 25;
if (argv.length === 0) {
  process.stderr.write("usage: node dist/bench/profile_summary.js <file.cpuprofile | dir>... [--top N]\n");
  process.exit(2);
}
for (const f of files(argv)) {
  process.stdout.write(`\n== ${f}\n${summarise(JSON.parse(readFileSync(f, "utf8")) as Profile, top)}\n`);
}
