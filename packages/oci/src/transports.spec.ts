import { describe, expect, it } from 'vitest';
import { InvalidReferenceError } from './errors';
import { formatTransportReference, parseTransportReference } from './transports';

describe('parseTransportReference', () => {
  it('parses the docker transport through parseReference', () => {
    const ref = parseTransportReference('docker://127.0.0.1:5000/team/app:v1');
    expect(ref.transport).toBe('docker');
    expect(ref.transport === 'docker' && [ref.reference.registry, ref.reference.repository, ref.reference.tag]).toEqual(['127.0.0.1:5000', 'team/app', 'v1']);
    expect(formatTransportReference(parseTransportReference('docker://busybox'))).toBe('docker://docker.io/library/busybox:latest');
  });

  it('splits oci and docker-archive paths at the first colon, as skopeo does', () => {
    expect(parseTransportReference('oci:/tmp/layout')).toEqual({ transport: 'oci', directory: '/tmp/layout' });
    expect(parseTransportReference('oci:/tmp/layout:v1.2')).toEqual({ transport: 'oci', directory: '/tmp/layout', tag: 'v1.2' });
    expect(parseTransportReference('docker-archive:/tmp/a.tar')).toEqual({ transport: 'docker-archive', file: '/tmp/a.tar' });
    expect(parseTransportReference('docker-archive:/tmp/a.tar:example.com:5000/x/y:t')).toEqual({
      transport: 'docker-archive',
      file: '/tmp/a.tar',
      reference: 'example.com:5000/x/y:t',
    });
    expect(parseTransportReference('docker-archive:a.tar:@1')).toEqual({ transport: 'docker-archive', file: 'a.tar', reference: '@1' });
    expect(formatTransportReference({ transport: 'oci', directory: 'd', tag: 't' })).toBe('oci:d:t');
  });

  it('rejects unknown transports, missing paths and bad names with InvalidReferenceError', () => {
    for (const bad of ['dir:/tmp/x', 'http://example.com/x', 'docker:busybox', 'oci:', 'oci:d:', 'docker-archive:a.tar:UPPER', 'docker://Bad Name']) {
      expect(() => parseTransportReference(bad), bad).toThrow(InvalidReferenceError);
    }
    expect(() => parseTransportReference('busybox')).toThrow(/no transport/);
    expect(() => parseTransportReference('dir:/tmp/x')).toThrow(/unknown transport "dir"/);
  });

  it('takes a bare reference as a registry reference when allowed', () => {
    const ref = parseTransportReference('localhost:5000/a/b', { allowBareReference: true });
    expect(formatTransportReference(ref)).toBe('docker://localhost:5000/a/b:latest');
    expect(() => parseTransportReference('ftp://x/y', { allowBareReference: true })).toThrow(/unknown transport "ftp"/);
  });
});
