import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');
export const tesseraBin = join(repoRoot, 'packages/builder/bin/tessera.js');
const require = createRequire(import.meta.url);

/** A module of the built packages (`npx tsc -b packages/oci packages/builder packages/nx` first). */
export function loadDist(relativePath) {
  const file = join(repoRoot, relativePath);
  if (!existsSync(file)) throw new Error(`${relativePath} is missing: build first with \`npx tsc -b packages/oci packages/builder packages/nx\``);
  return require(file);
}
