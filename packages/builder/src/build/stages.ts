import { TesseraError } from '@tessera/oci';
import { expandWord, type Dockerfile, type Stage } from '../dockerfile/index';

/**
 * The stages a target needs, in build order: its base stages, the stages it copies from, and the
 * stages its RUN mounts read. With `skipUnused` false, every stage up to the target is built (Kaniko's default).
 */
export function stagesToBuild(dockerfile: Dockerfile, target: Stage, globalArgs: Map<string, string>, skipUnused: boolean): Stage[] {
  if (!skipUnused) return dockerfile.stages.filter((s) => s.index <= target.index);
  const needed = new Set<number>();
  const visit = (stage: Stage) => {
    if (needed.has(stage.index)) return;
    needed.add(stage.index);
    for (const name of stageReferences(stage, dockerfile, globalArgs)) {
      const dep = findStage(dockerfile, name, stage.index);
      if (dep) visit(dep);
    }
  };
  visit(target);
  return dockerfile.stages.filter((s) => needed.has(s.index));
}

function stageReferences(stage: Stage, dockerfile: Dockerfile, globalArgs: Map<string, string>): string[] {
  const names = [expandWord(stage.baseName, (n) => globalArgs.get(n), { escapeToken: dockerfile.directives.escape })];
  for (const instruction of stage.instructions) {
    if (instruction.kind === 'COPY' && instruction.from) names.push(instruction.from);
    if (instruction.kind === 'RUN') for (const mount of instruction.mounts) if (mount.from) names.push(mount.from);
  }
  return names;
}

function findStage(dockerfile: Dockerfile, name: string, before: number): Stage | undefined {
  if (/^\d+$/.test(name)) {
    const index = Number(name);
    if (index >= before) throw new TesseraError(`stage ${index} is referenced before it is defined`, 'UNKNOWN_STAGE');
    return dockerfile.stages[index];
  }
  const lower = name.toLowerCase();
  return dockerfile.stages.find((s) => s.name === lower && s.index < before);
}
