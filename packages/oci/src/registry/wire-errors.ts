import type { IncomingHttpHeaders } from 'node:http';
import { RegistryError, type RegistryOperation } from '../errors';
import { setRetryAfter } from './retry';

/** Who was asked what: every registry error names these. */
export interface RequestContext {
  registry: string;
  repository?: string;
  operation: RegistryOperation;
}

/** Distribution's error body: `{"errors":[{"code":"…","message":"…","detail":…}]}`. */
export interface DistributionErrorBody {
  errors?: Array<{ code?: string; message?: string; detail?: unknown }>;
}

const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'EPROTO',
]);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ECONNABORTED']);

function statusCode(status: number, operation: RegistryOperation): string {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 404) return operation.startsWith('manifest') ? 'MANIFEST_UNKNOWN' : operation.startsWith('blob') ? 'BLOB_UNKNOWN' : 'NAME_UNKNOWN';
  if (status === 405) return 'UNSUPPORTED';
  if (status === 429) return 'TOOMANYREQUESTS';
  if (status >= 500) return 'UNAVAILABLE';
  return `HTTP_${status}`;
}

/** Turns a registry's error answer into a RegistryError; `body` is the (possibly empty) response text. */
export function responseError(context: RequestContext, status: number, headers: IncomingHttpHeaders, body: string): RegistryError {
  let code = statusCode(status, context.operation);
  let detail: string | undefined;
  try {
    const parsed = JSON.parse(body) as DistributionErrorBody;
    const first = parsed.errors?.[0];
    if (first?.code) code = first.code;
    const messages = (parsed.errors ?? []).map((e) => e.message).filter((m): m is string => typeof m === 'string' && m.length > 0);
    if (messages.length) detail = [...new Set(messages)].join('; ');
  } catch {
    // Not distribution's JSON: keep a short plain-text reason when there is one.
    const text = body.trim();
    if (text && text.length <= 200 && !/[<{]/.test(text)) detail = text;
  }
  const error = new RegistryError(context.registry, context.repository, context.operation, status, code, detail);
  setRetryAfter(error, headers['retry-after']);
  return error;
}

/** Turns a socket, DNS, TLS or timeout failure into a RegistryError with the code UNREACHABLE, TLS or TIMEOUT. */
export function networkError(context: RequestContext, error: unknown, host: string): RegistryError {
  if (error instanceof RegistryError) return error;
  const e = error as NodeJS.ErrnoException;
  const code = e?.code ?? '';
  const message = e?.message ?? String(error);
  if (TLS_CODES.has(code) || /\b(SSL|TLS)\b|certificate/i.test(message)) {
    const plainHttp = /wrong version number|packet length too long/i.test(message);
    const detail = plainHttp
      ? `TLS handshake with ${host} failed; if it is a plain-HTTP registry, add it to the insecure registries`
      : `cannot verify the certificate of ${host}: ${message}${code && !message.includes(code) ? ` (${code})` : ''}`;
    return new RegistryError(context.registry, context.repository, context.operation, undefined, 'TLS', detail, { cause: error });
  }
  if (TIMEOUT_CODES.has(code)) {
    return new RegistryError(context.registry, context.repository, context.operation, undefined, 'TIMEOUT', `no answer from ${host}: ${message}`, { cause: error });
  }
  return new RegistryError(context.registry, context.repository, context.operation, undefined, 'UNREACHABLE', `cannot talk to ${host}: ${message}`, { cause: error });
}
