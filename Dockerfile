# syntax=docker/dockerfile:1
#
# The lambda-node image: one image for every role (LAMBDA_ROLES picks them at
# run time). Build from the repository root:
#
#   docker build -t lambda-runtime:0.1.0 .                         (server: a ClickHouse server URL)
#   docker build --target embedded -t lambda-runtime:0.1.0-embedded .  (keeps embedded chDB)
#
# The default target, `server`, leaves out chDB's engine (@chdb/lib-*, ~550 MB, an optional
# dependency of chdb): a role loads it only when LAMBDA_CLICKHOUSE_URL is empty
# (src/ch/client.ts imports chdb/connection lazily), which the Kubernetes manifests never do.
# Without it such a pod fails at start ("chdb: no native binding for linux-x64 ...")
# instead of running a private embedded database. test/unit/dockerfile.test.ts checks this
# file against the tree and package-lock.json.
#
# See docs/deploy.md. The image also holds lambdactl
# (node dist/src/cli/lambdactl.js).

# Node 22, an LTS line (the project's code also runs and is tested on Node 20).
ARG NODE_IMAGE=node:22-bookworm-slim

# --- build: all dependencies (buf and ts-proto are devDependencies), buf generate + tsc.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json buf.yaml buf.gen.yaml ./
COPY proto ./proto
COPY scripts/gen-descriptors.mjs ./scripts/
COPY src ./src
# `npm run build` = buf generate + the reflection descriptors (src/gen) + clean + tsc -> dist/.
# test/ is not in the build context, so only dist/src is produced.
RUN npm run build

# --- production dependencies without the optional ones: no chDB engine. Also leaves out
# msgpackr-extract (msgpackr's native speed-up; msgpackr falls back to its JavaScript codec).
FROM ${NODE_IMAGE} AS deps-server
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force

# --- production dependencies with chDB's engine, for embedded mode (no LAMBDA_CLICKHOUSE_URL).
FROM ${NODE_IMAGE} AS deps-embedded
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- what both images share.
FROM ${NODE_IMAGE} AS runtime
# tini as PID 1: forwards SIGTERM to node and reaps. Node only handles SIGTERM once
# start-up has installed its handler; as PID 1 it would ignore an earlier one.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
# Everything stays owned by root and read-only to the runtime user.
# package.json carries "type": "module", which dist/ needs.
COPY package.json ./
COPY --from=build /src/dist/src ./dist/src
# catalog/: the default LAMBDA_CATALOG (catalog/catalog.json, relative to /app);
# Kubernetes mounts the lambda-catalog ConfigMap over it. proto/ is not needed at run
# time: reflection serves the descriptors compiled into dist/src/gen/descriptors.js.
COPY catalog ./catalog
# The node user of the base image, by number so runAsNonRoot can verify it.
USER 1000:1000
# gRPC (serving) and the metrics and health listener (every role).
EXPOSE 50051 9464
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--enable-source-maps", "dist/src/main/node.js"]

# --- embedded: one process that owns a chDB directory (LAMBDA_ROLES=archiver,executor,serving).
FROM runtime AS embedded
COPY --from=deps-embedded /src/node_modules ./node_modules

# --- server (the default target, last): every role against a ClickHouse server.
FROM runtime AS server
COPY --from=deps-server /src/node_modules ./node_modules
