import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { digestHex, REF_NAME_ANNOTATION, type ImageIndex } from '@tessera/oci';
import { FileHashMemo, type LayeredLayer } from '@tessera/builder';

/** The cache-repo tag that maps an image input hash to the image built from those inputs. */
export function imageCacheTag(inputHash: string): string {
  return `img-${inputHash}`;
}

type WrittenLayerRecord = LayeredLayer['written'];

/**
 * The local cache directory (`.tessera/cache` by default): written layers by layer input hash, and in
 * no-push mode the digest built for each image input hash. Entries are written to a temporary name and
 * renamed into place, so concurrent builds never see half an entry.
 */
export class LocalCache {
  constructor(readonly dir: string) {}

  get blobDir(): string {
    return join(this.dir, 'blobs');
  }

  /** Content hashes of a project's layer files, remembered by stat between runs (one file per project). */
  async contentHashes(project: string): Promise<FileHashMemo> {
    const dir = join(this.dir, 'content-hashes');
    await mkdir(dir, { recursive: true });
    return FileHashMemo.load(join(dir, `${project}.json`));
  }

  async readLayer(layerHash: string): Promise<WrittenLayerRecord | undefined> {
    const record = await readJson<Omit<WrittenLayerRecord, 'path'>>(join(this.dir, 'layers', `${layerHash}.json`));
    if (!record) return undefined;
    const path = join(this.blobDir, digestHex(record.digest));
    return existsSync(path) ? { ...record, path } : undefined;
  }

  async writeLayer(layerHash: string, written: WrittenLayerRecord): Promise<void> {
    const { path: _path, ...record } = written;
    await writeJsonAtomically(join(this.dir, 'layers', `${layerHash}.json`), record);
  }

  async readImage(inputHash: string): Promise<string | undefined> {
    return (await readJson<{ digest: string }>(join(this.dir, 'images', `${inputHash}.json`)))?.digest;
  }

  async writeImage(inputHash: string, digest: string): Promise<void> {
    await writeJsonAtomically(join(this.dir, 'images', `${inputHash}.json`), { digest });
  }
}

/** Whether the OCI layout at `dir` has every tag pointing at `digest`. */
export async function layoutHasTags(dir: string, digest: string, tags: readonly string[]): Promise<boolean> {
  const index = await readJson<ImageIndex>(join(dir, 'index.json'));
  if (!index) return false;
  return tags.every((tag) => index.manifests.some((entry) => entry.digest === digest && entry.annotations?.[REF_NAME_ANNOTATION] === tag));
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export async function writeJsonAtomically(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(temp, JSON.stringify(value, null, 2) + '\n');
  await rename(temp, path);
}
