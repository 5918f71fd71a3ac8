// Reads one variable of the table: unset or blank means its default, a bad value is reported with what it should be.
import type { ReportProblem } from './config-types.ts';
import type { EnvVarSpec } from './env-vars.ts';

/**
 * The variable's value: its default when unset or blank (a required one is reported then), else its parsed value;
 * a value not of the expected form is reported and read as undefined.
 */
export function readVariable<T, D extends T | undefined>(env: NodeJS.ProcessEnv, spec: EnvVarSpec<T, D>, bad: ReportProblem): T | D | undefined {
  const raw = env[spec.name];
  if (raw === undefined || raw.trim() === '') {
    if (spec.required) bad(spec.name, spec.expected);
    return spec.defaultValue;
  }
  const value = spec.parse(raw);
  if (value === undefined) bad(spec.name, spec.expected);
  return value;
}

/** The variable's value where it is good, else its default: for reports on a configuration that is not valid as a whole. */
export function settingOrDefault<T, D extends T | undefined>(env: NodeJS.ProcessEnv, spec: EnvVarSpec<T, D>): T | D {
  const raw = env[spec.name];
  return (raw === undefined || raw.trim() === '' ? undefined : spec.parse(raw)) ?? spec.defaultValue;
}
