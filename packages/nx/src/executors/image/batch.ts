import { cpus } from 'node:os';
import type { ExecutorContext, TaskGraph } from '@nx/devkit';
import { logger } from '../../nx-runtime';
import { Limiter } from '@tessera/oci';
import type { ImageBuildReport } from './build';
import { buildTask, loadProjectFiles, sessionOptions } from './impl';
import type { ImageExecutorOptions } from './schema';
import { BuildSession } from './session';
import { batchTable, progressLine, summaryLine } from './summary';

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
  const reports: ImageBuildReport[] = [];
  const skipped: string[] = [];
  const progress = new Progress(taskIds.length);

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
        progress.clear();
        logger.error(terminalOutput);
        skipped.push(taskGraph.tasks[taskId].target.project);
        progress.finished();
        results[taskId] = { success: false, terminalOutput, startTime, endTime: Date.now(), status: 'skipped' };
        return false;
      }
      const release = await limiter.acquire();
      let report: ImageBuildReport;
      const task = taskGraph.tasks[taskId];
      progress.started(task.target.project);
      try {
        const taskContext: ExecutorContext = { ...context, projectName: task.target.project, targetName: task.target.target, taskGraph };
        report = await buildTask(inputs[taskId], taskContext, session, projectFiles);
      } finally {
        release();
      }
      progress.clear();
      reports.push(report);
      progress.finished(task.target.project);
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
    progress.clear();
    session.close();
  }
  if (taskIds.length > 1) logger.info(`\n${batchTable(reports, skipped)}`);
  return results;
}

/** A progress line on a terminal (stderr), rewritten in place; nothing when output is not a terminal. */
class Progress {
  private done = 0;
  private readonly running: string[] = [];
  private readonly enabled = Boolean(process.stderr.isTTY);

  constructor(private readonly total: number) {}

  started(project: string): void {
    this.running.push(project);
    this.draw();
  }

  finished(project?: string): void {
    this.done++;
    if (project) this.running.splice(this.running.indexOf(project), 1);
    this.draw();
  }

  clear(): void {
    if (this.enabled) process.stderr.write('\r\x1b[K');
  }

  private draw(): void {
    if (this.enabled) process.stderr.write(`\r\x1b[K${progressLine(this.done, this.total, this.running)}`.slice(0, (process.stderr.columns || 80) + 4));
  }
}

/** Nx 24 edges are `{ id }`; older task graphs list plain ids. */
function edgeId(edge: string | { id: string }): string {
  return typeof edge === 'string' ? edge : edge.id;
}
