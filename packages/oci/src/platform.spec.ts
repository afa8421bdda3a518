import { describe, expect, it } from 'vitest';
import { TesseraError } from './errors';
import { MediaType } from './media-types';
import { formatPlatform, hostPlatform, parsePlatform, platformMatches, selectManifest } from './platform';
import type { Descriptor, ImageIndex, Platform } from './types';

function entry(platform: Platform | undefined, n: number): Descriptor {
  const d: Descriptor = { mediaType: MediaType.ociManifest, digest: 'sha256:' + String(n).repeat(64).slice(0, 64), size: 100 + n };
  if (platform) d.platform = platform;
  return d;
}

describe('platforms', () => {
  it('describes the host in OCI terms', () => {
    const host = hostPlatform();
    expect(host.os).toBe(process.platform === 'win32' ? 'windows' : process.platform);
    const expected: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };
    if (expected[process.arch]) expect(host.architecture).toBe(expected[process.arch]);
    if (process.arch === 'x64') expect(host.variant).toBeUndefined();
    if (process.arch === 'arm64') expect(host.variant).toBe('v8');
  });

  it('parses and formats os/arch[/variant]', () => {
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(parsePlatform('linux/x86_64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v6' })).toBe('linux/arm/v6');
    expect(formatPlatform(parsePlatform('windows/amd64'))).toBe('windows/amd64');
    for (const bad of ['', 'linux/', 'linux/arm/', 'a/b/c/d', 'linux/am d64']) {
      expect(() => parsePlatform(bad)).toThrow(/invalid platform/);
    }
  });

  it('matches with default variants and nothing looser', () => {
    expect(platformMatches({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'windows', architecture: 'amd64' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'x86_64' }, { os: 'linux', architecture: 'amd64' })).toBe(true);
    expect(
      platformMatches({ os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763' }, { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.1' }),
    ).toBe(false);
  });

  it('selects the manifest of the wanted platform, skipping attestations', () => {
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        entry({ os: 'unknown', architecture: 'unknown' }, 1),
        entry({ os: 'linux', architecture: 'amd64' }, 2),
        entry({ os: 'linux', architecture: 'arm64', variant: 'v8' }, 3),
        entry({ os: 'linux', architecture: 'arm', variant: 'v6' }, 4),
      ],
    };
    expect(selectManifest(index, { os: 'linux', architecture: 'arm64' })).toBe(index.manifests[2]);
    expect(selectManifest(index, parsePlatform('linux/amd64'))).toBe(index.manifests[1]);
    let error: unknown;
    try {
      selectManifest(index, { os: 'linux', architecture: 'arm', variant: 'v7' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TesseraError);
    expect((error as TesseraError).code).toBe('PLATFORM_NOT_FOUND');
    expect((error as Error).message).toBe('no image for platform linux/arm/v7 in the index; available: linux/amd64, linux/arm64/v8, linux/arm/v6');
    expect(() => selectManifest({ schemaVersion: 2, manifests: [entry(undefined, 5)] }, hostPlatform())).toThrow(/available: none/);
  });
});
