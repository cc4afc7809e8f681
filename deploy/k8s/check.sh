#!/usr/bin/env sh
# Checks the manifests against the code, without a cluster:
#  1. deploy/k8s/catalog.yaml matches catalog/catalog.json;
#  2. every LAMBDA_* variable the manifests set is in ENV_SCHEMA of
#     src/core/config.ts (a pod with an unknown one stops at start);
#  3. kustomize builds both kustomizations (when kubectl is installed).
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

if command -v kubectl >/dev/null 2>&1; then
  for k in deploy/k8s deploy/k8s/dev; do
    if kubectl kustomize "$k" >/dev/null; then echo "builds   $k"; else status=1; fi
  done
fi
exit $status
