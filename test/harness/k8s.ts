/**
 * Kubernetes manifests without a cluster: render a kustomization with `kubectl kustomize`, and
 * validate every object strictly against the Kubernetes API schema, offline.
 *
 * The schema is the model metadata of the official JavaScript client (@kubernetes/client-node,
 * generated from the Kubernetes OpenAPI document of its release): for every API type, the JSON
 * name and type of each field. A field that is not in its type is an error, as the API server's
 * strict field validation (`kubectl apply --validate=strict`) makes it, so a misspelt
 * `periodSecond` fails here instead of being dropped by a lenient apply. Types are checked too
 * (string, integer, boolean, list, map, int-or-string). What it does not know: required fields,
 * enums and formats beyond integers, and custom resources (PodMonitor, cert-manager, the
 * ClickHouse operator's), whose schemas live in their CRDs; those are reported as not validated.
 */
import { execFileSync } from "node:child_process";
import * as k8s from "@kubernetes/client-node";
import yaml from "js-yaml";

/** A rendered object, as parsed from YAML. */
export type KubeObject = Record<string, unknown> & { apiVersion?: unknown; kind?: unknown; metadata?: { name?: string; namespace?: string } };

/** Renders a kustomization directory with kubectl (which must be installed) and parses its objects. */
export function renderKustomization(dir: string): KubeObject[] {
  let text: string;
  try {
    text = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: string; code?: string };
    if (e.code === "ENOENT") throw new Error("kubectl not found: install it (.ci/run does) to render the kustomizations", { cause: err });
    throw new Error(`kubectl kustomize ${dir} failed: ${e.stderr ?? String(err)}`, { cause: err });
  }
  // Parsed as plain YAML: the client's own loadAllYaml maps fields to its classes and drops the
  // unknown ones, which is what this module must see.
  return yaml.loadAll(text).filter((o): o is KubeObject => o !== null && typeof o === "object");
}

/** API groups of custom resources the repository's examples use: known, not validated here. */
export const CUSTOM_RESOURCE_GROUPS = ["monitoring.coreos.com", "cert-manager.io", "clickhouse.altinity.com", "clickhouse-keeper.altinity.com"] as const;

/** Built-in API groups: their objects are validated ("" is the core group). */
const BUILTIN_GROUPS = new Set(["", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io", "storage.k8s.io"]);

/**
 * Fields the OpenAPI document types as resource.Quantity, which the generated client writes as a
 * string: the API accepts a number there too (`cpu: 1`).
 */
const QUANTITY_FIELDS = new Set(["V1ResourceRequirements.limits", "V1ResourceRequirements.requests", "V1VolumeResourceRequirements.limits", "V1VolumeResourceRequirements.requests", "V1EmptyDirVolumeSource.sizeLimit", "V2MetricTarget.averageValue", "V2MetricTarget.value"]);

interface Attribute {
  readonly baseName: string;
  readonly type: string;
  readonly format: string;
}
type ModelClass = { getAttributeTypeMap(): Attribute[] };

function modelClass(name: string): ModelClass | undefined {
  const c = (k8s as unknown as Record<string, unknown>)[name];
  return typeof c === "function" && typeof (c as unknown as Partial<ModelClass>).getAttributeTypeMap === "function" ? (c as unknown as ModelClass) : undefined;
}

/** One schema violation: where (a JSON pointer into the object) and what. */
export interface SchemaError {
  readonly path: string;
  readonly message: string;
}

/** The outcome of validating one object. */
export type ValidationResult = { kind: "valid" } | { kind: "invalid"; errors: SchemaError[] } | { kind: "custom_resource"; group: string };

/** Describes an object for messages: `Deployment lambda/lambda-serving`. */
export const describe = (o: KubeObject) => `${String(o.kind)} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata?.name ?? "(no name)"}`;

/** Validates one object against the schema of its apiVersion and kind. */
export function validateObject(obj: KubeObject): ValidationResult {
  const { apiVersion, kind } = obj;
  if (typeof apiVersion !== "string" || typeof kind !== "string") return { kind: "invalid", errors: [{ path: "", message: "apiVersion and kind must be strings" }] };
  const [group, version] = apiVersion.includes("/") ? (apiVersion.split("/", 2) as [string, string]) : ["", apiVersion];
  if ((CUSTOM_RESOURCE_GROUPS as readonly string[]).includes(group)) return { kind: "custom_resource", group };
  if (!BUILTIN_GROUPS.has(group)) return { kind: "invalid", errors: [{ path: "/apiVersion", message: `unknown API group in ${apiVersion}` }] };
  const typeName = `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
  if (!modelClass(typeName)) return { kind: "invalid", errors: [{ path: "/kind", message: `no type ${kind} in ${apiVersion} (looked for ${typeName})` }] };
  const errors: SchemaError[] = [];
  checkValue(obj, typeName, "", errors);
  return errors.length ? { kind: "invalid", errors } : { kind: "valid" };
}

const ARRAY = /^Array<(.+)>$/;
const MAP = /^\{ \[key: string\]: (.+); \}$/;

function checkValue(value: unknown, type: string, path: string, errors: SchemaError[], format = "", field = ""): void {
  const fail = (message: string): void => {
    errors.push({ path, message });
  };
  if (value === null) return; // an explicit null is "unset" to the API server
  const array = ARRAY.exec(type);
  if (array) {
    if (!Array.isArray(value)) return fail(`expected a list of ${array[1]}, got ${typeof value}`);
    value.forEach((v, i) => checkValue(v, array[1]!, `${path}/${i}`, errors));
    return;
  }
  const map = MAP.exec(type);
  if (map) {
    if (typeof value !== "object" || Array.isArray(value)) return fail(`expected a map of ${map[1]}, got ${Array.isArray(value) ? "a list" : typeof value}`);
    for (const [k, v] of Object.entries(value)) {
      if (QUANTITY_FIELDS.has(field) && typeof v === "number") continue;
      checkValue(v, map[1]!, `${path}/${k}`, errors);
    }
    return;
  }
  switch (type) {
    case "any":
    case "object":
      return;
    case "string":
    case "Date":
      if (typeof value === "string") return;
      if (QUANTITY_FIELDS.has(field) && typeof value === "number") return;
      return fail(`expected a string, got ${typeof value} ${JSON.stringify(value)}`);
    case "number":
      if (typeof value !== "number") return fail(`expected a number, got ${typeof value} ${JSON.stringify(value)}`);
      if ((format === "int32" || format === "int64") && !Number.isInteger(value)) fail(`expected an integer, got ${value}`);
      return;
    case "boolean":
      if (typeof value !== "boolean") fail(`expected true or false, got ${typeof value} ${JSON.stringify(value)}`);
      return;
    case "IntOrString":
      if (typeof value === "string" || Number.isInteger(value)) return;
      return fail(`expected an integer or a string, got ${JSON.stringify(value)}`);
  }
  const model = modelClass(type);
  if (!model) return fail(`no schema for type ${type}`);
  if (typeof value !== "object" || Array.isArray(value)) return fail(`expected an object (${type}), got ${Array.isArray(value) ? "a list" : typeof value}`);
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a]));
  for (const [key, v] of Object.entries(value)) {
    const a = attributes.get(key);
    if (!a) {
      errors.push({ path: `${path}/${key}`, message: `unknown field "${key}" in ${type} (known: ${[...attributes.keys()].join(", ")})` });
      continue;
    }
    checkValue(v, a.type, `${path}/${key}`, errors, a.format, `${type}.${key}`);
  }
}
