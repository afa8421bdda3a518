import type { TesseraPluginOptions } from '../../plugins/options';

export interface ImageExecutorOptions extends Omit<TesseraPluginOptions, 'targetName'> {
  /** Workspace-relative Dockerfile; absent means layered mode. */
  dockerfile?: string;
  /** Tag templates; default the project's `"tessera".tags`, then `latest`. */
  tags?: string[];
}
