#!/usr/bin/env node
// Writes the seeded bench monorepo: `node tools/bench/generate.mjs --out DIR [--seed 1] [--scale 1]`.
import { existsSync, readdirSync } from 'node:fs';
import { parseArgs } from './lib/args.mjs';
import { generateMonorepo } from './lib/monorepo.mjs';

const options = parseArgs(process.argv.slice(2), { out: '', seed: 1, scale: 1 });
if (!options.out) throw new Error('--out DIR is required (a new or empty directory, outside the repository)');
if (existsSync(options.out) && readdirSync(options.out).length > 0) throw new Error(`${options.out} is not empty`);
const summary = generateMonorepo(options.out, options);
console.log(JSON.stringify({ ...summary, apps: summary.apps.map((app) => `${app.name} (${app.closure.length} libs)`), libs: summary.libs.length }, null, 2));
