#!/usr/bin/env node
// Sums the vitest JSON reports of every test project and prints one closing line, `N passed, M failed`,
// which CI reads. `npm test` runs it with --clean before the run and with --status <nx exit code> after.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
/** Each project's vitest writes here, relative to its own root (see the "test" script in package.json). */
const REPORT = 'tmp/vitest-results.json';

/** Projects with a test target: workspace packages with a test script, and test/ (project.json, named e2e). */
function testProjects() {
  const projects = [];
  for (const dir of readdirSync(join(root, 'packages')).sort()) {
    const manifest = join(root, 'packages', dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const { name, scripts } = JSON.parse(readFileSync(manifest, 'utf8'));
    if (scripts?.test) projects.push({ name, dir: join(root, 'packages', dir) });
  }
  const e2e = join(root, 'test', 'project.json');
  if (existsSync(e2e)) projects.push({ name: JSON.parse(readFileSync(e2e, 'utf8')).name, dir: join(root, 'test') });
  return projects;
}

const args = process.argv.slice(2);
if (args.includes('--clean')) {
  for (const { dir } of testProjects()) rmSync(join(dir, REPORT), { force: true });
  process.exit(0);
}
const statusIndex = args.indexOf('--status');
const runStatus = statusIndex >= 0 ? Number(args[statusIndex + 1]) || 0 : 0;

let passed = 0;
let failed = 0;
let skipped = 0;
const lines = [];
for (const { name, dir } of testProjects()) {
  const file = join(dir, REPORT);
  if (!existsSync(file)) {
    // No report means the project never ran or crashed before reporting: that is a failure, not a zero.
    failed += 1;
    lines.push(`  ${name}: no test report (did not run, or crashed)`);
    continue;
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  // A test file that fails to load has no failed assertions, so count it as one failure.
  const brokenFiles = report.testResults.filter(
    (result) => result.status === 'failed' && !result.assertionResults.some((a) => a.status === 'failed'),
  );
  const projectFailed = report.numFailedTests + brokenFiles.length;
  const projectSkipped = report.numPendingTests + report.numTodoTests;
  passed += report.numPassedTests;
  failed += projectFailed;
  skipped += projectSkipped;
  lines.push(
    `  ${name}: ${report.numPassedTests} passed, ${projectFailed} failed` + (projectSkipped ? `, ${projectSkipped} skipped` : ''),
  );
  for (const result of brokenFiles) lines.push(`    could not run ${relative(root, result.name)}: ${(result.message ?? '').split('\n')[0]}`);
  for (const result of report.testResults) {
    for (const assertion of result.assertionResults) {
      if (assertion.status === 'failed') lines.push(`    FAIL ${relative(root, result.name)} > ${assertion.fullName}`);
    }
  }
}

console.log('\nTest summary');
for (const line of lines) console.log(line);
if (skipped) console.log(`  ${skipped} skipped`);
if (runStatus !== 0 && failed === 0) {
  failed += 1;
  console.log(`  the run exited with status ${runStatus} without a failed test (build or Nx error)`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
