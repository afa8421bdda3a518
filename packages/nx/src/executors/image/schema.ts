import type { TesseraPluginOptions } from '../../plugins/options';

export interface ImageExecutorOptions extends Omit<TesseraPluginOptions, 'targetName'> {
  /** Workspace-relative Dockerfile; absent means layered mode. */
  dockerfile?: string;
  /** Tag templates; default the project's `"tessera".tags`, then `latest`. */
  tags?: string[];
  /** Image repository; default the project's `"tessera".repository`, then `<registry>/<project>`. */
  repository?: string;
  /** Dockerfile mode: `--build-arg` values (hashed into the image input hash). */
  buildArgs?: Record<string, string>;
  /** Dockerfile mode: the stage to build (`--target`); default the last. */
  target?: string;
}
