import type { ImageBuildReport } from './build';

/** `1.5 kB`, `3.2 MB`: decimal units, as registries and docker print sizes. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * One line per image: project, outcome, layers rebuilt of total, platforms (when several), bytes uploaded,
 * digest (an index's, for several platforms), time.
 * `api: built, layers 1/5 rebuilt, 2.1 kB uploaded, sha256:0123456789ab, 1.2 s`
 * `api: built, layers 1/5 rebuilt, 2 platforms, 2.1 kB uploaded, sha256:0123456789ab, 1.2 s`
 */
export function summaryLine(report: ImageBuildReport): string {
  const parts = [
    `${report.project}: ${report.status}`,
    report.mode === 'layered' ? `layers ${report.layersRebuilt}/${report.layersTotal} rebuilt` : 'dockerfile',
    ...(report.platforms && report.platforms.length > 1 ? [`${report.platforms.length} platforms`] : []),
    report.pushed ? `${formatBytes(report.bytesUploaded)} uploaded` : 'oci layout',
    report.digest ? report.digest.slice(0, 'sha256:'.length + 12) : 'no digest',
    `${(report.durationMs / 1000).toFixed(1)} s`,
  ];
  return parts.join(', ') + (report.error ? `\n  ${report.error}` : '');
}

/**
 * The table a batch ends with: one row per image in the order given, then the totals.
 * Skipped tasks (a dependency failed) have no report and are counted from `skipped`.
 */
export function batchTable(reports: readonly ImageBuildReport[], skipped: readonly string[] = []): string {
  const header = ['image', 'status', 'layers rebuilt', 'uploaded', 'digest', 'time'];
  const rows = [
    ...reports.map((report) => [
      report.project,
      report.status,
      report.mode === 'layered' ? `${report.layersRebuilt}/${report.layersTotal}` : 'dockerfile',
      report.pushed ? formatBytes(report.bytesUploaded) : 'oci layout',
      report.digest ? report.digest.slice(0, 'sha256:'.length + 12) : '-',
      `${(report.durationMs / 1000).toFixed(1)} s`,
    ]),
    ...skipped.map((project) => [project, 'skipped', '-', '-', '-', '-']),
  ];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  const count = (status: string) => reports.filter((report) => report.status === status).length;
  const uploaded = reports.reduce((sum, report) => sum + report.bytesUploaded, 0);
  const totals = [`${count('built')} built`, `${count('unchanged')} unchanged`, `${count('failed')} failed`, ...(skipped.length ? [`${skipped.length} skipped`] : [])];
  return [
    line(header),
    line(widths.map((width) => '-'.repeat(width))),
    ...rows.map(line),
    '',
    `${reports.length + skipped.length} images: ${totals.join(', ')}; ${formatBytes(uploaded)} uploaded`,
  ].join('\n');
}

/** `images 3/12 done, 2 running: api, worker`: the progress line a batch keeps updated on a terminal. */
export function progressLine(done: number, total: number, running: readonly string[]): string {
  return `images ${done}/${total} done${running.length ? `, ${running.length} running: ${running.join(', ')}` : ''}`;
}
