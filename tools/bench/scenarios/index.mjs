import { s8 } from './s8-push.mjs';

export const scenarios = { S8: s8 };
export const scenarioOrder = ['S8'];
