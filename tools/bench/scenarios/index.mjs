import { compression } from './compression.mjs';
import { nxMonorepo, stepIds } from './nx-monorepo.mjs';
import { s6 } from './s6-dockerfile.mjs';
import { s7 } from './s7-snapshot.mjs';
import { s8 } from './s8-push.mjs';

export const scenarios = { S8: s8, S7: s7, COMPRESSION: compression, S6: s6, 'S1-S5': nxMonorepo };
export const scenarioOrder = ['S1-S5', 'S6', 'S7', 'S8', 'COMPRESSION'];
export { stepIds };
