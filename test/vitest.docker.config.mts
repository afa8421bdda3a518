import { tesseraVitestConfig } from '../tools/vitest/preset.mts';

/** `npm run test:docker`: tests that start Debian's dockerd by hand (too heavy for every CI run). */
export default tesseraVitestConfig({ registry: false, include: ['docker/**/*.test.ts'] });
