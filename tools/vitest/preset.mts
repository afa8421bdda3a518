import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Shared vitest settings: tests import each package's TypeScript source, and one registry runs per test run. */
export function tesseraVitestConfig(options: { registry?: boolean; include?: string[]; exclude?: string[] } = {}) {
  return defineConfig({
    resolve: {
      alias: {
        '@tessera/oci': `${root}packages/oci/src/index.ts`,
        '@tessera/builder': `${root}packages/builder/src/index.ts`,
      },
    },
    test: {
      include: options.include ?? ['src/**/*.spec.ts', 'test/**/*.test.ts', '**/*.test.ts'],
      exclude: ['**/node_modules/**', '**/dist/**', ...(options.exclude ?? [])],
      globalSetup: options.registry === false ? [] : [`${root}tools/registry/global-setup.ts`],
      testTimeout: 60_000,
      hookTimeout: 60_000,
      pool: 'forks',
    },
  });
}
