export { chooseSnapshotter, hasGetfattr, type SnapshotterChoice } from './choose';
export { diffTree, hasChanged } from './diff';
export { discardOverlay, finishOverlay, prepareOverlay, readOpaqueDirectories, withOverlay, type OverlayWorkspace } from './overlay';
export { scanTree, type FileState, type FileType, type ScanMode, type ScanOptions, type TreeState } from './scan';
