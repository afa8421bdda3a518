import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalJson, copyImage, MediaType, ociLayoutDestination, sha256Digest, type ImageSource, type RawManifest } from '@tessera/oci';
import { ociLayoutName, parseOciLayoutName, resolveBaseImage } from './base-image';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe('oci-layout:// base names', () => {
  it('splits directory, tag and digest, and spells them back', () => {
    const digest = `sha256:${'c'.repeat(64)}`;
    expect(parseOciLayoutName(`oci-layout:///ws/dist/images/base@${digest}`)).toEqual({ directory: '/ws/dist/images/base', digest });
    expect(parseOciLayoutName('oci-layout://rel/dir:v1')).toEqual({ directory: 'rel/dir', tag: 'v1' });
    expect(parseOciLayoutName('oci-layout://host:5000/dir')).toEqual({ directory: 'host:5000/dir' });
    expect(parseOciLayoutName('reg:5000/base:latest')).toBeUndefined();
    expect(ociLayoutName({ directory: '/a/b', tag: 't', digest })).toBe(`oci-layout:///a/b:t@${digest}`);
  });

  it('resolves a base from a layout, pinned to a digest even after the tag moves, without asking a registry', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-layout-base-'));
    dirs.push(dir);
    const first = await writeImage(dir, 'latest', 'first');
    const second = await writeImage(dir, 'latest', 'second');
    const noRegistry = () => Promise.reject(new Error('no registry here'));
    const pinned = await resolveBaseImage(ociLayoutName({ directory: dir, digest: first }), noRegistry);
    expect(pinned.digest).toBe(first);
    expect(pinned.config.config?.Cmd).toEqual(['first']);
    expect(pinned.pinnedName).toBeUndefined();
    const tagged = await resolveBaseImage(ociLayoutName({ directory: dir, tag: 'latest' }), noRegistry);
    expect(tagged.digest).toBe(second);
    await expect(resolveBaseImage(ociLayoutName({ directory: dir, tag: 'nope' }), noRegistry)).rejects.toThrow(/no image tagged/);
  });
});

/** A one-config, no-layer image tagged into the layout; returns its manifest digest. */
async function writeImage(dir: string, tag: string, cmd: string): Promise<string> {
  const config = Buffer.from(canonicalJson({ architecture: 'amd64', os: 'linux', config: { Cmd: [cmd] }, rootfs: { type: 'layers', diff_ids: [] } }));
  const configDescriptor = { mediaType: MediaType.ociConfig, digest: sha256Digest(config), size: config.length };
  const manifest = Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDescriptor, layers: [] }));
  const raw: RawManifest = { bytes: manifest, digest: sha256Digest(manifest), mediaType: MediaType.ociManifest };
  const source: ImageSource = {
    description: 'test image',
    getManifest: async () => raw,
    getManifestByDigest: async () => raw,
    openBlob: async () => Readable.from([config]),
  };
  const layout = await ociLayoutDestination(dir);
  await copyImage(source, layout, { tags: [tag] });
  await layout.close?.();
  return raw.digest;
}
