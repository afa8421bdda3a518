import type { TestProject } from 'vitest/node';
import { startRegistry, type RunningRegistry } from './registry';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `127.0.0.1:PORT` of the plain-HTTP registry shared by the whole test run. */
    registryHost: string;
  }
}

let registry: RunningRegistry | undefined;

/** Starts one plain registry for the run; teardown stops it even when tests fail. */
export async function setup(project: TestProject): Promise<void> {
  registry = await startRegistry();
  project.provide('registryHost', registry.host);
}

export async function teardown(): Promise<void> {
  await registry?.stop();
}
