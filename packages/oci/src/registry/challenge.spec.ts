import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate } from './challenge';

describe('parseWwwAuthenticate', () => {
  it('reads a bearer challenge with realm, service, scope and error', () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push",error="insufficient_scope"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push', error: 'insufficient_scope' },
      },
    ]);
  });

  it('reads several challenges, unquoted values, escapes and odd spacing', () => {
    expect(parseWwwAuthenticate(['Basic realm="Registry Realm"', 'Bearer realm=https://x/t , Service = "s\\"q"'])).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
      { scheme: 'bearer', params: { realm: 'https://x/t', service: 's"q' } },
    ]);
    expect(parseWwwAuthenticate('Basic realm="r", Bearer realm="t",scope="x"').map((c) => c.scheme)).toEqual(['basic', 'bearer']);
  });

  it('gives nothing for a missing or empty header and survives garbage', () => {
    expect(parseWwwAuthenticate(undefined)).toEqual([]);
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(parseWwwAuthenticate('Negotiate')).toEqual([{ scheme: 'negotiate', params: {} }]);
    expect(() => parseWwwAuthenticate('"""=,,@@ Bearer realm="')).not.toThrow();
  });
});
