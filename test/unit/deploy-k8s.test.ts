/**
 * The Kubernetes manifests and the NATS Helm values stay true to the code, without a cluster:
 * the committed values are what deploy/nats/values.mjs generates from src/nats/permissions.ts;
 * each user's allow-lists there are natsPermissions() of its roles (read back from the file, not
 * from the generator); each workload logs in as the user that runs exactly its LAMBDA_ROLES, with
 * that user's inbox prefix and its own seed Secret; no manifest holds a Secret; and every
 * LAMBDA_* variable a manifest sets is one the config knows.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { configEnvVars } from "../../src/core/config.js";
import { namesFor } from "../../src/nats/names.js";
import { inboxPrefixFor, natsPermissions, type NatsPrincipal } from "../../src/nats/permissions.js";

const VALUES = "deploy/nats/values-lambda.yaml";

interface ValuesScript {
  renderValues(prefix: string): string;
  placeholderNkey(user: string): string;
}
const loadScript = async () => (await import(pathToFileURL(resolve("deploy/nats/values.mjs")).href)) as ValuesScript;

/** A user of the values file as written there: its comment line, its nkey and its two allow-lists. */
interface ValuesUser {
  readonly name: string;
  readonly principals: NatsPrincipal[];
  readonly inbox: string;
  readonly secret: string | undefined;
  readonly nkey: string;
  readonly publish: string[];
  readonly subscribe: string[];
}

/** Reads the users back from the values file (its own fixed layout: one subject per line). */
function parseValuesUsers(text: string): ValuesUser[] {
  const users: ValuesUser[] = [];
  let current: { -readonly [K in keyof ValuesUser]: ValuesUser[K] } | undefined;
  let list: string[] | undefined;
  for (const line of text.split("\n")) {
    const head = /^ {8}# user (\S+): ([^;]+); inbox (\S+); (?:Secret (\S+)|seed kept outside the cluster)$/.exec(line);
    if (head) {
      current = { name: head[1]!, principals: head[2]!.split(", ") as NatsPrincipal[], inbox: head[3]!, secret: head[4], nkey: "", publish: [], subscribe: [] };
      users.push(current);
      list = undefined;
      continue;
    }
    if (!current) continue;
    const nkey = /^ {8}- nkey: (".*")$/.exec(line);
    if (nkey) current.nkey = JSON.parse(nkey[1]!) as string;
    else if (/^ {12}publish:$/.test(line)) list = current.publish;
    else if (/^ {12}subscribe:$/.test(line)) list = current.subscribe;
    else if (list && /^ {16}- /.test(line)) list.push(JSON.parse(line.slice(18)) as string);
    else if (!/^ {10,}(permissions|allow):$/.test(line)) list = undefined;
  }
  return users;
}

/** The manifests of deploy/k8s and its subfolders, by path. */
function manifests(dir = "deploy/k8s"): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) for (const [p, t] of manifests(path)) out.set(p, t);
    else if (e.name.endsWith(".yaml")) out.set(path, readFileSync(path, "utf8"));
  }
  return out;
}

const envValue = (text: string, name: string) => new RegExp(`- name: ${name}\\n\\s+value: "?([^"\\n]+)"?\\n`).exec(text)?.[1];

test("the committed NATS Helm values are what deploy/nats/values.mjs generates from the code", async () => {
  const { renderValues } = await loadScript();
  assert.equal(readFileSync(VALUES, "utf8"), renderValues("lambda"), `${VALUES} is stale: run npm run build && node deploy/nats/values.mjs`);
});

test("each user's allow-lists in the values are natsPermissions() of its roles, with its own inbox and a placeholder key", async () => {
  const { placeholderNkey } = await loadScript();
  const users = parseValuesUsers(readFileSync(VALUES, "utf8"));
  assert.deepEqual(users.map((u) => u.name).sort(), ["archiver", "coordinator", "executor", "ingest", "lambdactl", "lambdactl-readonly", "serving", "speed"]);
  const names = namesFor("lambda");
  for (const u of users) {
    const want = natsPermissions(names, u.principals, u.name);
    assert.deepEqual(u.publish, want.publish, `publish allow-list of ${u.name}`);
    assert.deepEqual(u.subscribe, want.subscribe, `subscribe allow-list of ${u.name}`);
    assert.ok(u.subscribe.includes(`${inboxPrefixFor(u.name)}.>`), `${u.name} reads its own inbox`);
    assert.equal(u.inbox, inboxPrefixFor(u.name));
    // Not a public nkey (U + 55 base32 characters): nats-server refuses to start with it.
    assert.equal(u.nkey, placeholderNkey(u.name));
    assert.doesNotMatch(u.nkey, /^U[A-Z2-7]{55}$/);
  }
  // Only the coordinator's user may write the watermark (and its run history) and the assignments.
  for (const bucket of [names.watermarkBucket, names.assignmentsBucket]) {
    const writers = users.filter((u) => u.publish.some((s) => s.startsWith(`$KV.${bucket}.`))).map((u) => u.name);
    assert.deepEqual(writers, ["coordinator"], `writers of ${bucket}`);
  }
});

test("each workload logs in as the NATS user of exactly its roles, with that user's inbox prefix and its own seed Secret", () => {
  const users = parseValuesUsers(readFileSync(VALUES, "utf8"));
  const seen = new Set<string>();
  for (const [path, text] of manifests()) {
    if (!/^kind: Deployment$/m.test(text)) continue;
    const roles = envValue(text, "LAMBDA_ROLES");
    assert.ok(roles, `${path}: no LAMBDA_ROLES`);
    const secret = /- name: nats\n\s+secret:\n\s+secretName: (\S+)\n/.exec(text)?.[1];
    const user = users.find((u) => u.secret !== undefined && u.secret === secret);
    assert.ok(user, `${path}: mounts NATS seed Secret ${secret}, which no user of ${VALUES} names`);
    assert.deepEqual(roles.split(",").sort(), [...user.principals].sort(), `${path}: LAMBDA_ROLES ${roles} vs user ${user.name}`);
    assert.equal(envValue(text, "LAMBDA_NATS_INBOX_PREFIX"), inboxPrefixFor(user.name), `${path}: inbox prefix`);
    assert.equal(envValue(text, "LAMBDA_NATS_NKEY_SEED_FILE"), "/var/run/secrets/lambda/nats/user.nk", `${path}: seed file`);
    assert.ok(!seen.has(user.name), `${path}: user ${user.name} is used by another workload too`);
    seen.add(user.name);
  }
  assert.deepEqual([...seen].sort(), users.filter((u) => u.secret).map((u) => u.name).sort(), "every user with a Secret runs one workload");
});

test("no manifest holds a Secret, and every LAMBDA_* variable they set is one the config knows", () => {
  const known = new Set(configEnvVars());
  for (const [path, text] of manifests()) {
    assert.doesNotMatch(text, /^kind: Secret$/m, `${path} holds a Secret: an apply would overwrite the real one`);
    const code = text
      .split("\n")
      .filter((l) => !/^\s*#/.test(l))
      .join("\n");
    for (const v of code.match(/LAMBDA_[A-Z0-9_]+/g) ?? []) assert.ok(known.has(v), `${path} sets ${v}, which src/core/config.ts does not know`);
  }
});
