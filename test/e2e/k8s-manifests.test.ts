/**
 * The manifests start what they claim. Each Deployment of `kubectl kustomize deploy/k8s` runs
 * here as a local process: the image's command (the Dockerfile's CMD) with exactly the
 * environment its pod would get (the lambda-config ConfigMap through envFrom, then its own env,
 * metadata.name as the pod name), and its mounts as files: the catalog ConfigMap, and every
 * Secret it mounts, made for the test (a NATS nkey seed per user from `lambdactl nats-users`, the
 * CA of a throwaway PKI, ClickHouse passwords, serving's certificate and tokens). Env values
 * under a mount path point into the test's copy of that mount. Only addresses change: NATS,
 * ClickHouse and the listening ports are the test's.
 *
 * NATS is a real nats-server with TLS and the authorization block `lambdactl nats-users` writes
 * (the same users and permissions as deploy/nats/values-lambda.yaml). No ClickHouse server can
 * run here, so LAMBDA_CLICKHOUSE_URL points at a listener that records each login and refuses it
 * as a server does (HTTP 516).
 *
 * The coordinator starts first and the others once it started (it creates the streams and
 * buckets; roles started before it wait for them, as nats-permissions.test.ts shows).
 *
 * Proven: the coordinator and the speed node start ("node started"), log in to NATS over TLS as
 * their own users without a permission violation, and answer /livez, /readyz (200) and /metrics
 * on the metrics port. The archiver, the executors and serving get through the config, their
 * Secrets and the NATS login, then reach ClickHouse as their manifest's user with the password of
 * their Secret, live (/livez 200) and not ready (/readyz 503) while ClickHouse refuses them. Not
 * proven: that those three start against a real ClickHouse server.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import type { NatsUsersJson } from "../../src/cli/commands/nats_users.js";
import { createLocalCa, LOOPBACK_HOSTS } from "../../src/main/pki.js";
import { startNatsServer } from "../../src/nats/server_process.js";
import { lambdactl, parseJson } from "../harness/cli.js";
import { newToken } from "../harness/grpc_tls.js";
import { renderKustomization, type KubeObject } from "../harness/k8s.js";
import { waitFor } from "../harness/wait.js";

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: unknown; configMapKeyRef?: unknown };
}
interface Volume {
  name: string;
  configMap?: { name: string };
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  emptyDir?: unknown;
}
interface Deployment {
  metadata: { name: string };
  spec: {
    template: {
      spec: {
        volumes: Volume[];
        containers: { name: string; command?: string[]; args?: string[]; envFrom?: { configMapRef?: { name: string } }[]; env?: EnvVar[]; volumeMounts?: { name: string; mountPath: string }[] }[];
      };
    };
  };
}

/** The image's command: the Dockerfile's CMD (the manifests set neither command nor args). */
function imageCommand(): string[] {
  const cmd = readFileSync("Dockerfile", "utf8")
    .split("\n")
    .filter((l) => l.startsWith("CMD "))
    .at(-1);
  assert.ok(cmd, "the Dockerfile has a CMD");
  return JSON.parse(cmd.slice(4)) as string[];
}

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A stand-in for the ClickHouse HTTP interface: records who logs in, refuses everyone (HTTP 516). */
async function refusingClickHouse() {
  const logins: { user: string; password: string }[] = [];
  const server = createServer((req, res) => {
    const [user = "", password = ""] = Buffer.from((req.headers.authorization ?? "").replace(/^Basic /, ""), "base64").toString("utf8").split(/:(.*)/s);
    logins.push({ user, password });
    req.resume().on("end", () => {
      res.writeHead(516, { "Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": "516" });
      res.end(`Code: 516. DB::Exception: ${user}: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) (version 24.8.1.1)\n`);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, logins, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function get(url: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return { status: r.status, body: await r.text() };
  } catch {
    return undefined; // not listening yet: the caller polls
  }
}

test("each Deployment of deploy/k8s starts with the command, env, ConfigMaps and Secrets its manifest gives", { timeout: 180_000 }, async () => {
  const objects = renderKustomization("deploy/k8s");
  const configMaps = new Map(objects.filter((o) => o.kind === "ConfigMap").map((o) => [o.metadata!.name!, (o as KubeObject & { data: Record<string, string> }).data]));
  const deployments = objects.filter((o) => o.kind === "Deployment") as unknown as Deployment[];
  assert.equal(deployments.length, 5);
  const dir = mkdtempSync(join(tmpdir(), "lambda-k8s-run-"));
  const children: { name: string; child: ChildProcess; log: () => string }[] = [];
  const clickhouse = await refusingClickHouse();
  let nats: Awaited<ReturnType<typeof startNatsServer>> | undefined;
  try {
    // The Secrets' contents, by Secret name and key.
    const users = await lambdactl(["nats-users", "--out", "users", "--json"], { cwd: dir });
    assert.equal(users.code, 0, users.stderr);
    const out = parseJson<NatsUsersJson>(users);
    const ca = createLocalCa("k8s manifests test CA");
    const natsCert = ca.issue({ commonName: "nats", hosts: [...LOOPBACK_HOSTS], usage: "server" });
    const servingCert = ca.issue({ commonName: "lambda-serving", hosts: [...LOOPBACK_HOSTS], usage: "server" });
    const passwords = { writer: newToken(), serving: newToken() };
    const secrets: Record<string, Record<string, string>> = {
      "lambda-nats-tls": { "ca.crt": ca.ca.cert },
      "lambda-clickhouse-writer": { password: `${passwords.writer}\n` },
      "lambda-clickhouse-serving": { password: `${passwords.serving}\n` },
      "lambda-serving-tls": { "tls.crt": servingCert.cert, "tls.key": servingCert.key },
      "lambda-grpc-tokens": { "query.token": `${newToken()}\n`, "admin.token": `${newToken()}\n` },
    };
    for (const u of out.users) secrets[`lambda-nats-${u.name}`] = { "user.nk": readFileSync(u.seedFile, "utf8") };

    // NATS as the Helm values make it: TLS on the client port, the runtime's users.
    writeFileSync(join(dir, "nats-cert.pem"), natsCert.cert);
    writeFileSync(join(dir, "nats-key.pem"), natsCert.key);
    writeFileSync(join(dir, "server.conf"), `tls { cert_file: "${join(dir, "nats-cert.pem")}", key_file: "${join(dir, "nats-key.pem")}" }\ninclude "${relative(dir, out.serverConfig)}"\n`);
    let natsLog = "";
    nats = await startNatsServer({ path: process.env.PATH ?? "", args: ["-c", join(dir, "server.conf")], onLog: (c) => (natsLog += c) });
    const natsUrl = nats.url;

    const [command, ...args] = imageCommand();
    const metricsPorts = new Map<string, number>();
    // The coordinator first, ready before the others start: it creates the streams and buckets.
    // (Roles started before it wait for them, nats/setup.ts; nats-permissions.test.ts tests that.
    // Here it once failed in CI: a speed node waited its 60 s for the catalog bucket although the
    // coordinator had started, which no run here has shown again, so this test does not race it.)
    const ordered = [...deployments].sort((a, b) => Number(b.metadata.name === "lambda-coordinator") - Number(a.metadata.name === "lambda-coordinator"));
    for (const d of ordered) {
      const pod = d.spec.template.spec;
      const c = pod.containers[0]!;
      assert.equal(c.command, undefined, `${d.metadata.name}: runs the image's command`);
      assert.equal(c.args, undefined);
      // Mounts: each volume into its own directory of the test.
      const mounts = new Map<string, string>();
      for (const m of c.volumeMounts ?? []) {
        const v = pod.volumes.find((x) => x.name === m.name);
        assert.ok(v, `${d.metadata.name}: mount ${m.name} has a volume`);
        const to = join(dir, d.metadata.name, m.name);
        mkdirSync(to, { recursive: true });
        if (v.configMap) {
          const data = configMaps.get(v.configMap.name);
          assert.ok(data, `${d.metadata.name}: ConfigMap ${v.configMap.name} is in the base`);
          for (const [k, text] of Object.entries(data)) writeFileSync(join(to, k), text);
        } else if (v.secret) {
          const data = secrets[v.secret.secretName];
          assert.ok(data, `${d.metadata.name}: the test makes Secret ${v.secret.secretName}`);
          const items = v.secret.items ?? Object.keys(data).map((key) => ({ key, path: key }));
          for (const { key, path } of items) {
            assert.ok(data[key] !== undefined, `${d.metadata.name}: Secret ${v.secret.secretName} has key ${key}`);
            writeFileSync(join(to, path), data[key]!, { mode: 0o600 });
          }
        }
        mounts.set(m.mountPath, to);
      }
      const local = (value: string) => {
        for (const [mountPath, to] of mounts) if (value.startsWith(`${mountPath}/`)) return join(to, value.slice(mountPath.length + 1));
        return value;
      };
      // envFrom first, then env (which wins), as the kubelet does.
      const env: Record<string, string> = {};
      for (const from of c.envFrom ?? []) Object.assign(env, configMaps.get(from.configMapRef!.name));
      for (const e of c.env ?? []) {
        if (e.value !== undefined) env[e.name] = e.value;
        else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = `${d.metadata.name}-test`;
        else assert.fail(`${d.metadata.name}: env ${e.name} from ${JSON.stringify(e.valueFrom)} is not mapped by this test`);
      }
      for (const [k, v] of Object.entries(env)) env[k] = local(v);
      // The addresses: the test's NATS and ClickHouse, ports of its own (five pods share one host here).
      assert.equal(env.LAMBDA_NATS_URL, "nats://nats:4222");
      env.LAMBDA_NATS_URL = natsUrl;
      if (env.LAMBDA_CLICKHOUSE_URL) env.LAMBDA_CLICKHOUSE_URL = clickhouse.url;
      env.LAMBDA_METRICS_PORT = String(await freePort());
      metricsPorts.set(d.metadata.name, Number(env.LAMBDA_METRICS_PORT));
      for (const k of ["LAMBDA_GRPC_PORT", "LAMBDA_GRPC_ADMIN_PORT"]) if (env[k]) env[k] = String(await freePort());
      let log = "";
      const child = spawn(command!, args, { cwd: process.cwd(), env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
      child.stdout!.on("data", (b: Buffer) => (log += b.toString()));
      child.stderr!.on("data", (b: Buffer) => (log += b.toString()));
      children.push({ name: d.metadata.name, child, log: () => log });
      if (d.metadata.name === "lambda-coordinator") {
        await waitFor("lambda-coordinator logs \"node started\"", () => log.includes('"node started"') || undefined, { timeoutMs: 60_000 }).catch((err: unknown) => {
          throw new Error(`${String(err)}\nlambda-coordinator log:\n${log}`);
        });
      }
    }

    const proc = (name: string) => children.find((c) => c.name === name)!;
    const metrics = (name: string, path: string) => get(`http://127.0.0.1:${metricsPorts.get(name)}${path}`);
    // Coordinator and speed: started, ready, and exporting metrics.
    for (const name of ["lambda-coordinator", "lambda-speed"]) {
      await waitFor(`${name} logs "node started"`, () => proc(name).log().includes('"node started"') || undefined, { timeoutMs: 60_000 }).catch((err: unknown) => {
        throw new Error(`${String(err)}\n${name} log:\n${proc(name).log()}`);
      });
      assert.equal((await metrics(name, "/livez"))?.status, 200);
      const ready = await waitFor(`${name} /readyz 200`, async () => {
        const r = await metrics(name, "/readyz");
        return r?.status === 200 ? r : undefined;
      }, { timeoutMs: 30_000 });
      assert.equal(ready.status, 200);
      const m = await metrics(name, "/metrics");
      assert.equal(m?.status, 200);
      assert.match(m!.body, /^# TYPE \S+ /m, `${name}: Prometheus text`);
    }
    // Archiver, executor, serving: through config, Secrets and NATS, to ClickHouse as their own user.
    const chUsers = { "lambda-archiver": ["lambda_writer", passwords.writer], "lambda-executor": ["lambda_writer", passwords.writer], "lambda-serving": ["lambda_serving", passwords.serving] } as const;
    for (const [name, [user, password]] of Object.entries(chUsers)) {
      await waitFor(`${name} asks ClickHouse as ${user}`, () => clickhouse.logins.some((l) => l.user === user) || undefined, { timeoutMs: 60_000 }).catch((err: unknown) => {
        throw new Error(`${String(err)}\n${name} log:\n${proc(name).log()}`);
      });
      for (const l of clickhouse.logins.filter((x) => x.user === user)) assert.equal(l.password, password, `${name}: the password of its Secret`);
      assert.doesNotMatch(proc(name).log(), /ConfigError|unknown variable|ENOENT|permission violation|Authorization Violation/i, `${name}: no config, file or NATS permission error`);
      const live = await waitFor(`${name} /livez`, () => metrics(name, "/livez"), { timeoutMs: 30_000 }).catch(() => undefined);
      // A process that gave up on ClickHouse has exited ("start failed"); one still trying is live and not ready.
      // It may give up between the two reads, and a loaded machine may not answer within a read's
      // 2 s: ask until /readyz answers or the process has exited.
      const ready = live
        ? await waitFor(`${name} /readyz to answer, or ${name} to exit`, async () => (proc(name).child.exitCode !== null ? { exited: true as const } : await metrics(name, "/readyz")), { timeoutMs: 30_000 })
        : undefined;
      if (ready && !("exited" in ready)) {
        assert.equal(live!.status, 200);
        assert.equal(ready.status, 503, `${name}: not ready while ClickHouse refuses it`);
      } else {
        assert.match(proc(name).log(), /AUTHENTICATION_FAILED|Authentication failed/, `${name}: stopped on ClickHouse's refusal, nothing else`);
      }
    }
    assert.deepEqual(
      [...new Set(clickhouse.logins.map((l) => l.user))].sort(),
      ["lambda_serving", "lambda_writer"],
      "only the manifests' ClickHouse users log in",
    );
    assert.doesNotMatch(natsLog, /Authorization Violation|Permissions Violation/, "no workload broke its NATS user's permissions");
  } finally {
    for (const c of children) if (c.child.exitCode === null) c.child.kill("SIGTERM");
    await Promise.all(children.map((c) => (c.child.exitCode === null ? once(c.child, "exit") : undefined)));
    await nats?.close();
    await clickhouse.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
