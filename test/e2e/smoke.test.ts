import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { runCommand } from '../../tools/images/index';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const nxBin = realpathSync(`${repoRoot}node_modules/.bin/nx`);
const packages = ['@tessera/oci', '@tessera/builder', '@tessera/nx'];

describe('smoke: workspace wiring', () => {
  it('loads every built package through its npm name in plain Node (needs `npm run build`)', async () => {
    const script = `for (const name of ${JSON.stringify(packages)}) {
      require(name);
      console.log(name, require.resolve(name).replace(process.cwd() + '/', ''));
    }`;
    const { stdout } = await runCommand(process.execPath, ['-e', script], { cwd: repoRoot });
    expect(stdout.trim().split('\n')).toEqual([
      '@tessera/oci packages/oci/dist/index.js',
      '@tessera/builder packages/builder/dist/index.js',
      '@tessera/nx packages/nx/dist/index.js',
    ]);
  });

  it('runs tests against the registry from the global setup', async () => {
    const response = await fetch(`http://${inject('registryHost')}/v2/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('lets Nx see the three packages and this e2e project', async () => {
    const { stdout } = await runCommand(process.execPath, [nxBin, 'show', 'projects', '--json'], {
      cwd: repoRoot,
      env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' },
    });
    expect(JSON.parse(stdout)).toEqual(expect.arrayContaining([...packages, 'e2e']));
  });
});
