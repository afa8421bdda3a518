import { cpus } from 'node:os';
import { logger, type ExecutorContext, type TaskGraph } from '@nx/devkit';
import { Limiter } from '@tessera/oci';
import type { ImageBuildReport } from './build';
import { buildTask, loadProjectFiles, sessionOptions } from './impl';
import type { ImageExecutorOptions } from './schema';
import { BuildSession } from './session';
import { summaryLine } from './summary';

interface BatchTaskResult {
  success: boolean;
  terminalOutput: string;
  startTime: number;
  endTime: number;
  status: 'success' | 'failure' | 'skipped';
}

/**
 * Batch `@tessera/nx:image`: the whole task graph in one process. Tasks start once their dependencies
 * are done, a few at a time; they share one registry client, base lookups and blob uploads. A failed
 * image fails its dependants (skipped) but not its siblings.
 */
export default async function imageBatchExecutor(
  taskGraph: TaskGraph,
  inputs: Record<string, ImageExecutorOptions>,
  overrides: ImageExecutorOptions,
  context: ExecutorContext,
): Promise<Record<string, BatchTaskResult>> {
  void overrides; // Nx already merged them into each task's options, coerced by the schema.
  const taskIds = Object.keys(taskGraph.tasks);
  const first = inputs[taskIds[0]];
  const session = new BuildSession(sessionOptions(first));
  const limiter = new Limiter(Math.max(1, Math.min(4, cpus().length)));
  const projectFiles = await loadProjectFiles(context.projectGraph, context.root);
  const results: Record<string, BatchTaskResult> = {};
  const running = new Map<string, Promise<boolean>>();

  const run = (taskId: string): Promise<boolean> => {
    let promise = running.get(taskId);
    if (promise) return promise;
    promise = (async () => {
      const dependencies = (taskGraph.dependencies[taskId] ?? []).map(edgeId).filter((id) => taskGraph.tasks[id]);
      const outcomes = await Promise.all(dependencies.map(run));
      const startTime = Date.now();
      const failedDependency = dependencies.find((_id, index) => !outcomes[index]);
      if (failedDependency) {
        const terminalOutput = `${taskGraph.tasks[taskId].target.project}: skipped, because ${failedDependency} failed`;
        logger.error(terminalOutput);
        results[taskId] = { success: false, terminalOutput, startTime, endTime: Date.now(), status: 'skipped' };
        return false;
      }
      const release = await limiter.acquire();
      let report: ImageBuildReport;
      try {
        const task = taskGraph.tasks[taskId];
        const taskContext: ExecutorContext = { ...context, projectName: task.target.project, targetName: task.target.target, taskGraph };
        report = await buildTask(inputs[taskId], taskContext, session, projectFiles);
      } finally {
        release();
      }
      const line = summaryLine(report);
      if (report.status === 'failed') logger.error(line);
      else logger.info(line);
      const ok = report.status !== 'failed';
      results[taskId] = { success: ok, terminalOutput: line, startTime, endTime: Date.now(), status: ok ? 'success' : 'failure' };
      return ok;
    })();
    running.set(taskId, promise);
    return promise;
  };

  try {
    await Promise.all(taskIds.map(run));
  } finally {
    session.close();
  }
  return results;
}

/** Nx 24 edges are `{ id }`; older task graphs list plain ids. */
function edgeId(edge: string | { id: string }): string {
  return typeof edge === 'string' ? edge : edge.id;
}
