import { describe, expect, it } from 'vitest';
import { chooseSnapshotter } from './choose';

describe('chooseSnapshotter', () => {
  it('prefers the overlay where mounts are allowed and getfattr exists, else walks with the asked mode', async () => {
    expect(await chooseSnapshotter({ mode: 'full', overlayAllowed: true, getfattrAvailable: true })).toMatchObject({ kind: 'overlay' });
    expect(await chooseSnapshotter({ mode: 'redo', overlayAllowed: false })).toMatchObject({ kind: 'walk', mode: 'redo', reason: expect.stringMatching(/not allowed/) });
    expect(await chooseSnapshotter({ mode: 'time', overlayAllowed: true, getfattrAvailable: false })).toMatchObject({ kind: 'walk', mode: 'time', reason: expect.stringMatching(/getfattr/) });
  });
});
