#!/usr/bin/env sh
# Writes deploy/k8s/catalog.yaml (the lambda-catalog ConfigMap) from
# catalog/catalog.json, so the cluster runs the repository's catalog.
#   deploy/k8s/sync-catalog.sh           rewrite catalog.yaml
#   deploy/k8s/sync-catalog.sh --check   fail if catalog.yaml is stale
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
src="$root/catalog/catalog.json"
out="$root/deploy/k8s/catalog.yaml"

render() {
  cat <<'HEAD'
# GENERATED from catalog/catalog.json by deploy/k8s/sync-catalog.sh; do not edit.
# Every role reads it once at start (LAMBDA_CATALOG=/app/catalog/catalog.json):
# after a change, restart all four workloads.
apiVersion: v1
kind: ConfigMap
metadata:
  name: lambda-catalog
  labels:
    app.kubernetes.io/name: lambda-runtime
    app.kubernetes.io/component: catalog
data:
  catalog.json: |
HEAD
  # Indent every line into the block scalar; blank lines stay blank.
  sed -e 's/^\(.\)/    \1/' "$src"
}

case "${1:-}" in
  --check)
    if render | cmp -s - "$out"; then
      echo "deploy/k8s/catalog.yaml matches catalog/catalog.json"
    else
      echo "deploy/k8s/catalog.yaml is stale: run deploy/k8s/sync-catalog.sh" >&2
      exit 1
    fi
    ;;
  "")
    render >"$out.tmp" && mv "$out.tmp" "$out"
    echo "wrote deploy/k8s/catalog.yaml"
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac
