# syntax=docker/dockerfile:1
#
# The lambda-node image: one image for every role (LAMBDA_ROLES picks them at
# run time). Build from the repository root:
#
#   docker build -t lambda-runtime:0.1.0 .
#
# See docs/deploy.md. The image also holds lambdactl
# (node dist/src/cli/lambdactl.js).

ARG NODE_IMAGE=node:20-bookworm-slim

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

# --- deps: production dependencies only.
FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
# chdb's native library (@chdb/lib-linux-*-gnu, ~550 MB) is an optional dependency. The
# roles load it only when no LAMBDA_CLICKHOUSE_URL is set (src/ch/client.ts imports
# chdb/connection lazily), so a server-only image could be built with --omit=optional.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime.
FROM ${NODE_IMAGE}
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
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# catalog/: the default LAMBDA_CATALOG (catalog/catalog.json, relative to /app);
# Kubernetes mounts the lambda-catalog ConfigMap over it. proto/ is not needed at run
# time: reflection serves the descriptors compiled into dist/src/gen/descriptors.js.
COPY catalog ./catalog
# The node user of the base image, by number so runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 50051
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--enable-source-maps", "dist/src/main/node.js"]
