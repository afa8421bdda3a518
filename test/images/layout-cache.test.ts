import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachedLayout, imageCacheRoot, readLayoutImage, type LayoutImage } from '../../tools/images/index';

/** A minimal tagged OCI layout; the cache only needs index.json to find the tag. */
async function writeTinyLayout(dir: string, tag: string, digest: string): Promise<LayoutImage> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const manifest = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest,
    size: 1,
    annotations: { 'org.opencontainers.image.ref.name': tag },
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [manifest] }));
  return readLayoutImage(dir, tag);
}

const winnerDigest = `sha256:${'a'.repeat(64)}`;
const loserDigest = `sha256:${'b'.repeat(64)}`;

describe('cached layouts', () => {
  let root: string;
  const saved = process.env.TESSERA_TEST_IMAGES_DIR;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'tessera-image-cache-'));
    process.env.TESSERA_TEST_IMAGES_DIR = root;
  });
  afterEach(async () => {
    if (saved === undefined) delete process.env.TESSERA_TEST_IMAGES_DIR;
    else process.env.TESSERA_TEST_IMAGES_DIR = saved;
    await rm(root, { recursive: true, force: true });
  });

  it('builds once per key and process, then serves the layout from the cache directory', async () => {
    let builds = 0;
    const build = (dir: string, tag: string) => {
      builds += 1;
      return writeTinyLayout(dir, tag, winnerDigest);
    };
    const [first, second] = await Promise.all([cachedLayout('k1', 't', build), cachedLayout('k1', 't', build)]);
    expect(builds).toBe(1);
    expect(imageCacheRoot()).toBe(root);
    expect(first).toEqual(second);
    expect(first.dir).toBe(join(root, 'k1'));
    expect(first.reference).toBe(`oci:${join(root, 'k1')}:t`);
    expect(await readdir(root)).toEqual(['k1']);
  });

  it('keeps the layout of a process that finished first, and removes its own copy', async () => {
    const layout = await cachedLayout('k2', 't', async (dir, tag) => {
      // Another process renames its finished build into place while this one is still building.
      await writeTinyLayout(join(root, 'k2'), tag, winnerDigest);
      return writeTinyLayout(dir, tag, loserDigest);
    });
    expect(layout.manifestDigest).toBe(winnerDigest);
    expect(await readdir(root)).toEqual(['k2']);
  });

  it('forgets a failed build so that a later call retries', async () => {
    await expect(cachedLayout('k3', 't', () => Promise.reject(new Error('umoci broke')))).rejects.toThrow('umoci broke');
    expect(await readdir(root)).toEqual([]);
    const layout = await cachedLayout('k3', 't', (dir, tag) => writeTinyLayout(dir, tag, winnerDigest));
    expect(layout.manifestDigest).toBe(winnerDigest);
  });
});
