// One compression measurement in its own process: writeLayer over a directory tree at one level.
import { lstatSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../lib/args.mjs';
import { loadDist } from '../lib/dist.mjs';

const options = parseArgs(process.argv.slice(2), { tree: '', prefix: 'app/node_modules', compression: 'gzip', level: 6, out: '' });
const { writeLayer } = loadDist('packages/builder/dist/layer/writer.js');

/** The tree as layer entries (sources streamed by the writer, not read here). */
function entriesOf(root, prefix) {
  const entries = [];
  const visit = (relative) => {
    for (const name of readdirSync(join(root, relative)).sort()) {
      const childRelative = relative ? `${relative}/${name}` : name;
      const host = join(root, childRelative);
      const stats = lstatSync(host);
      const base = { path: `${prefix}/${childRelative}`, mode: stats.mode & 0o7777, uid: 0, gid: 0 };
      if (stats.isDirectory()) {
        entries.push({ ...base, type: 'directory' });
        visit(childRelative);
      } else if (stats.isSymbolicLink()) entries.push({ ...base, type: 'symlink', linkTarget: readlinkSync(host) });
      else entries.push({ ...base, type: 'file', size: stats.size, source: host });
    }
  };
  visit('');
  return entries;
}

const entries = entriesOf(options.tree, options.prefix);
const outputDir = options.out || mkdtempSync(join(tmpdir(), 'tessera-bench-layer-'));
const started = performance.now();
const layer = await writeLayer(entries, { compression: options.compression, level: options.level, outputDir, mtime: new Date(0) });
const ms = performance.now() - started;
if (!options.out) rmSync(outputDir, { recursive: true, force: true });
console.log(JSON.stringify({ ms, files: entries.filter((e) => e.type === 'file').length, size: layer.size, uncompressedSize: layer.uncompressedSize, digest: layer.digest, diffId: layer.diffId, path: layer.path }));
