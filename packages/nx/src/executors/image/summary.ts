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
