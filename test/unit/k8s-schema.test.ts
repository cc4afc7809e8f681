/**
 * Every kustomization under deploy/ renders (kubectl kustomize) and every object it renders is
 * valid against the Kubernetes API schema, strictly (an unknown field is an error), offline:
 * test/harness/k8s.ts says how. A misspelt field in a manifest is caught, end to end. Then what
 * an operator checks in the base: probes on the metrics port for every workload, the dedicated
 * ServiceAccount without a token, topology spread, a PodDisruptionBudget per role, two or more
 * coordinators, the serving autoscaler, and network policies that deny by default and allow each
 * role only its peers.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, renderKustomization, validateObject, type KubeObject } from "../harness/k8s.js";

/** Every directory under deploy/ with a kustomization.yaml. */
function kustomizations(dir = "deploy"): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...kustomizations(join(dir, e.name)));
    else if (e.name === "kustomization.yaml") out.push(dir);
  }
  return out.sort();
}

/** Renders a kustomization; deploy/k8s/secrets from a copy with stand-in files (the real ones are never committed). */
function render(dir: string): KubeObject[] {
  if (dir !== "deploy/k8s/secrets") return renderKustomization(dir);
  const tmp = mkdtempSync(join(tmpdir(), "lambda-k8s-secrets-"));
  try {
    const text = readFileSync(join(dir, "kustomization.yaml"), "utf8");
    writeFileSync(join(tmp, "kustomization.yaml"), text);
    for (const m of text.matchAll(/=(files\/[^\],\s]+)/g)) {
      mkdirSync(join(tmp, dirname(m[1]!)), { recursive: true });
      writeFileSync(join(tmp, m[1]!), "stand-in\n");
    }
    return renderKustomization(tmp);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const invalid = (objects: KubeObject[]) =>
  objects.flatMap((o) => {
    const r = validateObject(o);
    return r.kind === "invalid" ? r.errors.map((e) => `${describe(o)} ${e.path}: ${e.message}`) : [];
  });

test("every kustomization under deploy/ renders, and every built-in object in it is valid against the Kubernetes schema", () => {
  const dirs = kustomizations();
  assert.ok(dirs.includes("deploy/k8s") && dirs.includes("deploy/k8s/dev") && dirs.includes("deploy/k8s/examples/prometheus-operator"), `found ${dirs.join(", ")}`);
  const counts: string[] = [];
  for (const dir of dirs) {
    const objects = render(dir);
    assert.ok(objects.length > 0, `${dir} renders no object`);
    assert.deepEqual(invalid(objects), [], `${dir} renders invalid objects`);
    const custom = objects.filter((o) => validateObject(o).kind === "custom_resource").map(describe);
    counts.push(`${dir}: ${objects.length - custom.length} validated${custom.length ? `, not validated (custom resources): ${custom.join(", ")}` : ""}`);
  }
  console.log(counts.map((c) => `# ${c}`).join("\n"));
  // The base must apply on a cluster without any CRD.
  assert.deepEqual(render("deploy/k8s").filter((o) => validateObject(o).kind === "custom_resource").map(describe), [], "the base holds a custom resource");
});

test("a misspelt field in a manifest is rejected: periodSecond in a copy of the base", () => {
  const tmp = mkdtempSync(join(tmpdir(), "lambda-k8s-typo-"));
  try {
    cpSync("deploy/k8s", tmp, { recursive: true });
    const speed = join(tmp, "speed.yaml");
    const text = readFileSync(speed, "utf8");
    assert.match(text, /periodSeconds: 10\n/);
    writeFileSync(speed, text.replace("periodSeconds: 10\n", "periodSecond: 10\n"));
    const errors = invalid(renderKustomization(tmp));
    assert.equal(errors.length, 1, errors.join("\n"));
    assert.match(errors[0]!, /^Deployment lambda\/lambda-speed \/spec\/template\/spec\/containers\/0\/livenessProbe\/periodSecond: unknown field "periodSecond" in V1Probe/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("wrong types, unknown kinds and unknown API groups are rejected; quantities may be numbers", () => {
  const deployment = render("deploy/k8s").find((o) => o.kind === "Deployment")!;
  const copy = () => structuredClone(deployment) as KubeObject & { spec: Record<string, unknown> & { template: { spec: { containers: Record<string, unknown>[] } } } };
  const wrongType = copy();
  wrongType.spec.replicas = "2";
  assert.match(invalid([wrongType]).join(), /\/spec\/replicas: expected a number/);
  const nested = copy();
  nested.spec.template.spec.containers[0]!.ports = { name: "metrics" };
  assert.match(invalid([nested]).join(), /containers\/0\/ports: expected a list of V1ContainerPort/);
  const quantity = copy();
  quantity.spec.template.spec.containers[0]!.resources = { requests: { cpu: 1, memory: "256Mi" } };
  assert.deepEqual(invalid([quantity]), []);
  assert.match(invalid([{ ...deployment, kind: "Deploymnet" }]).join(), /no type Deploymnet in apps\/v1/);
  assert.match(invalid([{ ...deployment, apiVersion: "aps/v1" }]).join(), /unknown API group/);
});

// ---- what the base promises ------------------------------------------------------------------

interface Probe {
  httpGet?: { path?: string; port?: string | number };
}
interface Container {
  name: string;
  ports?: { name?: string; containerPort?: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe & { periodSeconds?: number; failureThreshold?: number };
}
interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  topologySpreadConstraints?: { topologyKey: string; labelSelector?: { matchLabels?: Record<string, string> } }[];
  containers: Container[];
}
interface Workload {
  kind: string;
  metadata: { name: string };
  spec: { replicas?: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
}
interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}
interface NetworkPolicy {
  metadata: { name: string };
  spec: {
    podSelector: LabelSelector;
    policyTypes: string[];
    ingress?: { from?: { namespaceSelector?: LabelSelector; podSelector?: LabelSelector }[]; ports?: { port: number }[] }[];
    egress?: { to?: { namespaceSelector?: LabelSelector; podSelector?: LabelSelector }[]; ports?: { port: number }[] }[];
  };
}

/** Does a label selector select these labels (matchLabels and the In/NotIn/Exists operators)? */
function selects(sel: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = e.key in labels;
    if (e.operator === "In" && !(has && e.values!.includes(labels[e.key]!))) return false;
    if (e.operator === "NotIn" && has && e.values!.includes(labels[e.key]!)) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

const ROLES = ["speed", "serving", "coordinator", "executor", "archiver"] as const;
const base = () => render("deploy/k8s");
const workloads = (objects: KubeObject[]) => objects.filter((o) => o.kind === "Deployment") as unknown as Workload[];
const podLabels = (w: Workload) => w.spec.template.metadata.labels;

test("every workload: probes on the metrics port, its own ServiceAccount without a token, spread over nodes and zones", () => {
  const objects = base();
  const ws = workloads(objects);
  assert.deepEqual(ws.map((w) => podLabels(w)["app.kubernetes.io/component"]).sort(), [...ROLES].sort());
  const accounts = objects.filter((o) => o.kind === "ServiceAccount") as unknown as { metadata: { name: string }; automountServiceAccountToken?: boolean }[];
  for (const w of ws) {
    const pod = w.spec.template.spec;
    const c = pod.containers[0]!;
    assert.ok(c.ports?.some((p) => p.name === "metrics" && p.containerPort === 9464), `${w.metadata.name}: port metrics 9464`);
    assert.deepEqual(c.livenessProbe?.httpGet, { path: "/livez", port: "metrics" }, `${w.metadata.name}: liveness`);
    assert.deepEqual(c.readinessProbe?.httpGet, { path: "/readyz", port: "metrics" }, `${w.metadata.name}: readiness`);
    const account = accounts.find((a) => a.metadata.name === pod.serviceAccountName);
    assert.ok(account && pod.serviceAccountName !== "default", `${w.metadata.name}: a ServiceAccount of the base (${pod.serviceAccountName})`);
    assert.equal(account.automountServiceAccountToken, false);
    assert.equal(pod.automountServiceAccountToken, false, `${w.metadata.name}: no token`);
    const keys = (pod.topologySpreadConstraints ?? []).filter((t) => t.labelSelector?.matchLabels && selects(t.labelSelector, podLabels(w))).map((t) => t.topologyKey);
    assert.deepEqual(keys.sort(), ["kubernetes.io/hostname", "topology.kubernetes.io/zone"], `${w.metadata.name}: spread over its own pods`);
  }
  // Serving may wait for the schema (LAMBDA_CLICKHOUSE_SCHEMA_WAIT_MS, 60 s by default) before it is ready.
  const serving = ws.find((w) => w.metadata.name === "lambda-serving")!.spec.template.spec.containers[0]!;
  assert.deepEqual(serving.startupProbe?.httpGet, { path: "/readyz", port: "metrics" });
  assert.ok(serving.startupProbe!.periodSeconds! * serving.startupProbe!.failureThreshold! > 60, "the startup probe outlasts the schema wait");
});

test("a PodDisruptionBudget per role, two or more coordinators, and an autoscaler that owns serving's count", () => {
  const objects = base();
  const ws = workloads(objects);
  const pdbs = objects.filter((o) => o.kind === "PodDisruptionBudget") as unknown as { metadata: { name: string }; spec: { selector: LabelSelector; maxUnavailable?: number; minAvailable?: number } }[];
  for (const w of ws) {
    const mine = pdbs.filter((p) => selects(p.spec.selector, podLabels(w)));
    assert.equal(mine.length, 1, `${w.metadata.name}: one PDB`);
    // maxUnavailable: a budget never blocks a drain of a single-replica role.
    assert.equal(mine[0]!.spec.maxUnavailable, 1, `${w.metadata.name}: maxUnavailable 1`);
  }
  assert.ok(ws.find((w) => w.metadata.name === "lambda-coordinator")!.spec.replicas! >= 2, "coordinators: one leads, another stands by");
  const hpa = objects.find((o) => o.kind === "HorizontalPodAutoscaler") as unknown as { spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number } };
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: "apps/v1", kind: "Deployment", name: "lambda-serving" });
  assert.ok(hpa.spec.minReplicas >= 2);
  assert.equal(ws.find((w) => w.metadata.name === "lambda-serving")!.spec.replicas, undefined, "serving's replicas are the autoscaler's");
});

test("network policies: every role denied by default, NATS for all, ClickHouse only for archiver/executor/serving, gRPC in only to serving, metrics from monitoring", () => {
  const objects = base();
  const policies = objects.filter((o) => o.kind === "NetworkPolicy") as unknown as NetworkPolicy[];
  const labelsOf = Object.fromEntries(workloads(objects).map((w) => [podLabels(w)["app.kubernetes.io/component"]!, podLabels(w)]));
  const of = (role: string) => policies.filter((p) => selects(p.spec.podSelector, labelsOf[role]!));
  const egressPorts = (role: string) => of(role).flatMap((p) => (p.spec.egress ?? []).flatMap((e) => (e.ports ?? []).map((x) => x.port)));
  const ingressPorts = (role: string) => of(role).flatMap((p) => (p.spec.ingress ?? []).flatMap((e) => (e.ports ?? []).map((x) => x.port)));
  for (const role of ROLES) {
    const deny = of(role).find((p) => p.spec.policyTypes.includes("Ingress") && p.spec.policyTypes.includes("Egress") && !p.spec.ingress && !p.spec.egress);
    assert.ok(deny, `${role}: a default-deny policy selects it`);
    const wantEgress = ["archiver", "executor", "serving"].includes(role) ? [53, 53, 4222, 8123, 8443] : [53, 53, 4222];
    assert.deepEqual(egressPorts(role).sort((a, b) => a - b), wantEgress, `${role}: egress`);
    assert.deepEqual(ingressPorts(role).sort((a, b) => a - b), role === "serving" ? [9464, 50051] : [9464], `${role}: ingress`);
    const metrics = of(role).flatMap((p) => p.spec.ingress ?? []).find((i) => i.ports?.some((x) => x.port === 9464));
    assert.deepEqual(metrics?.from, [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }], `${role}: metrics only from monitoring`);
  }
  // The policies leave NATS and ClickHouse pods alone, even ones labelled as part of the runtime
  // (the ClickHouse operator copies the example installation's labels to its pods).
  for (const component of ["clickhouse", "clickhouse-keeper"]) {
    assert.deepEqual(policies.filter((p) => selects(p.spec.podSelector, { "app.kubernetes.io/name": "lambda-runtime", "app.kubernetes.io/component": component })).map((p) => p.metadata.name), [], component);
  }
  assert.deepEqual(policies.filter((p) => selects(p.spec.podSelector, { "app.kubernetes.io/name": "nats" })).map((p) => p.metadata.name), [], "nats");
});
