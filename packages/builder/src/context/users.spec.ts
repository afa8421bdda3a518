import { describe, expect, it } from 'vitest';
import { resolveUser } from './users';

const passwd = ['root:x:0:0:root:/root:/bin/sh', '# comment', 'app:x:1000:1001:App:/home/app:/bin/sh', 'broken line', 'web:x:33:33::/var/www:/bin/false'].join('\n');
const group = ['root:x:0:', 'appgroup:x:1001:', 'staff:x:50:app,web', 'docker:x:999:app', 'www:x:33:'].join('\n');

describe('resolveUser', () => {
  it('resolves numeric ids without any files', () => {
    expect(resolveUser('1234:5678')).toEqual({ uid: 1234, gid: 5678 });
    expect(resolveUser('1234')).toEqual({ uid: 1234, gid: 1234 }); // --chown: a lone uid is also the gid
  });

  it('takes the primary group of a named user', () => {
    expect(resolveUser('app', { passwd, group })).toEqual({ uid: 1000, gid: 1001 });
    expect(resolveUser('app:staff', { passwd, group })).toEqual({ uid: 1000, gid: 50 });
    expect(resolveUser('app:7', { passwd, group })).toEqual({ uid: 1000, gid: 7 });
    expect(resolveUser('33:appgroup', { passwd, group })).toEqual({ uid: 33, gid: 1001 });
  });

  it('follows runc for RUN: lone uid takes the passwd gid or 0, supplementary groups by membership', () => {
    expect(resolveUser('1000', { passwd, group }, { purpose: 'run' })).toEqual({ uid: 1000, gid: 1001, supplementary: [50, 999] });
    expect(resolveUser('4242', { passwd, group }, { purpose: 'run' })).toEqual({ uid: 4242, gid: 0, supplementary: [] });
    expect(resolveUser('web', { passwd, group }, { purpose: 'run' })).toEqual({ uid: 33, gid: 33, supplementary: [50] });
  });

  it('names the unknown user or group', () => {
    expect(() => resolveUser('nobody', { passwd, group })).toThrow(/unable to find user nobody/);
    expect(() => resolveUser('app:nogroup', { passwd, group })).toThrow(/unable to find group nogroup/);
    expect(() => resolveUser('app', {})).toThrow(/no \/etc\/passwd/);
    expect(() => resolveUser('1:wheel', { passwd })).toThrow(/no \/etc\/group/);
  });

  it('rejects malformed specs', () => {
    for (const spec of ['', ':1', '1:', 'a:b:c', '99999999999']) expect(() => resolveUser(spec, { passwd, group })).toThrow();
  });
});
