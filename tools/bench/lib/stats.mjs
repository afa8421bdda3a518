export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export const seconds = (ms) => (ms / 1000).toFixed(2);
export const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1);
/** value / reference, with enough digits that small ratios do not print as 0.00×. */
export const ratio = (value, reference) => {
  if (!(reference > 0)) return 'n/a';
  const r = value / reference;
  return `${r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}×`;
};
