#!/usr/bin/env sh
# Checks the manifests against the code, without a cluster:
#  1. deploy/k8s/catalog.yaml matches catalog/catalog.json;
#  2. every LAMBDA_* variable the manifests set is in ENV_SCHEMA of
#     src/core/config.ts (a pod with an unknown one stops at start);
#  3. no manifest holds a Secret (an apply would overwrite the real one);
#  4. deploy/nats/values-lambda.yaml is what the code generates (after npm run build);
#  5. kustomize builds every kustomization, and every Secret a workload mounts is
#     made by deploy/k8s/secrets, by the cert-manager example, or is the dev
#     overlay's own (when kubectl is installed).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
status=0

deploy/k8s/sync-catalog.sh --check || status=1

known=$(grep -oE '^  LAMBDA_[A-Z0-9_]+:' src/core/config.ts | tr -d ' :' | sort -u)
[ -n "$known" ] || { echo "no LAMBDA_* keys found in src/core/config.ts" >&2; exit 1; }
# Env names (- name: X), ConfigMap/Secret keys (X: ...) and secretKeyRef keys
# (key: X) in the manifests, comments left out.
used=$(grep -rhvE '^[[:space:]]*#' deploy/k8s --include='*.yaml' |
  grep -oE '(- name: |key: |^[[:space:]]+)LAMBDA_[A-Z0-9_]+' |
  grep -oE 'LAMBDA_[A-Z0-9_]+' | sort -u)
for v in $used; do
  if printf '%s\n' "$known" | grep -qx "$v"; then
    echo "ok       $v"
  else
    echo "UNKNOWN  $v (not in ENV_SCHEMA of src/core/config.ts)" >&2
    status=1
  fi
done

if grep -rlE '^kind: Secret$' deploy/k8s --include='*.yaml' >&2; then
  echo "the files above hold a Secret: create Secrets outside the manifests (docs/deploy.md)" >&2
  status=1
fi

if [ -f dist/src/nats/permissions.js ]; then
  node deploy/nats/values.mjs --check || status=1
else
  echo "skipped  deploy/nats/values-lambda.yaml check (no dist/: npm run build)"
fi

if command -v kubectl >/dev/null 2>&1; then
  for k in deploy/k8s deploy/k8s/dev deploy/k8s/examples/cert-manager deploy/k8s/examples/clickhouse deploy/k8s/examples/prometheus-operator; do
    if kubectl kustomize "$k" >/dev/null; then echo "builds   $k"; else status=1; fi
  done
  # The secretGenerator reads files nobody commits: build a copy with stand-ins.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp deploy/k8s/secrets/kustomization.yaml "$tmp/"
  for f in $(grep -oE '=files/[^],]+' deploy/k8s/secrets/kustomization.yaml | cut -c2-); do
    mkdir -p "$tmp/$(dirname "$f")" && echo stand-in >"$tmp/$f"
  done
  if made=$(kubectl kustomize "$tmp"); then echo "builds   deploy/k8s/secrets"; else status=1; made=; fi
  # That build holds Secrets only: each metadata name is one.
  provided=$( { printf '%s\n' "$made" | grep -oE '^  name: .+' | cut -c9-
    kubectl kustomize deploy/k8s/examples/cert-manager | grep -oE '^  secretName: .+' | cut -c15-
    echo lambda-dev-nats-auth; } | sort -u)
  mounted=$( { kubectl kustomize deploy/k8s; kubectl kustomize deploy/k8s/dev; } |
    grep -oE 'secretName: [a-z0-9-]+' | cut -c13- | sort -u)
  for sec in $mounted; do
    if printf '%s\n' "$provided" | grep -qx "$sec"; then
      echo "made     Secret $sec"
    else
      echo "MISSING  Secret $sec: mounted, but neither deploy/k8s/secrets nor the cert-manager example makes it" >&2
      status=1
    fi
  done
fi
exit $status
