import { stat } from 'node:fs/promises';
import { TesseraError } from '@tessera/oci';
import { formatCacheVerifyReport, verifyCacheDir } from '../cache/index';
import type { Command } from './command';
import { UsageError } from './flags';

export const cacheCommand: Command = {
  name: 'cache',
  summary: 'Check (and repair) a local layer cache directory',
  arguments: 'verify',
  description: [
    'tessera cache verify --cache-dir DIR re-hashes every blob of the cache directory and checks every entry:',
    'it must parse and name a blob that is present and intact. Leftover temporary files of dead writers are reported too.',
    'With --repair, bad entries, corrupt blobs and stale temporary files are removed.',
    'Exit status: 0 when the cache is clean (or was repaired), 1 when problems remain.',
  ].join('\n'),
  flags: [
    { name: 'cache-dir', type: 'string', valueName: 'DIR', description: 'The cache directory (as given to tessera build --cache-dir)' },
    { name: 'repair', type: 'boolean', description: 'Remove bad entries, corrupt blobs and stale temporary files' },
  ],
  positionals: { min: 1, max: 1 },
  async run({ flags, io }) {
    const action = flags.positionals[0];
    if (action !== 'verify') throw new UsageError(`unknown cache action ${JSON.stringify(action)}; the only action is verify`);
    const dir = flags.string('cache-dir');
    if (!dir) throw new UsageError('cache verify needs --cache-dir DIR');
    const s = await stat(dir).catch(() => undefined);
    if (!s?.isDirectory()) throw new TesseraError(`cache directory ${dir} does not exist`, 'CACHE_DIR_MISSING');
    const report = await verifyCacheDir(dir, { repair: flags.boolean('repair') });
    io.stdout(formatCacheVerifyReport(dir, report).map((line) => `${line}\n`).join(''));
    return report.clean ? 0 : 1;
  },
};
