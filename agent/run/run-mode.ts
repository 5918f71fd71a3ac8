// How `spotsnap run` runs the task, decided before anything runs: transparently, not at all (strict), or with snapshots.
import type { Logger } from 'pino';
import { CriuCli, type CriuVersion } from '../../criu-bridge/criu-cli.ts';
import { describeProblems, type AgentConfig, type ConfigResult } from '../config/config.ts';
import { ExitCode } from '../shared/exit-codes.ts';
import { LogEvent } from '../shared/log-events.ts';
import { MIN_CRIU_VERSION } from '../config/criu-requirement.ts';

/** How the agent will run the task. */
export type RunMode =
  | { kind: 'transparent'; why: string }
  | { kind: 'refuse'; exitCode: number; why: string }
  | { kind: 'snapshots'; config: AgentConfig; criuVersion: CriuVersion };

/** Asks the CRIU at a path for its version; rejects when it cannot run. */
export type CriuVersionProbe = (criuPath: string) => Promise<CriuVersion>;

/** The oldest CRIU spotsnap works with (4.0), as CriuVersion numbers it. */

const criuVersionOf: CriuVersionProbe = (criuPath) => new CriuCli(criuPath).version();

/**
 * Fail-open unless SPOTSNAP_STRICT=true: an invalid configuration or an unusable CRIU runs the task without
 * snapshots (logged as an error), or, when strict, refuses to start it with the configuration-invalid code.
 */
export async function decideMode(result: ConfigResult, log: Logger, probe: CriuVersionProbe = criuVersionOf): Promise<RunMode> {
  if (result.kind === 'disabled') return { kind: 'transparent', why: 'spotsnap is disabled (SPOTSNAP_ENABLED is not true)' };
  if (result.kind === 'invalid') {
    const problems = describeProblems(result.problems);
    if (result.strict)
      return { kind: 'refuse', exitCode: ExitCode.configInvalid, why: `invalid configuration; SPOTSNAP_STRICT=true, so the task is not started:\n${problems}` };
    log.error({ event: LogEvent.configInvalid, problems: result.problems }, `invalid configuration; the task runs without snapshots:\n${problems}`);
    return { kind: 'transparent', why: 'invalid configuration' };
  }
  const { config } = result;
  try {
    const criuVersion = await probe(config.criuPath);
    if (criuVersion.number < MIN_CRIU_VERSION.number)
      throw new Error(`CRIU ${criuVersion.text} is too old: spotsnap needs CRIU ${MIN_CRIU_VERSION.text} or newer`);
    return { kind: 'snapshots', config, criuVersion };
  } catch (error) {
    const why = `CRIU is not usable: ${error instanceof Error ? error.message : String(error)}`;
    if (config.strict) return { kind: 'refuse', exitCode: ExitCode.configInvalid, why: `${why}; SPOTSNAP_STRICT=true, so the task is not started` };
    log.error({ event: LogEvent.criuUnusable }, `${why}; the task runs without snapshots`);
    return { kind: 'transparent', why };
  }
}
