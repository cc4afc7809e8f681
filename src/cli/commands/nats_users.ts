/**
 * `lambdactl nats-users --out DIR`: the NATS users a cluster needs, one per role, each with the
 * least-privilege permissions of nats/permissions.ts. Makes a new nkey per user, writes its seed
 * to DIR (mode 0600; the role reads it through LAMBDA_NATS_NKEY_SEED_FILE), and writes the
 * server side twice: a nats-server `authorization` block and values for the official NATS Helm
 * chart. Only public keys are in those two. Connects to nothing.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { DEFAULT_PREFIX } from "../../core/config.js";
import { namesFor } from "../../nats/names.js";
import { inboxPrefixFor, natsAuthorizationConfig, natsHelmValues, type NatsPrincipal, type NatsUserSpec } from "../../nats/permissions.js";
import { booleanFlag, COMMON_FLAGS, stringFlag, UsageError } from "../args.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ParsedCommand } from "../command.js";
import { table } from "../render.js";

const spec: CommandSpec = {
  name: "nats-users",
  summary: "make one least-privilege NATS user (an nkey) per role: seed files, and the server config or Helm values",
  args: [],
  flags: {
    out: { type: "string", value: "<dir>", description: "directory for the seeds and the server side (created; existing files are never overwritten)" },
    prefix: { type: "string", value: "<name>", description: `subject/stream prefix of the cluster (default "${DEFAULT_PREFIX}")` },
    format: { type: "string", value: "table|conf|helm", description: "what to print: the users (default), the server's authorization block, or the Helm values (both are written to <dir> either way)" },
    ...COMMON_FLAGS,
  },
  notes: [
    "writes, in <dir>: <user>.nk (a seed, mode 0600) per user, nats-server.conf (an authorization block",
    "to include in the servers' config) and helm-values.yaml (config.merge of the NATS Helm chart).",
    "Each process sets LAMBDA_NATS_NKEY_SEED_FILE to its user's seed and LAMBDA_NATS_INBOX_PREFIX to",
    "_INBOX.<user>; docs/security.md has the permissions table. To rotate, make a new directory,",
    "roll the servers' config, then the roles.",
    "",
    "examples:",
    "  lambdactl nats-users --out ./nats-users",
    "  lambdactl nats-users --out ./nats-users --format helm > nats-users.yaml",
  ].join("\n"),
};

/** The stable JSON shape of `nats-users --json`. */
export interface NatsUsersJson {
  readonly users: readonly { readonly name: string; readonly roles: readonly NatsPrincipal[]; readonly nkey: string; readonly seedFile: string; readonly inboxPrefix: string }[];
  readonly serverConfig: string;
  readonly helmValues: string;
}

/**
 * One user per role, named after it; lambdactl's two as the local cluster names them (its
 * admin user is the one an operator uses, the read-only one is for looking).
 */
const NATS_USERS: readonly { readonly name: string; readonly principals: readonly NatsPrincipal[] }[] = [
  ...(["coordinator", "archiver", "executor", "serving", "speed", "ingest"] as const).map((p) => ({ name: p, principals: [p] })),
  { name: "lambdactl", principals: ["lambdactl-admin"] },
  { name: "lambdactl-readonly", principals: ["lambdactl"] },
];

async function run(parsed: ParsedCommand, ctx: CliContext) {
  const out = stringFlag(parsed, "out");
  if (out === undefined) throw new UsageError(spec.name, "--out <dir> is required: the seeds are written there");
  const prefix = stringFlag(parsed, "prefix") ?? DEFAULT_PREFIX;
  const asked = stringFlag(parsed, "format");
  if (asked !== undefined && !["table", "conf", "helm"].includes(asked)) throw new UsageError(spec.name, `--format ${JSON.stringify(asked)}: one of table, conf, helm`);
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) throw new UsageError(spec.name, `--prefix ${JSON.stringify(prefix)}: letters, digits, '_' or '-'`);
  const dir = resolve(ctx.cwd, out);
  const files = [...NATS_USERS.map((u) => `${u.name}.nk`), "nats-server.conf", "helm-values.yaml"].map((f) => join(dir, f));
  const existing = files.filter((f) => existsSync(f));
  if (existing.length > 0) throw new UsageError(spec.name, `${existing[0]} exists; give a new directory (old seeds are kept for a rotation)`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const users: (NatsUserSpec & { seedFile: string; nkey: string })[] = NATS_USERS.map((u) => {
    const kp = createUser();
    const seedFile = join(dir, `${u.name}.nk`);
    writeFileSync(seedFile, kp.getSeed(), { mode: 0o600, flag: "wx" });
    return { ...u, auth: { nkey: kp.getPublicKey() }, seedFile, nkey: kp.getPublicKey() };
  });
  const names = namesFor(prefix);
  const serverConfig = natsAuthorizationConfig(names, users);
  const helmValues = natsHelmValues(names, users);
  writeFileSync(join(dir, "nats-server.conf"), serverConfig, { flag: "wx" });
  writeFileSync(join(dir, "helm-values.yaml"), helmValues, { flag: "wx" });

  const format = stringFlag(parsed, "format") ?? "table";
  if (format === "conf" || format === "helm") {
    ctx.stdout.write(format === "conf" ? serverConfig : helmValues);
    return ExitCodes.ok;
  }
  if (booleanFlag(parsed, "json")) {
    const json: NatsUsersJson = {
      users: users.map((u) => ({ name: u.name, roles: u.principals, nkey: u.nkey, seedFile: u.seedFile, inboxPrefix: inboxPrefixFor(u.name) })),
      serverConfig: join(dir, "nats-server.conf"),
      helmValues: join(dir, "helm-values.yaml"),
    };
    ctx.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return ExitCodes.ok;
  }
  ctx.stdout.write(table(["user", "seed file", "LAMBDA_NATS_INBOX_PREFIX", "public nkey"], users.map((u) => [u.name, u.seedFile, inboxPrefixFor(u.name), u.nkey])));
  ctx.stdout.write(`\nserver side: ${join(dir, "nats-server.conf")} (include it in nats-server's config), ${join(dir, "helm-values.yaml")} (NATS Helm chart values)\n`);
  return ExitCodes.ok;
}

export const natsUsersCommand: Command = { spec, run };
