import type { ProjectRuntime } from '../../plugins/options';

export interface ConfigurationGeneratorSchema {
  project: string;
  /** `dockerfile` writes a Dockerfile; `layered` writes a `"tessera"` block and no Dockerfile. */
  mode?: 'dockerfile' | 'layered';
  /** Detected from package.json, pyproject.toml or *.csproj when absent. */
  runtime?: ProjectRuntime;
  base?: string;
  repository?: string;
  skipFormat?: boolean;
}
