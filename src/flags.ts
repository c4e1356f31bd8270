// Command-line flags of `sluice` / `npm start -- ...`, mapped onto the
// environment variables they stand for, so config.ts stays the one place that
// validates settings (a flag wins over its variable). No imports: threadpool.ts
// runs this before anything else is loaded.

const FLAGS: Record<string, string> = {
  '--workers': 'SLUICE_WORKERS',
  '--uv-threadpool-size': 'UV_THREADPOOL_SIZE',
  '--port': 'PORT',
  '--host': 'HOST',
  '--role': 'SLUICE_ROLE',
};

/** `--workers 4` or `--workers=4` → { SLUICE_WORKERS: '4' }. Unknown flags throw. */
export function envFromFlags(argv: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const variable = FLAGS[name];
    if (!variable) throw new Error(`unknown flag ${JSON.stringify(arg)} (known: ${Object.keys(FLAGS).join(', ')})`);
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new Error(`flag ${name} needs a value`);
    env[variable] = value;
  }
  return env;
}
