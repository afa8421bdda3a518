import type { ProjectConfiguration } from '@nx/devkit';
import { CONFIG_KEY, type ProjectImageConfig } from './options';

export const IMAGE_EXECUTOR = '@tessera/nx:image';

/** The `"tessera"` block of a project, as the plugin surfaced it in `metadata.tessera` (or as read from project.json). */
export function readProjectImageConfig(project: Pick<ProjectConfiguration, 'metadata'> | undefined): ProjectImageConfig | undefined {
  const fromMetadata = project?.metadata?.[CONFIG_KEY] as ProjectImageConfig | undefined;
  const fromProjectJson = (project as Record<string, unknown> | undefined)?.[CONFIG_KEY] as ProjectImageConfig | undefined;
  return fromMetadata ?? fromProjectJson;
}

/** True when the project has a target run by the Tessera image executor. */
export function hasImageTarget(project: Pick<ProjectConfiguration, 'targets'> | undefined, targetName: string): boolean {
  return project?.targets?.[targetName]?.executor === IMAGE_EXECUTOR;
}
