/** Base class: every Tessera error has a stable code and a one-line message fit for a terminal. */
export class TesseraError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class InvalidReferenceError extends TesseraError {
  constructor(readonly input: string, reason: string) {
    super(`invalid image reference ${JSON.stringify(input)}: ${reason}`, 'INVALID_REFERENCE');
  }
}

export class DigestMismatchError extends TesseraError {
  constructor(what: string, readonly expected: string, readonly actual: string | undefined, expectedSize?: number, actualSize?: number) {
    const sizes = expectedSize !== undefined && expectedSize !== actualSize ? ` (size ${actualSize}, expected ${expectedSize})` : '';
    super(`${what} content does not match ${expected}${actual ? `: got ${actual}` : ''}${sizes}`, 'DIGEST_MISMATCH');
  }
}

export type RegistryOperation =
  | 'ping'
  | 'auth'
  | 'manifest head'
  | 'manifest get'
  | 'manifest put'
  | 'manifest delete'
  | 'blob head'
  | 'blob get'
  | 'blob upload'
  | 'blob mount'
  | 'tags list'
  | 'catalog';

/** Distribution's documented error codes, each with a one-line hint for the user. */
const REGISTRY_HINTS: Record<string, string> = {
  UNAUTHORIZED: 'check the credentials for this registry (docker login, --username/--password, or DOCKER_CONFIG)',
  DENIED: 'the credentials are valid but lack permission for this repository',
  NAME_UNKNOWN: 'the repository does not exist on this registry',
  MANIFEST_UNKNOWN: 'the tag or digest does not exist in this repository',
  BLOB_UNKNOWN: 'the registry does not have this blob; push it first',
  BLOB_UPLOAD_UNKNOWN: 'the upload session expired or was cancelled; retry the push',
  BLOB_UPLOAD_INVALID: 'the registry rejected the uploaded bytes; retry the push',
  DIGEST_INVALID: 'the uploaded content does not match its digest',
  MANIFEST_BLOB_UNKNOWN: 'a blob named by the manifest is missing from the repository',
  MANIFEST_INVALID: 'the registry rejected the manifest',
  NAME_INVALID: 'the repository name is not valid for this registry',
  SIZE_INVALID: 'the content length does not match the descriptor',
  TOOMANYREQUESTS: 'the registry is rate limiting; wait and retry',
  UNSUPPORTED: 'the registry does not support this operation',
  UNREACHABLE: 'check the registry address, the network and --insecure-registry for plain-HTTP registries',
  TLS: 'use --registry-certificate HOST=CA.pem for a private CA, or --skip-tls-verify',
  TIMEOUT: 'the registry did not answer in time',
};

export function registryHint(code: string): string | undefined {
  return REGISTRY_HINTS[code];
}

/** A failed registry operation. The message names the registry, repository and operation, and never holds a secret. */
export class RegistryError extends TesseraError {
  constructor(
    readonly registry: string,
    readonly repository: string | undefined,
    readonly operation: RegistryOperation,
    readonly status: number | undefined,
    code: string,
    detail?: string,
    options?: { cause?: unknown },
  ) {
    const where = repository ? `${registry}/${repository}` : registry;
    const hint = registryHint(code);
    super(
      `${operation} on ${where} failed: ${code}${status ? ` (HTTP ${status})` : ''}${detail ? `: ${detail}` : ''}${hint ? ` — ${hint}` : ''}`,
      code,
      hint,
      options,
    );
  }

  /** Whether the same request may succeed when sent again. */
  get retryable(): boolean {
    return this.status === 429 || (this.status !== undefined && this.status >= 500) || this.code === 'UNREACHABLE' || this.code === 'TIMEOUT';
  }
}
