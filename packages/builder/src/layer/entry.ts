import type { Stats } from 'node:fs';

/**
 * One entry of a layer tar, before it is written. Snapshots, COPY and ADD all describe their
 * changes as a list of these, and the layer writer turns the list into deterministic bytes.
 */
export interface LayerEntry {
  /** Path inside the image, relative, with `/` separators and no leading `/` or `./` (e.g. `app/main.js`). */
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';
  /** Permission bits including setuid/setgid/sticky (e.g. 0o755), without the file type bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time; the writer clamps or replaces it when building reproducibly. */
  mtime?: Date;
  /** For files: the size in bytes of `source` or `content`. */
  size?: number;
  /** For files: a host path to stream the content from. */
  source?: string;
  /** For files with a `source`: its stat when it was listed, so a content-hash memo need not stat it again. */
  sourceStats?: Stats;
  /** For files: small in-memory content (heredocs, whiteouts, generated files). */
  content?: Buffer;
  /** For symlinks: the target as stored; for hardlinks: the image path linked to. */
  linkTarget?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes to keep (e.g. `security.capability`), as PAX `SCHILY.xattr.` records. */
  xattrs?: Record<string, Buffer>;
}

/** Whiteout names from the OCI layer spec: `.wh.NAME` deletes NAME, `.wh..wh..opq` empties its directory. */
export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
