#!/usr/bin/env node
// chDB ships its engine as one optional package per platform. When the registry an
// `npm install` talks to cannot serve the other platforms' packages, npm leaves them out of
// package-lock.json, and `npm ci` then refuses the lock file as out of sync. This adds the
// missing platform entries (os/cpu-restricted, so npm never fetches them on this machine).
import { readFileSync, writeFileSync } from "node:fs";

const file = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(file, "utf8"));
const chdb = lock.packages["node_modules/chdb"];
if (!chdb?.optionalDependencies) throw new Error("package-lock.json has no chdb entry with optionalDependencies");
const platforms = {
  "@chdb/lib-darwin-arm64": { os: ["darwin"], cpu: ["arm64"] },
  "@chdb/lib-darwin-x64": { os: ["darwin"], cpu: ["x64"] },
  "@chdb/lib-linux-arm64-gnu": { os: ["linux"], cpu: ["arm64"], libc: ["glibc"] },
  "@chdb/lib-linux-x64-gnu": { os: ["linux"], cpu: ["x64"], libc: ["glibc"] },
};
let added = 0;
for (const [name, version] of Object.entries(chdb.optionalDependencies)) {
  const key = `node_modules/${name}`;
  if (lock.packages[key]) continue;
  if (!platforms[name]) throw new Error(`unknown chDB platform package ${name}: add its os/cpu to scripts/lock-platforms.mjs`);
  // Keys in the order npm itself writes them (version first, then alphabetical), so that a
  // later `npm install` leaves the file as it is.
  const entry = { license: "Apache-2.0", optional: true, ...platforms[name] };
  lock.packages[key] = { version, ...Object.fromEntries(Object.entries(entry).sort(([a], [b]) => (a < b ? -1 : 1))) };
  added++;
}
const sorted = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0)));
lock.packages = sorted;
writeFileSync(file, JSON.stringify(lock, null, 2) + "\n");
console.log(added ? `added ${added} chDB platform entries to package-lock.json` : "package-lock.json already lists every chDB platform");
