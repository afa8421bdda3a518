export { detectIsolation, type IsolationReport, type SandboxIsolation } from './isolation';
export { runInSandbox, sandboxMountTargets, type SandboxMount, type SandboxOptions, type SandboxOverlay, type SandboxResult } from './sandbox';
