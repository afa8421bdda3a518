import { describe, expect, it } from 'vitest';
import { nextLink } from './client';
import { Transport, redactUrl } from './transport';

describe('transport helpers', () => {
  it('keeps harmless query values in log lines and hides the rest', () => {
    expect(redactUrl(new URL('https://u:p@r.io/v2/a/blobs/uploads/x?_state=SECRET&digest=sha256%3Aab&n=3'))).toBe(
      'https://r.io/v2/a/blobs/uploads/x?_state=REDACTED&digest=sha256%3Aab&n=3',
    );
    expect(redactUrl(new URL('https://auth.io/token?service=s&scope=repository%3Aa%3Apull&account=bob'))).toBe(
      'https://auth.io/token?service=s&scope=repository%3Aa%3Apull&account=REDACTED',
    );
  });

  it('speaks plain HTTP only to insecure registries', () => {
    const transport = new Transport({ insecureRegistries: ['127.0.0.1:5000', 'plain.local'] });
    expect(transport.baseUrl('127.0.0.1:5000').href).toBe('http://127.0.0.1:5000/');
    expect(transport.baseUrl('plain.local:8080').href).toBe('http://plain.local:8080/');
    expect(transport.baseUrl('127.0.0.1:5001').href).toBe('https://127.0.0.1:5001/');
    expect(transport.baseUrl('ghcr.io').href).toBe('https://ghcr.io/');
  });

  it('follows Link rel="next"', () => {
    const base = new URL('http://r.io/v2/a/tags/list?n=2');
    expect(nextLink('</v2/a/tags/list?n=2&last=b>; rel="next"', base)?.href).toBe('http://r.io/v2/a/tags/list?n=2&last=b');
    expect(nextLink('<https://x.io/p>; rel="prev", <https://x.io/n>; rel=next', base)?.href).toBe('https://x.io/n');
    expect(nextLink(undefined, base)).toBeUndefined();
    expect(nextLink('<https://x.io/p>; rel="prev"', base)).toBeUndefined();
  });
});
