import { formatFiles, readNxJson, updateNxJson, type Tree } from '@nx/devkit';
import { DEFAULT_TARGET_NAME, type TesseraPluginOptions } from '../../plugins/options';
import { PLUGIN_NAME } from '../../plugins/plugin';
import { isTesseraPluginEntry } from '../../plugins/read-plugin-options';
import type { InitGeneratorSchema } from './schema';

/** `@tessera/nx:init`: registers the plugin in nx.json. Running it again changes nothing. */
export async function initGenerator(tree: Tree, schema: InitGeneratorSchema = {}): Promise<void> {
  const nxJson = readNxJson(tree) ?? {};
  if (!(nxJson.plugins ?? []).some(isTesseraPluginEntry)) {
    const options: TesseraPluginOptions = { targetName: schema.targetName ?? DEFAULT_TARGET_NAME };
    if (schema.registry) options.registry = schema.registry;
    nxJson.plugins = [...(nxJson.plugins ?? []), { plugin: PLUGIN_NAME, options }];
    updateNxJson(tree, nxJson);
  }
  if (!schema.skipFormat) await formatFiles(tree);
}

export default initGenerator;
