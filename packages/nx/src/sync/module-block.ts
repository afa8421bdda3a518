export const MODULE_BLOCK_BEGIN = '# tessera:modules begin';
export const MODULE_BLOCK_END = '# tessera:modules end';

/** The marked Dockerfile block that copies each module of the closure to its workspace-relative path. */
export function renderModuleBlock(closure: readonly string[], roots: Readonly<Record<string, string>>): string {
  const copies = closure.map((name) => {
    const root = roots[name];
    if (root === undefined) throw new Error(`No project root known for module "${name}".`);
    const path = root === '' || root === '.' ? '.' : root;
    return `COPY ${path} ./${path === '.' ? '' : path}`;
  });
  return [MODULE_BLOCK_BEGIN, ...copies, MODULE_BLOCK_END].join('\n');
}

interface BlockLocation {
  start: number;
  end: number;
}

/** Line indexes of the begin and end markers, or undefined when the Dockerfile has no block. */
function locateBlock(lines: readonly string[]): BlockLocation | undefined {
  const start = lines.findIndex((line) => line.trim() === MODULE_BLOCK_BEGIN);
  if (start < 0) return undefined;
  const end = lines.findIndex((line, index) => index > start && line.trim() === MODULE_BLOCK_END);
  if (end < 0) throw new Error(`The Dockerfile has "${MODULE_BLOCK_BEGIN}" but no "${MODULE_BLOCK_END}".`);
  return { start, end };
}

export function hasModuleBlock(dockerfileText: string): boolean {
  return locateBlock(dockerfileText.split(/\r?\n/)) !== undefined;
}

/** True when the Dockerfile's block equals `expected` (trailing spaces and indentation ignored). */
export function isModuleBlockInSync(dockerfileText: string, expected: string): boolean {
  const lines = dockerfileText.split(/\r?\n/);
  const location = locateBlock(lines);
  if (!location) return false;
  const current = lines.slice(location.start, location.end + 1).map((line) => line.trim());
  const wanted = expected.split(/\r?\n/).map((line) => line.trim());
  return current.length === wanted.length && current.every((line, index) => line === wanted[index]);
}

/** The Dockerfile with its block replaced by `block`; unchanged when it has no block. */
export function replaceModuleBlock(dockerfileText: string, block: string): string {
  const newline = dockerfileText.includes('\r\n') ? '\r\n' : '\n';
  const lines = dockerfileText.split(/\r?\n/);
  const location = locateBlock(lines);
  if (!location) return dockerfileText;
  lines.splice(location.start, location.end - location.start + 1, ...block.split('\n'));
  return lines.join(newline);
}

/** The error the executor raises for a stale block. */
export function staleModuleBlockMessage(projectName: string, dockerfile: string): string {
  return `The "${MODULE_BLOCK_BEGIN}" block in ${dockerfile} does not match the module closure of "${projectName}". Run \`nx sync\` to update it.`;
}
