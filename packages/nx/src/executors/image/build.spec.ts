import { describe, expect, it } from 'vitest';
import { testGraph } from '../../testing/test-graph';
import { planLayers } from '../../planning/layers';
import { cacheRepositoryOf, emptyReport, isReproducible, layeredConfig, multiPlatformDockerfileMessage, pinFromLines, shouldPush, targetPlatforms, type ImageBuildReport } from './build';
import { hashParts, imageInputHash, type ImageInputs } from './input-hash';
import { batchTable, formatBytes, progressLine, summaryLine } from './summary';

describe('pinFromLines', () => {
  it('pins each FROM image that has a digest, keeping flags, stage names and other lines', () => {
    const text = 'FROM --platform=$BUILDPLATFORM reg:5000/node-base:latest AS build\nRUN echo reg:5000/node-base:latest\nFROM build\nFROM busybox\n';
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(pinFromLines(text, { 'reg:5000/node-base:latest': digest })).toBe(
      `FROM --platform=$BUILDPLATFORM reg:5000/node-base@${digest} AS build\nRUN echo reg:5000/node-base:latest\nFROM build\nFROM busybox\n`,
    );
  });

  it('pins a workspace image kept as an OCI layout to oci-layout://DIR@digest', () => {
    const digest = `sha256:${'b'.repeat(64)}`;
    const text = 'FROM busybox-base:latest\nFROM busybox:1\n';
    expect(pinFromLines(text, { 'busybox-base:latest': digest }, { 'busybox-base:latest': '/ws/dist/images/busybox-base' })).toBe(
      `FROM oci-layout:///ws/dist/images/busybox-base@${digest}\nFROM busybox:1\n`,
    );
    expect(() => pinFromLines(text, { 'busybox-base:latest': digest }, { 'busybox-base:latest': '/my ws/dist' })).toThrow(/whitespace/);
  });
});

describe('cacheRepositoryOf', () => {
  it("follows Kaniko's <repository>/cache unless cacheRepo names one", () => {
    expect(cacheRepositoryOf('reg:5000/team/api', {})).toBe('reg:5000/team/api/cache');
    expect(cacheRepositoryOf('reg:5000/team/api', { cacheRepo: 'reg:5000/shared-cache' })).toBe('reg:5000/shared-cache');
  });
});

describe('shouldPush', () => {
  it('pushes when a registry is configured or named, and respects an explicit choice', () => {
    expect(shouldPush('api', {})).toBe(false);
    expect(shouldPush('team/api', {})).toBe(false);
    expect(shouldPush('reg.example.com/api', {})).toBe(true);
    expect(shouldPush('localhost/api', {})).toBe(true);
    expect(shouldPush('api', { registry: 'reg:5000' })).toBe(true);
    expect(shouldPush('reg.example.com/api', { push: false })).toBe(false);
  });
});

describe('image input hash', () => {
  const inputs: ImageInputs = {
    mode: 'layered',
    baseDigests: { 'reg/node:22': 'sha256:1' },
    platform: 'linux/amd64',
    layerHashes: ['a', 'b'],
    config: { workdir: '/app' },
    sourceDateEpoch: '0',
  };

  it('changes with every input and not with key order', () => {
    const hash = imageInputHash(inputs);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(imageInputHash({ ...inputs })).toBe(hash);
    for (const changed of [
      { baseDigests: { 'reg/node:22': 'sha256:2' } },
      { platform: 'linux/arm64' },
      { layerHashes: ['a', 'c'] },
      { layerHashes: ['b', 'a'] },
      { config: { workdir: '/srv' } },
      { sourceDateEpoch: '1' },
      { mode: 'dockerfile' as const },
      { platform: 'linux/amd64,linux/arm64' },
      { reproducible: false },
      { buildArgs: { A: '1' } },
      { target: 'build' },
    ]) {
      expect(imageInputHash({ ...inputs, ...changed })).not.toBe(hash);
    }
    // Reproducible is the default: saying so keeps the hash an older run recorded.
    expect(imageInputHash({ ...inputs, reproducible: true })).toBe(hash);
    expect(imageInputHash({ ...inputs, platform: 'linux/arm64,linux/amd64' })).not.toBe(imageInputHash({ ...inputs, platform: 'linux/amd64,linux/arm64' }));
    expect(imageInputHash({ ...inputs, buildArgs: { A: '1', B: '2' } })).toBe(imageInputHash({ ...inputs, buildArgs: { B: '2', A: '1' } }));
  });

  it('frames parts so that moving a boundary changes the hash', () => {
    expect(hashParts(['ab', 'c'])).not.toBe(hashParts(['a', 'bc']));
  });
});

describe('layered config', () => {
  it('takes cmd, entrypoint, env, user, ports and labels from the project, sorted, with runtime defaults', () => {
    const graph = testGraph({ api: { root: 'apps/api', metadata: { js: {} } } }, {});
    const plan = planLayers(graph, 'api', { base: 'reg/node:22' });
    expect(layeredConfig(plan, { cmd: ['node', 'main.js'], env: { Z: '1', A: '2' }, ports: ['9090', '8080'], labels: { b: '1', a: '2' }, user: 'node' })).toEqual({
      workdir: '/app',
      env: { A: '2', NODE_ENV: 'production', Z: '1' },
      user: 'node',
      cmd: ['node', 'main.js'],
      ports: ['8080', '9090'],
      labels: { a: '2', b: '1' },
    });
  });
});

describe('summary line', () => {
  it('says project, outcome, layers, bytes, digest and time', () => {
    const report: ImageBuildReport = {
      project: 'api',
      status: 'built',
      repository: 'reg/api',
      tags: ['1.0.0'],
      digest: `sha256:${'0123456789abcdef'.repeat(4)}`,
      mode: 'layered',
      pushed: true,
      layers: [],
      layersRebuilt: 1,
      layersTotal: 5,
      bytesUploaded: 2150,
      blobsUploaded: 2,
      blobsMounted: 1,
      durationMs: 1234,
    };
    expect(summaryLine(report)).toBe('api: built, layers 1/5 rebuilt, 2.1 kB uploaded, sha256:0123456789ab, 1.2 s');
    expect(summaryLine({ ...report, status: 'failed', digest: undefined, error: 'boom' })).toContain('\n  boom');
    const platforms = [
      { platform: 'linux/amd64', digest: 'sha256:a' },
      { platform: 'linux/arm64/v8', digest: 'sha256:b' },
    ];
    expect(summaryLine({ ...report, platforms })).toBe('api: built, layers 1/5 rebuilt, 2 platforms, 2.1 kB uploaded, sha256:0123456789ab, 1.2 s');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(3_200_000)).toBe('3.2 MB');
  });

  it('ends a batch with a table of every image and the totals', () => {
    const built = { ...emptyReport('api'), status: 'built' as const, pushed: true, layersRebuilt: 1, layersTotal: 5, bytesUploaded: 2150, digest: `sha256:${'ab'.repeat(32)}`, durationMs: 1234 };
    const unchanged = { ...emptyReport('worker-service'), status: 'unchanged' as const, pushed: true, layersTotal: 4, digest: `sha256:${'cd'.repeat(32)}`, durationMs: 50 };
    const layout = { ...emptyReport('py'), status: 'built' as const, mode: 'dockerfile' as const, durationMs: 900 };
    expect(batchTable([built, unchanged, layout], ['dotnet']).split('\n')).toEqual([
      'image           status     layers rebuilt  uploaded    digest               time',
      '--------------  ---------  --------------  ----------  -------------------  -----',
      'api             built      1/5             2.1 kB      sha256:abababababab  1.2 s',
      'worker-service  unchanged  0/4             0 B         sha256:cdcdcdcdcdcd  0.1 s',
      'py              built      dockerfile      oci layout  -                    0.9 s',
      'dotnet          skipped    -               -           -                    -',
      '',
      '4 images: 2 built, 1 unchanged, 0 failed, 1 skipped; 2.1 kB uploaded',
    ]);
    expect(progressLine(3, 12, ['api', 'worker'])).toBe('images 3/12 done, 2 running: api, worker');
    expect(progressLine(12, 12, [])).toBe('images 12/12 done');
  });
});

describe('target platforms', () => {
  const host = { os: 'linux', architecture: 'amd64' };

  it('builds the session platform unless the target lists platforms, in the listed order', () => {
    expect(targetPlatforms({}, host)).toEqual([host]);
    expect(targetPlatforms({ platforms: [] }, host)).toEqual([host]);
    expect(targetPlatforms({ platforms: ['linux/arm64/v8', 'linux/amd64'] }, host)).toEqual([
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'linux', architecture: 'amd64' },
    ]);
  });

  it('refuses a platform listed twice (also under another spelling) and an invalid one', () => {
    expect(() => targetPlatforms({ platforms: ['linux/arm64', 'linux/aarch64/v8'] }, host)).toThrow('listed twice');
    expect(() => targetPlatforms({ platforms: ['linux/amd64/v1/x'] }, host)).toThrow('invalid platform');
  });

  it('explains in one line why a Dockerfile image takes one platform', () => {
    const message = multiPlatformDockerfileMessage([host, { os: 'linux', architecture: 'arm64' }]);
    expect(message).not.toContain('\n');
    expect(message).toContain('linux/amd64, linux/arm64');
    expect(message).toContain('emulation');
    expect(message).toContain('layered mode');
  });
});

describe('reproducible option', () => {
  it('defaults to true and is off only when set to false', () => {
    expect(isReproducible({})).toBe(true);
    expect(isReproducible({ reproducible: true })).toBe(true);
    expect(isReproducible({ reproducible: false })).toBe(false);
  });
});
