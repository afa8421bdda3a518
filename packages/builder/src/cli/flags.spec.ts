import { describe, expect, it } from 'vitest';
import { formatHelp, parseFlags, UsageError, type FlagSpec } from './flags';

const specs: FlagSpec[] = [
  { name: 'destination', short: 'd', type: 'list', description: 'Where to push' },
  { name: 'no-push', type: 'boolean', description: 'Build only' },
  { name: 'cache', type: 'boolean', default: false, description: 'Use the cache' },
  { name: 'dockerfile', short: 'f', type: 'string', default: 'Dockerfile', aliases: ['file'], description: 'The Dockerfile' },
  { name: 'build-arg', type: 'map', valueName: 'KEY=VALUE', description: 'Build argument' },
  { name: 'password', type: 'string', env: 'TEST_PASSWORD', secret: true, description: 'Password' },
];

describe('parseFlags', () => {
  it('accepts --flag value, --flag=value, short flags, camelCase and explicit aliases', () => {
    const flags = parseFlags(['-d', 'a', '--destination=b', 'ctx', '--noPush', '-fother', '--buildArg', 'A=1', '--build-arg=B=x=y'], specs, {});
    expect(flags.list('destination')).toEqual(['a', 'b']);
    expect(flags.boolean('no-push')).toBe(true);
    expect(flags.string('dockerfile')).toBe('other');
    expect(flags.map('build-arg')).toEqual({ A: '1', B: 'x=y' });
    expect(flags.positionals).toEqual(['ctx']);
    expect(parseFlags(['--file', 'F'], specs, {}).string('dockerfile')).toBe('F');
  });

  it('takes booleans as bare flags or =true|false, and applies defaults', () => {
    expect(parseFlags(['--cache=false'], specs, {}).boolean('cache')).toBe(false);
    expect(parseFlags(['--cache=true'], specs, {}).boolean('cache')).toBe(true);
    const defaults = parseFlags([], specs, {});
    expect([defaults.boolean('cache'), defaults.string('dockerfile'), defaults.list('destination'), defaults.map('build-arg')]).toEqual([false, 'Dockerfile', [], {}]);
    expect([...defaults.given]).toEqual([]);
    // a boolean never swallows the next argument
    expect(parseFlags(['--cache', 'false'], specs, {}).positionals).toEqual(['false']);
  });

  it('reads a flag from its environment variable when absent, the command line winning', () => {
    expect(parseFlags([], specs, { TEST_PASSWORD: 's3cret' }).string('password')).toBe('s3cret');
    expect(parseFlags(['--password', 'cli'], specs, { TEST_PASSWORD: 's3cret' }).string('password')).toBe('cli');
  });

  it('stops at --', () => {
    expect(parseFlags(['--', '--cache', '-d'], specs, {}).positionals).toEqual(['--cache', '-d']);
  });

  it('fails with one-line usage errors', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--bogus'], /^unknown flag --bogus$/],
      [['-x'], /^unknown flag -x$/],
      [['--dockerfile'], /^--dockerfile needs a value$/],
      [['--cache=maybe'], /^--cache takes true or false/],
      [['--build-arg', 'NOEQUALS'], /^--build-arg takes KEY=VALUE, not "NOEQUALS"$/],
    ];
    for (const [argv, message] of cases) {
      let error: unknown;
      try {
        parseFlags(argv, specs, {});
      } catch (e) {
        error = e;
      }
      expect(error, argv.join(' ')).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(message);
    }
  });
});

describe('formatHelp', () => {
  it('lists every visible flag with its value name, default and notes, never a secret default', () => {
    const help = formatHelp({ usage: 'tessera build [flags] CONTEXT', description: 'Build an image.', flags: [...specs, { name: 'hidden', type: 'boolean', hidden: true, description: 'x' }] });
    expect(help).toContain('Usage: tessera build [flags] CONTEXT');
    expect(help).toMatch(/-d, --destination VALUE\s+Where to push \(repeatable\)/);
    expect(help).toMatch(/-f, --dockerfile VALUE\s+The Dockerfile \(default Dockerfile\)/);
    expect(help).toMatch(/--build-arg KEY=VALUE\s+Build argument \(repeatable\)/);
    expect(help).toMatch(/--password VALUE\s+Password \(env TEST_PASSWORD\)/);
    expect(help).not.toContain('--hidden');
  });
});
