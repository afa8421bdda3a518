import { BUILD_FLAGS, KANIKO_NOT_APPLICABLE } from './build';

const STATUS: Record<string, string> = {
  same: 'same',
  mapped: 'mapped',
  accepted: 'accepted, no effect',
  'not-applicable': 'not applicable',
};

/** The Kaniko flag table of docs/migrating-from-kaniko.md, generated from the flag declarations so the two cannot drift. */
export function kanikoFlagTable(): string {
  const rows = ['| Kaniko flag | Tessera | notes |', '| --- | --- | --- |'];
  for (const flag of BUILD_FLAGS) {
    if (!flag.kaniko) continue;
    const names = [`--${flag.name}`, ...(flag.aliases ?? []).map((a) => `--${a}`), ...(flag.short ? [`-${flag.short}`] : [])].join(', ');
    rows.push(`| \`${names}\` | ${STATUS[flag.kaniko.status]} | ${flag.kaniko.note ?? flag.description} |`);
  }
  for (const [name, note] of Object.entries(KANIKO_NOT_APPLICABLE)) rows.push(`| \`--${name}\` | ${STATUS['not-applicable']} | ${note} |`);
  return rows.join('\n');
}
