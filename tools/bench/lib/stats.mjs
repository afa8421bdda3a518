export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export const seconds = (ms) => (ms / 1000).toFixed(2);
export const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1);
export const ratio = (value, reference) => (reference > 0 ? `${(value / reference).toFixed(2)}×` : 'n/a');
