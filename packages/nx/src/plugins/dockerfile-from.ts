/** One `FROM` instruction that names an image (not `scratch`, not an earlier stage, no variables). */
export interface FromImage {
  /** The image reference as written, e.g. `registry.local/api:1.0`. */
  image: string;
  /** 1-based line of the `FROM` keyword. */
  line: number;
  /** The stage name given with `AS`, lower-cased. */
  stage?: string;
}

const ESCAPE_DIRECTIVE = /^#\s*escape\s*=\s*([\\`])\s*$/i;

/**
 * Minimal FROM extraction for the project graph: logical lines (continuations joined),
 * `--flag=value` options skipped, `AS name` recorded, references to earlier stages and
 * references with variables skipped. The full parser lives in @tessera/builder.
 */
export function parseFromImages(dockerfileText: string): FromImage[] {
  const lines = dockerfileText.split(/\r?\n/);
  let escape = '\\';
  // Parser directives are only honoured before the first instruction or comment that is not a directive.
  for (const raw of lines) {
    const match = ESCAPE_DIRECTIVE.exec(raw.trim());
    if (match) {
      escape = match[1];
      break;
    }
    if (!/^#\s*\w+\s*=/.test(raw.trim())) break;
  }

  const images: FromImage[] = [];
  const stages = new Set<string>();
  let index = 0;
  while (index < lines.length) {
    const startLine = index + 1;
    let logical = '';
    // Join continuation lines.
    for (;;) {
      const current = lines[index++] ?? '';
      const isComment = /^\s*#/.test(current);
      if (logical === '' && isComment) break;
      // BuildKit drops comment and empty lines inside a continuation.
      if (isComment || current.trim() === '') {
        if (index >= lines.length) break;
        continue;
      }
      const trimmedEnd = current.replace(/\s+$/, '');
      if (trimmedEnd.endsWith(escape) && index < lines.length) {
        logical += trimmedEnd.slice(0, -1) + ' ';
        continue;
      }
      logical += current;
      break;
    }
    const words = logical.trim().split(/\s+/);
    if (words[0]?.toUpperCase() !== 'FROM') continue;
    const args = words.slice(1).filter((word) => !word.startsWith('--'));
    const image = args[0];
    const stage = args.length >= 3 && args[1].toUpperCase() === 'AS' ? args[2].toLowerCase() : undefined;
    if (image && !image.includes('$') && image.toLowerCase() !== 'scratch' && !stages.has(image.toLowerCase())) {
      images.push({ image, line: startLine, ...(stage ? { stage } : {}) });
    }
    if (stage) stages.add(stage);
  }
  return images;
}

/** The repository part of an image reference: without `@digest` and without `:tag`. */
export function repositoryOf(reference: string): string {
  const withoutDigest = reference.split('@')[0];
  const lastSlash = withoutDigest.lastIndexOf('/');
  const lastColon = withoutDigest.lastIndexOf(':');
  return lastColon > lastSlash ? withoutDigest.slice(0, lastColon) : withoutDigest;
}
