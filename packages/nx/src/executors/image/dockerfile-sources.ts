import { posix } from 'node:path';
import { createIgnoreMatcher, hashFile, loadIgnorePatterns, parseDockerfile, resolveCopySources, type ResolvedSource } from '@tessera/builder';
import { hashParts } from './input-hash';
import type { ProjectFiles } from './layer-sources';

/**
 * Hash of the files a Dockerfile's COPY/ADD read from the workspace that Nx's file map leaves out
 * (gitignored build outputs, generated tarballs), by content. Nx hashes none of them, and in batch mode
 * gives no task hash at all, so without this a changed file would leave the image `unchanged`.
 * Sources with variables, URLs and `COPY --from` are not files of the workspace and are left out.
 */
export async function untrackedSourcesHash(dockerfileText: string, workspaceRoot: string, projectFiles: ProjectFiles | undefined): Promise<string> {
  const tracked = new Set(Object.values(projectFiles ?? {}).flatMap((files) => files.map((file) => file.file)));
  const ignore = createIgnoreMatcher(await loadIgnorePatterns(workspaceRoot));
  const untracked = new Map<string, { kind: string; mode: number; target?: string; path: string }>();
  for (const stage of parseDockerfile(dockerfileText).stages) {
    for (const instruction of stage.instructions) {
      if (instruction.kind !== 'COPY' && instruction.kind !== 'ADD') continue;
      if (instruction.kind === 'COPY' && instruction.from !== undefined) continue;
      const sources = instruction.sources.filter((source) => !source.includes('$') && !/^[a-z][a-z0-9+.-]*:\/\//i.test(source) && !source.startsWith('git@'));
      for (const source of sources) {
        let resolved: ResolvedSource[];
        try {
          resolved = await resolveCopySources({ root: workspaceRoot }, [source], { ignore, excludes: instruction.excludes });
        } catch {
          continue; // A missing source fails the build itself, with the builder's message.
        }
        for (const entry of resolved) {
          const files = entry.contents
            ? entry.contents.map((file) => ({ ...file, path: posix.join(entry.relativePath, file.relativePath) }))
            : [{ ...entry, path: entry.relativePath }];
          for (const file of files) {
            if (tracked.has(file.path) || (file.type !== 'file' && file.type !== 'symlink')) continue;
            untracked.set(file.path, {
              kind: file.type,
              mode: file.stats.mode & 0o7777,
              path: file.absolutePath,
              ...(file.linkTarget !== undefined ? { target: file.linkTarget } : {}),
            });
          }
        }
      }
    }
  }
  const parts: string[] = ['untracked-sources-v1'];
  for (const path of [...untracked.keys()].sort()) {
    const file = untracked.get(path)!;
    parts.push(path, file.kind, file.mode.toString(8), file.kind === 'file' ? await hashFile(file.path) : (file.target ?? ''));
  }
  return hashParts(parts);
}
