import type { NxJsonConfiguration } from '@nx/devkit';
import type { TesseraPluginOptions } from './options';

const PLUGIN_SPECIFIERS = ['@tessera/nx/plugin', '@tessera/nx'];

/** True for an nx.json `plugins` entry that loads this plugin. */
export function isTesseraPluginEntry(entry: NonNullable<NxJsonConfiguration['plugins']>[number]): boolean {
  const specifier = typeof entry === 'string' ? entry : entry.plugin;
  return PLUGIN_SPECIFIERS.includes(specifier);
}

/** Options of the first Tessera entry in nx.json `plugins` (empty when registered without options or not at all). */
export function readPluginOptions(nxJson: NxJsonConfiguration | null | undefined): TesseraPluginOptions {
  const entry = nxJson?.plugins?.find(isTesseraPluginEntry);
  return entry && typeof entry !== 'string' ? ((entry.options ?? {}) as TesseraPluginOptions) : {};
}
