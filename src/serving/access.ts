/**
 * Who may call what on the serving node (docs/security.md "gRPC"). Pure: the decision takes
 * the policy, the method and what the caller presented, and says allowed, UNAUTHENTICATED or
 * PERMISSION_DENIED; the interceptor (access_interceptor.ts) applies it to every call.
 *
 * Two grants, ordered: `query` (lambda.v1.LambdaService and server reflection) and `admin`
 * (lambda.v1.AdminService, and everything `query` may). grpc.health.v1.Health is open to all,
 * so probes need no secret. A caller's grant is the higher of:
 *   - its bearer token (`authorization: Bearer <token>`): the query token grants query, the
 *     admin token admin; a token that is neither is refused outright (UNAUTHENTICATED), even
 *     when a certificate would have done;
 *   - with a client CA (mutual TLS), its verified certificate's Organizational Units: OU
 *     `lambda-admin` grants admin, OU `lambda-query` grants query (kubectl reads the group of a
 *     client certificate from its subject the same way). A certificate with neither OU only
 *     passes the TLS handshake; the calls still need a token.
 * Access control is on as soon as a token file or a client CA is configured; with none of the
 * three every call is allowed, as before (a local, loopback-only node; server.ts warns when such
 * a node listens beyond loopback).
 *
 * Tokens are compared in constant time (SHA-256 digests through timingSafeEqual, so neither the
 * content nor the length leaks through timing), and never appear in a message or log line.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { ConfigError } from "../core/errors.js";

/** What a method requires, weakest first. */
export const AccessNeeds = { open: "open", query: "query", admin: "admin" } as const;
export type AccessNeed = (typeof AccessNeeds)[keyof typeof AccessNeeds];
/** What a caller may be granted. */
export type AccessGrant = Exclude<AccessNeed, "open">;

/** The OU of a client certificate that grants each level. */
export const CERT_UNITS: Readonly<Record<AccessGrant, string>> = { query: "lambda-query", admin: "lambda-admin" };

/** The resolved policy of one serving node. */
export interface AccessPolicy {
  /** SHA-256 of the query token, or null when none is configured. */
  readonly queryToken: Buffer | null;
  /** SHA-256 of the admin token, or null when none is configured. */
  readonly adminToken: Buffer | null;
  /** A client CA verifies client certificates, so their OU may grant access. */
  readonly certificateGrants: boolean;
}

/** What a caller presented on one call. */
export interface Presented {
  /** The `authorization` metadata value, if any. */
  readonly authorization: string | undefined;
  /** Organizational Units of the client certificate the TLS handshake verified; empty without one. */
  readonly certUnits: readonly string[];
}

export type AccessDecision =
  | { readonly kind: "allowed" }
  | { readonly kind: "unauthenticated"; readonly reason: string }
  | { readonly kind: "permission_denied"; readonly reason: string };

/** Whether the policy checks anything at all. */
export function accessEnforced(p: AccessPolicy): boolean {
  return p.queryToken !== null || p.adminToken !== null || p.certificateGrants;
}

/** What the method at `path` (`/package.Service/Method`) requires; anything not named here needs query. */
export function methodNeed(path: string): AccessNeed {
  if (path.startsWith("/grpc.health.v1.Health/")) return "open";
  if (path.startsWith("/lambda.v1.AdminService/")) return "admin";
  return "query";
}

const digest = (token: string): Buffer => createHash("sha256").update(token, "utf8").digest();

/** Compares a digest with a configured one in constant time; false when none is configured. */
function sameDigest(presented: Buffer, configured: Buffer | null): boolean {
  return configured !== null && timingSafeEqual(presented, configured);
}

const BEARER = /^Bearer +(\S+) *$/i;

/** What the bearer token grants: undefined without a header, "malformed" for a header that is not `Bearer <token>`, "invalid" for a token that is neither. */
function tokenGrant(p: AccessPolicy, authorization: string | undefined): AccessGrant | "malformed" | "invalid" | undefined {
  if (authorization === undefined) return undefined;
  const m = BEARER.exec(authorization);
  if (!m) return "malformed";
  const d = digest(m[1]!);
  // Both comparisons always run: which token matched does not show in the time taken.
  const admin = sameDigest(d, p.adminToken);
  const query = sameDigest(d, p.queryToken);
  return admin ? "admin" : query ? "query" : "invalid";
}

function certGrant(p: AccessPolicy, units: readonly string[]): AccessGrant | undefined {
  if (!p.certificateGrants) return undefined;
  if (units.includes(CERT_UNITS.admin)) return "admin";
  if (units.includes(CERT_UNITS.query)) return "query";
  return undefined;
}

const rank = (g: AccessGrant | undefined): number => (g === "admin" ? 2 : g === "query" ? 1 : 0);

/** Decides one call. */
export function decideAccess(p: AccessPolicy, need: AccessNeed, presented: Presented): AccessDecision {
  if (need === "open" || !accessEnforced(p)) return { kind: "allowed" };
  const byToken = tokenGrant(p, presented.authorization);
  if (byToken === "malformed") return { kind: "unauthenticated", reason: "the authorization metadata must be 'Bearer <token>'" };
  if (byToken === "invalid") return { kind: "unauthenticated", reason: "the bearer token is not valid for this serving node" };
  const byCert = certGrant(p, presented.certUnits);
  const grant = rank(byToken) >= rank(byCert) ? byToken : byCert;
  if (grant === undefined) {
    const cert = p.certificateGrants ? ` or a client certificate with OU ${CERT_UNITS[need]}${need === "query" ? ` or ${CERT_UNITS.admin}` : ""}` : "";
    return { kind: "unauthenticated", reason: `this method needs a bearer token (authorization: Bearer <${need} token>)${cert}` };
  }
  if (rank(grant) < rank(need)) {
    return { kind: "permission_denied", reason: `a ${grant} credential may not call the admin API (lambda.v1.AdminService); use the admin token${p.certificateGrants ? ` or a certificate with OU ${CERT_UNITS.admin}` : ""}` };
  }
  return { kind: "allowed" };
}

/** The policy for these tokens ("" = none) and whether a client CA verifies certificates. @throws ConfigError when both tokens are the same */
export function accessPolicy(queryToken: string, adminToken: string, certificateGrants: boolean): AccessPolicy {
  if (queryToken !== "" && queryToken === adminToken) {
    throw new ConfigError("LAMBDA_GRPC_ADMIN_TOKEN_FILE", "(the same token as LAMBDA_GRPC_TOKEN_FILE)", "a token other than the query token (a query token must not roll back)");
  }
  return { queryToken: queryToken ? digest(queryToken) : null, adminToken: adminToken ? digest(adminToken) : null, certificateGrants };
}
