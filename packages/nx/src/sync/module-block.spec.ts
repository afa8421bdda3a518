import { describe, expect, it } from 'vitest';
import { isModuleBlockInSync, renderModuleBlock, replaceModuleBlock } from './module-block';

const block = renderModuleBlock(['shared', 'api'], { shared: 'libs/shared', api: 'apps/api' });

describe('module block', () => {
  it('renders one COPY per module in closure order', () => {
    expect(block).toBe(
      ['# tessera:modules begin', 'COPY libs/shared ./libs/shared', 'COPY apps/api ./apps/api', '# tessera:modules end'].join('\n'),
    );
  });

  it('detects stale and missing blocks', () => {
    const stale = 'FROM node\n# tessera:modules begin\nCOPY apps/api ./apps/api\n# tessera:modules end\nCMD x\n';
    expect(isModuleBlockInSync(stale, block)).toBe(false);
    expect(isModuleBlockInSync('FROM node\n', block)).toBe(false);
    const fixed = replaceModuleBlock(stale, block);
    expect(fixed).toBe(`FROM node\n${block}\nCMD x\n`);
    expect(isModuleBlockInSync(fixed, block)).toBe(true);
  });

  it('keeps CRLF line endings and refuses an unterminated block', () => {
    const crlf = 'FROM node\r\n# tessera:modules begin\r\n# tessera:modules end\r\n';
    expect(replaceModuleBlock(crlf, block)).toBe(`FROM node\r\n${block.split('\n').join('\r\n')}\r\n`);
    expect(() => replaceModuleBlock('# tessera:modules begin\n', block)).toThrow('no "# tessera:modules end"');
  });
});
