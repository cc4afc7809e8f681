/**
 * Bearer tokens of the gRPC API (docs/security.md "gRPC"), as the serving node and lambdactl
 * read them: from a file (or, for lambdactl, a flag or variable), checked to be one header-safe
 * token. A token is a secret: no error here quotes it, only where it came from.
 */
import { readFileSync } from "node:fs";
import { ConfigError } from "./errors.js";

/** Characters of a bearer token (RFC 6750 b64token), so it travels as a header value unchanged. */
const TOKEN_CHARS = /^[A-Za-z0-9\-._~+/]+=*$/;
/** A shorter token is too easy to guess. */
export const MIN_TOKEN_CHARS = 16;

/**
 * `token` if it is usable.
 * @param key the flag, variable or file it came from, for the error
 * @param shownAs what the error shows instead of the token (e.g. the file's path)
 * @throws ConfigError naming `key`, never quoting the token
 */
export function checkToken(key: string, token: string, shownAs: string): string {
  if (!TOKEN_CHARS.test(token)) throw new ConfigError(key, shownAs, "one bearer token of letters, digits and -._~+/ (what `openssl rand -hex 32` writes)");
  if (token.length < MIN_TOKEN_CHARS) throw new ConfigError(key, shownAs, `a token of at least ${MIN_TOKEN_CHARS} characters`);
  return token;
}

/**
 * The token in the file at `path`, without the line break an editor adds; "" (none) when `path` is "".
 * @param key the variable or flag that named the file, for the error
 * @throws ConfigError naming `key` and `path` when the file cannot be read or holds no usable token
 */
export function readTokenFile(key: string, path: string): string {
  if (path === "") return "";
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(key, path, `a readable file holding a bearer token (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return checkToken(key, text.trim(), path);
}
