// BENCH_EXPERIMENT_ENV: settings added to every spotsnap attempt of a benchmark run (a JSON object of strings), to measure one change of setting against the same limits.
const NAME = 'BENCH_EXPERIMENT_ENV';

/** The settings, checked: a clear error names what is wrong, before anything is measured. */
export function experimentEnv(raw: string | undefined = process.env[NAME]): Record<string, string> {
  if (raw === undefined || raw === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error(`${NAME}=${JSON.stringify(raw)} is not JSON: give an object of settings, e.g. {"SPOTSNAP_PACKS_IN_FLIGHT":"8"}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || !Object.values(parsed).every((v) => typeof v === 'string')) {
    throw new Error(`${NAME}=${JSON.stringify(raw)} is not an object of string values, e.g. {"SPOTSNAP_PACKS_IN_FLIGHT":"8"}`);
  }
  return parsed as Record<string, string>;
}
