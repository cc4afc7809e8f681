/**
 * Least privilege on NATS: the subjects each role may publish and subscribe to, derived from the
 * same names (nats/names.ts) the roles use, and a nats-server `authorization` block that gives
 * each user exactly the union of its roles' permissions. docs/security.md has the table.
 *
 * What a role does on the wire, by JetStream API subject:
 * - reading a KV bucket: STREAM.INFO of its stream, STREAM.MSG.GET of a key (the leader answers);
 * - watching one: an ordered consumer (CONSUMER.CREATE/INFO/DELETE/MSG.NEXT, flow control);
 * - writing one: a publish on `$KV.<bucket>.<key>`;
 * - consuming the event stream: a consumer on it, and acknowledgements;
 * - every client: `$JS.API.INFO`, and replies on its own inbox prefix (`_INBOX.<user>.>`), so no
 *   user can read another's replies.
 * Only the coordinator creates streams and buckets; every other role binds to what exists.
 */
import type { Names } from "./names.js";
import { CATALOG_KEY } from "./names.js";

/** Who connects: the runtime's roles, the ingest library, and lambdactl read-only or as admin. */
export const NatsPrincipals = {
  coordinator: "coordinator",
  archiver: "archiver",
  executor: "executor",
  serving: "serving",
  speed: "speed",
  ingest: "ingest",
  lambdactl: "lambdactl",
  lambdactlAdmin: "lambdactl-admin",
} as const;
export type NatsPrincipal = (typeof NatsPrincipals)[keyof typeof NatsPrincipals];

export interface NatsPermissions {
  /** Subjects it may publish to. */
  readonly publish: readonly string[];
  /** Subjects it may subscribe to. */
  readonly subscribe: readonly string[];
}

/** The inbox prefix of a user: its replies arrive below it, and only it may subscribe there. */
export function inboxPrefixFor(user: string): string {
  // A token of its own below _INBOX: a permission wildcard matches whole tokens only.
  return `_INBOX.${user.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

const kvStream = (bucket: string) => `KV_${bucket}`;

/**
 * Reading keys of a bucket. Only through the leader's STREAM.MSG.GET (nats/setup.ts openBuckets),
 * not a direct get, which any replica answers; STREAM.MSG.GET cannot be limited to some keys.
 */
function kvRead(bucket: string): string[] {
  const s = kvStream(bucket);
  return [`$JS.API.STREAM.INFO.${s}`, `$JS.API.STREAM.MSG.GET.${s}`];
}

/** Watching a bucket (ordered consumers on its stream); reading it too. */
function kvWatch(bucket: string): string[] {
  const s = kvStream(bucket);
  return [...kvRead(bucket), ...consume(s)];
}

/** Writing (and deleting) keys of a bucket. */
const kvWrite = (bucket: string, keys: readonly string[] = [">"]) => keys.map((k) => `$KV.${bucket}.${k}`);

/** Consumers on a stream: create, look at, delete, pull, acknowledge, answer flow control. */
function consume(stream: string): string[] {
  return [
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
    `$JS.ACK.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

/** Looking at a stream and reading single messages of it. */
const streamRead = (stream: string) => [`$JS.API.STREAM.INFO.${stream}`, `$JS.API.STREAM.MSG.GET.${stream}`];

/** Every stream and bucket of the cluster. */
function allStreams(n: Names): string[] {
  return [n.eventStream, n.deadLetterStream, ...allBuckets(n).map(kvStream)];
}
function allBuckets(n: Names): string[] {
  return [n.watermarkBucket, n.membersBucket, n.assignmentsBucket, n.archiverBucket, n.coordinatorBucket, n.snapshotBucket, n.catalogBucket];
}

/** What every role does at start: binds to the streams and buckets, reads the shared settings and follows the catalog. */
function roleBase(n: Names): string[] {
  return [
    "$JS.API.INFO",
    ...allStreams(n).map((s) => `$JS.API.STREAM.INFO.${s}`),
    ...kvRead(n.coordinatorBucket),
    ...kvWatch(n.catalogBucket),
  ];
}

/** Heartbeats under `<role>.*` of the members bucket. */
const heartbeat = (n: Names, role: string) => kvWrite(n.membersBucket, [`${role}.*`]);

/** The allow-lists of one principal, before its inbox. */
function permissionsOf(n: Names, who: NatsPrincipal): { publish: string[]; subscribe: string[] } {
  const events = `${n.prefix}.events.*`;
  switch (who) {
    case "coordinator":
      return {
        publish: [
          ...roleBase(n),
          // It creates what is missing, and is the only writer of barriers, assignments, the
          // watermark and its history, the run counter and leadership.
          ...allStreams(n).flatMap((s) => [`$JS.API.STREAM.CREATE.${s}`, `$JS.API.STREAM.UPDATE.${s}`]),
          events,
          ...kvWatch(n.watermarkBucket),
          ...kvWrite(n.watermarkBucket),
          ...kvWatch(n.assignmentsBucket),
          ...kvWrite(n.assignmentsBucket),
          ...kvWatch(n.coordinatorBucket),
          ...kvWrite(n.coordinatorBucket),
          ...kvWatch(n.membersBucket),
          ...kvWrite(n.membersBucket), // its heartbeat, and removing members that are gone
          ...kvWatch(n.archiverBucket),
          ...kvWrite(n.catalogBucket, [CATALOG_KEY]), // seeding the catalog from its file
          ...streamRead(n.eventStream),
          // Stream retention: purging partition subjects below a point, counting what the next run frees.
          `$JS.API.STREAM.PURGE.${n.eventStream}`,
          `$JS.API.CONSUMER.CREATE.${n.eventStream}`,
          `$JS.API.CONSUMER.CREATE.${n.eventStream}.>`,
          `$JS.API.CONSUMER.DELETE.${n.eventStream}.>`,
          n.executorSubject,
          "_INBOX.>", // progress of run/rollback requests, to the asker's inbox
        ],
        subscribe: [n.runNowSubject, n.rollbackSubject],
      };
    case "archiver":
      return {
        publish: [
          ...roleBase(n),
          ...consume(n.eventStream),
          ...streamRead(n.eventStream),
          ...kvWatch(n.archiverBucket), // the lease key, and its progress keys
          ...kvWrite(n.archiverBucket),
          ...kvWatch(n.membersBucket), // archiver heartbeats: the server clock a standby times the lease on
          ...kvRead(n.watermarkBucket),
          n.deadLetterSubject,
          ...heartbeat(n, "archiver"),
        ],
        subscribe: [],
      };
    case "executor":
      return {
        publish: [...roleBase(n), ...kvRead(n.coordinatorBucket), ...kvRead(n.watermarkBucket), ...heartbeat(n, "executor"), "_INBOX.>"],
        subscribe: [n.executorSubject],
      };
    case "speed":
      return {
        publish: [
          ...roleBase(n),
          ...consume(n.eventStream),
          ...streamRead(n.eventStream),
          ...kvWatch(n.assignmentsBucket),
          ...kvWatch(n.watermarkBucket),
          ...kvRead(n.snapshotBucket),
          ...kvWrite(n.snapshotBucket),
          ...heartbeat(n, "speed"),
          "_INBOX.>", // answers to queries and status requests
        ],
        subscribe: [`${n.prefix}.speed.*.query`, `${n.prefix}.speed.*.status`],
      };
    case "serving":
      return {
        publish: [
          ...roleBase(n),
          ...kvWatch(n.watermarkBucket),
          ...kvWatch(n.assignmentsBucket),
          ...kvWatch(n.membersBucket),
          ...kvRead(n.coordinatorBucket),
          ...kvRead(n.archiverBucket),
          ...consume(n.eventStream), // watermark verify counts records after a cut
          ...streamRead(n.eventStream),
          ...heartbeat(n, "serving"),
          `${n.prefix}.speed.*.query`,
          `${n.prefix}.speed.*.status`,
          // The admin API asks the coordinator; who may call it is the gRPC layer's decision.
          n.runNowSubject,
          n.rollbackSubject,
        ],
        subscribe: [],
      };
    case "ingest":
      return {
        publish: ["$JS.API.INFO", `$JS.API.STREAM.INFO.${n.eventStream}`, ...kvRead(n.catalogBucket), ...kvRead(n.coordinatorBucket), events, n.deadLetterSubject],
        subscribe: [],
      };
    case "lambdactl":
      return {
        publish: ["$JS.API.INFO", ...allStreams(n).flatMap(streamRead), ...allBuckets(n).flatMap((b) => kvRead(b))],
        subscribe: [],
      };
    case "lambdactl-admin":
      return {
        publish: [...permissionsOf(n, "lambdactl").publish, ...permissionsOf(n, "ingest").publish, ...kvWrite(n.catalogBucket, [CATALOG_KEY])],
        subscribe: [],
      };
  }
}

/**
 * The permissions of a user that runs `principals` (one process may run several roles), with
 * `user` naming its inbox prefix.
 */
export function natsPermissions(names: Names, principals: readonly NatsPrincipal[], user: string): NatsPermissions {
  const publish = new Set<string>();
  const subscribe = new Set<string>([`${inboxPrefixFor(user)}.>`]);
  for (const p of principals) {
    const perms = permissionsOf(names, p);
    for (const s of perms.publish) publish.add(s);
    for (const s of perms.subscribe) subscribe.add(s);
  }
  return { publish: [...publish].sort(), subscribe: [...subscribe].sort() };
}

/** A user of the generated server config: who it is, how it proves it, what it runs. */
export interface NatsUserSpec {
  /** The name its inbox prefix is made from (and its user name with a password). */
  readonly name: string;
  readonly principals: readonly NatsPrincipal[];
  /** A public user nkey (U...), or a password (plain text or a bcrypt hash from `nats server passwd`). */
  readonly auth: { readonly nkey: string } | { readonly password: string };
}

const quote = (s: string) => JSON.stringify(s);

/** One user of the server's authorization, as nats-server's config (and the NATS Helm chart's values) spell it. */
export interface NatsServerUser {
  readonly nkey?: string;
  readonly user?: string;
  readonly password?: string;
  readonly permissions: { readonly publish: { readonly allow: readonly string[] }; readonly subscribe: { readonly allow: readonly string[] } };
}

/** The users of `natsAuthorizationConfig`, as data. */
export function natsServerUsers(names: Names, users: readonly NatsUserSpec[]): NatsServerUser[] {
  return users.map((u) => {
    const perms = natsPermissions(names, u.principals, u.name);
    return { ...("nkey" in u.auth ? { nkey: u.auth.nkey } : { user: u.name, password: u.auth.password }), permissions: { publish: { allow: perms.publish }, subscribe: { allow: perms.subscribe } } };
  });
}

/**
 * A nats-server `authorization { users = [...] }` block: every user with its allow-lists. A
 * client not listed (an anonymous one included) cannot connect.
 */
export function natsAuthorizationConfig(names: Names, users: readonly NatsUserSpec[]): string {
  const lines = ["authorization {", "  users = ["];
  natsServerUsers(names, users).forEach((s, i) => {
    const u = users[i]!;
    const who = s.nkey !== undefined ? `nkey: ${quote(s.nkey)}` : `user: ${quote(s.user!)}, password: ${quote(s.password!)}`;
    lines.push(`    # ${u.name}: ${u.principals.join(", ")}`);
    lines.push(`    { ${who}`);
    lines.push(`      permissions: {`);
    lines.push(`        publish: { allow: [${s.permissions.publish.allow.map(quote).join(", ")}] }`);
    lines.push(`        subscribe: { allow: [${s.permissions.subscribe.allow.map(quote).join(", ")}] }`);
    lines.push(`      }`);
    lines.push(`    }`);
  });
  lines.push("  ]", "}");
  return `${lines.join("\n")}\n`;
}

/** The same users as values of the official NATS Helm chart (`config.merge.authorization`), in YAML. */
export function natsHelmValues(names: Names, users: readonly NatsUserSpec[]): string {
  const lines = ["config:", "  merge:", "    authorization:", "      users:"];
  natsServerUsers(names, users).forEach((s, i) => {
    const u = users[i]!;
    lines.push(`        # ${u.name}: ${u.principals.join(", ")} (LAMBDA_NATS_INBOX_PREFIX=${inboxPrefixFor(u.name)})`);
    lines.push(s.nkey !== undefined ? `        - nkey: ${quote(s.nkey)}` : `        - user: ${quote(s.user!)}\n          password: ${quote(s.password!)}`);
    lines.push("          permissions:");
    for (const dir of ["publish", "subscribe"] as const) {
      lines.push(`            ${dir}:`, "              allow:");
      for (const subject of s.permissions[dir].allow) lines.push(`                - ${quote(subject)}`);
    }
  });
  return `${lines.join("\n")}\n`;
}
