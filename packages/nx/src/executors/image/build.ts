import type { LayerPlan } from '../../planning/layers';
import type { ImageExecutorOptions } from './schema';

/** What the executor asks the build engine for. */
export interface ProjectImageRequest {
  projectName: string;
  workspaceRoot: string;
  /** Full repository, e.g. `reg.local/team/api`. */
  repository: string;
  /** Rendered tags. */
  tags: string[];
  /** Nx's hash of the task inputs, when the task runner computed one. */
  inputsHash?: string;
  /** Dockerfile mode: workspace-relative Dockerfile, the workspace root as context. */
  dockerfile?: string;
  /** Layered mode: the layer plan. */
  plan?: LayerPlan;
}

/** The seam to @tessera/builder. The lead wires it; until then it refuses to pretend. */
export async function buildProjectImage(request: ProjectImageRequest, options: ImageExecutorOptions): Promise<void> {
  void request;
  void options;
  throw new Error('not wired yet');
}
