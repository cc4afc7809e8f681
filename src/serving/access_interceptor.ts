/**
 * The grpc-js server interceptor that applies the access policy (access.ts) to every call,
 * before any handler runs: it reads the `authorization` metadata and the verified client
 * certificate, and ends a refused call with UNAUTHENTICATED or PERMISSION_DENIED. An allowed
 * call goes on without its `authorization` entry, so no handler can log or pass on the token.
 */
import { Metadata, ServerInterceptingCall, status, type ServerInterceptingCallInterface, type ServerInterceptor } from "@grpc/grpc-js";
import type { Logger } from "../core/logger.js";
import { decideAccess, methodNeed, type AccessPolicy } from "./access.js";

/** grpc-js does not export its AuthContext type: the one its calls return. */
type AuthContext = ReturnType<ServerInterceptingCallInterface["getAuthContext"]>;

/** The OUs of the client certificate the handshake verified (grpc-js reports only verified ones). */
export function certificateUnits(auth: AuthContext): string[] {
  const ou = auth.sslPeerCertificate?.subject?.OU;
  return ou === undefined ? [] : Array.isArray(ou) ? ou : [ou];
}

/** An interceptor enforcing `policy`; refusals are logged at debug (a scan must not flood the log), without any secret. */
export function accessInterceptor(policy: AccessPolicy, log: Logger): ServerInterceptor {
  return (method, call) =>
    new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata: Metadata, pass: (m: Metadata) => void) => {
            const value = metadata.get("authorization")[0];
            const decision = decideAccess(policy, methodNeed(method.path), {
              authorization: value === undefined ? undefined : String(value),
              certUnits: certificateUnits(call.getAuthContext()),
            });
            if (decision.kind === "allowed") {
              metadata.remove("authorization");
              pass(metadata);
              return;
            }
            const code = decision.kind === "unauthenticated" ? status.UNAUTHENTICATED : status.PERMISSION_DENIED;
            log.debug("call refused", { method: method.path, peer: call.getPeer(), code: status[code], reason: decision.reason });
            call.sendStatus({ code, details: decision.reason, metadata: new Metadata() });
          },
        }),
    });
}
