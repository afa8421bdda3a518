/** Flags shared by run.mjs and generate.mjs: `--name value`, `--name=value`, and bare `--flag` as true. */
export function parseArgs(argv, defaults) {
  const options = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    if (!(name in defaults)) throw new Error(`unknown flag --${name}; known: ${Object.keys(defaults).map((k) => `--${k}`).join(' ')}`);
    const takesValue = typeof defaults[name] !== 'boolean';
    const value = inline ?? (takesValue ? argv[++i] : 'true');
    if (value === undefined) throw new Error(`--${name} needs a value`);
    options[name] = typeof defaults[name] === 'number' ? Number(value) : typeof defaults[name] === 'boolean' ? value !== 'false' : value;
    if (Number.isNaN(options[name])) throw new Error(`--${name} takes a number`);
  }
  return options;
}
