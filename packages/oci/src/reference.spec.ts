import { describe, expect, it } from 'vitest';
import { InvalidReferenceError } from './errors';
import { ImageReference, parseReference, registryWireHost, tryParseReference } from './reference';

const DIGEST = 'sha256:' + 'ab'.repeat(32);

describe('parseReference', () => {
  it.each([
    ['busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['busybox:1.36', 'docker.io', 'library/busybox', '1.36', undefined],
    ['library/busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['docker.io/busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['index.docker.io/library/busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['user/app:v1', 'docker.io', 'user/app', 'v1', undefined],
    ['ghcr.io/org/team/app:1.0', 'ghcr.io', 'org/team/app', '1.0', undefined],
    ['localhost/app', 'localhost', 'app', 'latest', undefined],
    ['localhost:5000/app:dev', 'localhost:5000', 'app', 'dev', undefined],
    ['127.0.0.1:5000/a/b', '127.0.0.1:5000', 'a/b', 'latest', undefined],
    ['[::1]:5000/app:x', '[::1]:5000', 'app', 'x', undefined],
    ['Registry.Example.com/app', 'Registry.Example.com', 'app', 'latest', undefined],
    [`app@${DIGEST}`, 'docker.io', 'library/app', undefined, DIGEST],
    [`reg.io:443/app:v2@${DIGEST}`, 'reg.io:443', 'app', 'v2', DIGEST],
    ['a.b/c_d/e__f/g-h/i--j.k:T_a.g-1', 'a.b', 'c_d/e__f/g-h/i--j.k', 'T_a.g-1', undefined],
  ])('%s', (input, registry, repository, tag, digest) => {
    const ref = parseReference(input);
    expect(ref.registry).toBe(registry);
    expect(ref.repository).toBe(repository);
    expect(ref.tag).toBe(tag);
    expect(ref.digest).toBe(digest);
  });

  it.each([
    ['', 'empty'],
    ['Busybox', 'lowercase'],
    ['app:', 'invalid tag'],
    ['app:-x', 'invalid tag'],
    [`app:${'t'.repeat(129)}`, 'invalid tag'],
    ['app@sha256:abc', 'invalid digest'],
    [`app@sha256:${'AB'.repeat(32)}`, '64 lowercase hex'],
    ['reg.io:99999/app', 'invalid port'],
    ['reg.io:/app', 'invalid port'],
    ['-reg.io/app', 'invalid registry host'],
    ['reg.io/', 'empty repository'],
    ['a//b', 'invalid repository name component'],
    ['a/b_/c', 'invalid repository name component'],
    ['a/.b', 'invalid repository name component'],
    ['app image', 'white space'],
    ['https://reg.io/app', 'scheme'],
    [`reg.io/${'a'.repeat(256)}`, 'longer than 255'],
  ])('rejects %j', (input, reason) => {
    expect(() => parseReference(input)).toThrow(InvalidReferenceError);
    expect(() => parseReference(input)).toThrow(reason);
    expect(tryParseReference(input)).toBeUndefined();
  });
});

describe('ImageReference', () => {
  it('prints the fully qualified form, which parses back to itself', () => {
    for (const input of ['busybox', `reg.io:5000/a/b:t@${DIGEST}`, `x.io/y@${DIGEST}`]) {
      const ref = parseReference(input);
      expect(parseReference(ref.toString()).toString()).toBe(ref.toString());
    }
    expect(parseReference('busybox').toString()).toBe('docker.io/library/busybox:latest');
    expect(parseReference('busybox').name).toBe('docker.io/library/busybox');
  });

  it('uses the digest on the wire when there is one, else the tag', () => {
    expect(parseReference('a.io/b:t').reference).toBe('t');
    expect(parseReference(`a.io/b:t@${DIGEST}`).reference).toBe(DIGEST);
    expect(() => new ImageReference({ registry: 'a.io', repository: 'b' }).reference).toThrow(InvalidReferenceError);
  });

  it("maps Docker Hub to its API host and leaves other hosts alone", () => {
    expect(parseReference('busybox').host).toBe('registry-1.docker.io');
    expect(parseReference('localhost:5000/x').host).toBe('localhost:5000');
    expect(registryWireHost('index.docker.io')).toBe('registry-1.docker.io');
  });

  it('makes siblings with another tag, digest or repository', () => {
    const ref = parseReference(`reg.io/app:v1@${DIGEST}`);
    expect(ref.withTag('v2').toString()).toBe('reg.io/app:v2');
    expect(ref.withDigest(DIGEST).toString()).toBe(`reg.io/app@${DIGEST}`);
    expect(ref.with({ repository: 'cache/app' }).toString()).toBe(`reg.io/cache/app:v1@${DIGEST}`);
    expect(ref.with({ repository: 'other', tag: 'x' }).toString()).toBe('reg.io/other:x');
    expect(() => ref.withTag('bad tag')).toThrow(InvalidReferenceError);
  });
});
