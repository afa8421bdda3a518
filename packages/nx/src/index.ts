export * from './plugins/options';
export { createNodes, createNodesV2, createNodesForRoot, PLUGIN_NAME, SYNC_GENERATOR } from './plugins/plugin';
export * from './plugins/dependencies';
export * from './plugins/dockerfile-from';
export * from './plugins/project-config';
export * from './plugins/read-plugin-options';
export * from './planning/closure';
export * from './planning/layers';
export * from './planning/tags';
export * from './sync/module-block';
export * from './sync/expected-block';
export { initGenerator } from './generators/init/init';
export { configurationGenerator, detectProjectRuntime, writeProjectImageConfig, DEFAULT_BASE_IMAGES } from './generators/configuration/configuration';
export { default as syncGenerator, syncModuleBlocks } from './generators/sync/sync';
export { default as imageExecutor, resolveImageRequest, buildTask, loadProjectFiles } from './executors/image/impl';
export { default as imageBatchExecutor } from './executors/image/batch';
export {
  buildProjectImage,
  isReproducible,
  layeredConfig,
  multiPlatformDockerfileMessage,
  targetPlatforms,
  pinFromLines,
  shouldPush,
  type BuildServices,
  type ImageBuildReport,
  type ImageLayerReport,
  type ImagePlatformReport,
  type ImageStatus,
  type ProjectImageRequest,
} from './executors/image/build';
export { BuildSession, canonicalRepository, type BuildSessionOptions, type UploadStats } from './executors/image/session';
export { hashParts, imageInputHash, tesseraVersion, type ImageInputs } from './executors/image/input-hash';
export { concreteLayers, workspacePackageLinks, type ConcreteLayer, type ProjectFiles } from './executors/image/layer-sources';
export { imageCacheTag, LocalCache, layoutHasTags } from './executors/image/caches';
export { batchTable, formatBytes, progressLine, summaryLine } from './executors/image/summary';
export type { ImageExecutorOptions } from './executors/image/schema';
