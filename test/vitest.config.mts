import { tesseraVitestConfig } from '../tools/vitest/preset.mts';

// test/docker needs a Docker engine started by hand: `npm run test:docker` runs it on its own.
export default tesseraVitestConfig({ exclude: ['docker/**'] });
