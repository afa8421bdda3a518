import { tesseraVitestConfig } from '../tools/vitest/preset.mts';

export default tesseraVitestConfig();
