import { describe, expect, it } from 'vitest';
import { normaliseImagePath, StageConfig } from './image-config';

const base = () => ({
  architecture: 'amd64',
  os: 'linux',
  rootfs: { type: 'layers' as const, diff_ids: [] },
  config: { Cmd: ['sh'], Env: ['PATH=/bin'], OnBuild: ['RUN true'] },
});

describe('StageConfig', () => {
  it('resets an inherited CMD when ENTRYPOINT is set', () => {
    const s = new StageConfig(base());
    s.setEntrypoint(['/app']);
    expect(s.container.Cmd).toBeNull();
  });
  it('keeps a CMD set earlier in the same stage when ENTRYPOINT follows', () => {
    const s = new StageConfig(base());
    s.setCmd(['--help']);
    s.setEntrypoint(['/app']);
    expect(s.container.Cmd).toEqual(['--help']);
  });
  it('does not inherit ONBUILD triggers', () => {
    expect(new StageConfig(base()).container.OnBuild).toBeUndefined();
  });
  it('replaces an ENV value in place and keeps order', () => {
    const s = new StageConfig(base());
    s.setEnv([['A', '1'], ['PATH', '/usr/bin']]);
    expect(s.container.Env).toEqual(['PATH=/usr/bin', 'A=1']);
  });
  it('resolves relative WORKDIR against the previous one', () => {
    const s = new StageConfig(base());
    s.setWorkdir('/app');
    expect(s.setWorkdir('src/../lib')).toBe('/app/lib');
  });
  it('defaults exposed ports to tcp', () => {
    const s = new StageConfig(base());
    s.addExposedPorts(['80', '53/UDP']);
    expect(s.container.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {} });
  });
});

describe('helpers', () => {
  it('normalises image paths', () => {
    expect(normaliseImagePath('/a//b/./c/../../..')).toBe('/');
    expect(normaliseImagePath('/a/b/')).toBe('/a/b');
  });
});
