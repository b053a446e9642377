// Command-line options for the scripts and benchmarks: `--name value`, `--name=value`, `--flag`.
// Every mistake is a UsageError that says what to fix; the caller prints it with its usage.

export class UsageError extends Error {}

/**
 * @param {string[]} argv
 * @param {{ numbers?: Record<string, { def: number, min: number, max: number, help: string }>,
 *   strings?: Record<string, { def?: string | null, oneOf?: string[] }>,
 *   flags?: Record<string, string> }} spec
 * @returns {Record<string, any> & { help: boolean }}
 */
export function parseOptions(argv, { numbers = {}, strings = {}, flags = {} }) {
  const o = { help: false };
  for (const [k, v] of Object.entries(numbers)) o[k] = v.def;
  for (const [k, v] of Object.entries(strings)) o[k] = v.def ?? null;
  for (const k of Object.keys(flags)) o[k] = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      o.help = true;
      continue;
    }
    const m = /^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(.*))?$/.exec(arg);
    if (!m) throw new UsageError(`unexpected argument "${arg}"`);
    const name = m[1];
    if (Object.hasOwn(flags, name)) {
      o[name] = true;
      continue;
    }
    const raw = m[2] ?? argv[++i];
    if (raw === undefined) throw new UsageError(`--${name} needs a value`);
    if (Object.hasOwn(strings, name)) {
      const { oneOf } = strings[name];
      if (oneOf && !oneOf.includes(raw)) throw new UsageError(`--${name} must be one of ${oneOf.join(', ')}`);
      o[name] = raw;
      continue;
    }
    const spec = Object.hasOwn(numbers, name) ? numbers[name] : undefined;
    if (!spec) throw new UsageError(`unknown option --${name}`);
    const n = Number(raw);
    if (raw === '' || !Number.isFinite(n) || n < spec.min || n > spec.max) {
      throw new UsageError(`--${name} must be a number from ${spec.min} to ${spec.max}, got "${raw}"`);
    }
    o[name] = n;
  }
  return o;
}
