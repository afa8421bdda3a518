import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const START = (id) => `<!-- bench:${id} -->`;
const END = (id) => `<!-- /bench:${id} -->`;

/** Prints a table as aligned text for the terminal. */
export function printTable(headers, rows) {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => String(row[i]).length)));
  const line = (cells) => cells.map((cell, i) => String(cell).padEnd(widths[i])).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

export function markdownTable(headers, rows) {
  return [`| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

/** One line of when, where and with what a section was measured. */
export function environmentBlock({ machine, versions, date, options, load }) {
  const loadLine = load
    ? [`Load average (1/5/15 min) when the section finished: ${load.map((l) => l.toFixed(2)).join(' / ')}${load[1] > machine.cores ? ` — above the ${machine.cores} cores: other work shared the machine, so times are noisy (medians of ${options.runs} runs)` : ''}.`]
    : [];
  return [
    `Measured ${date} on ${machine.distro}, Linux ${machine.kernel}, ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB memory; --scale ${options.scale}, --runs ${options.runs}, --seed ${options.seed}.`,
    `Tools: ${Object.entries(versions).map(([name, version]) => `${name} ${version}`).join('; ')}.`,
    ...loadLine,
  ].join('\n');
}

/**
 * Rewrites the scenario sections measured now and keeps the others as they were, in `order`
 * (scenario ids; a section measured at another scale than 1 is `ID@SCALE`).
 * Sections are delimited by HTML comments so a later run can replace one without touching the rest.
 */
export function writeDocs(docPath, header, sections, order) {
  const previous = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '';
  const kept = new Map();
  for (const [, id] of previous.matchAll(/<!-- bench:(\S+) -->/g)) {
    const start = previous.indexOf(START(id));
    const end = previous.indexOf(END(id));
    if (end > start) kept.set(id, previous.slice(start + START(id).length, end).trim());
  }
  for (const [id, markdown] of sections) kept.set(id, markdown.trim());
  // A scenario's sections at several scales (`S1-S5@0.05`, `S1-S5`, `S1-S5@4`) sit together, smallest scale first.
  // A labelled section (`S1-S5@1:buildah`) follows the unlabelled one of its scale.
  const [scaleOf, labelOf] = [(id) => Number(id.split('@')[1]?.split(':')[0] ?? 1), (id) => id.split(':')[1] ?? ''];
  const ids = order.flatMap((base) => [...kept.keys()].filter((id) => id.split('@')[0] === base).sort((a, b) => scaleOf(a) - scaleOf(b) || labelOf(a).localeCompare(labelOf(b))));
  const body = ids.map((id) => `${START(id)}\n${kept.get(id)}\n${END(id)}`);
  writeFileSync(docPath, `${header.trim()}\n\n${body.join('\n\n')}\n`);
}
