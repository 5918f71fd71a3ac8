// The agent's JSON log lines as the tests and the benchmarks read them: found by event, waited on by pattern.
import { LogEvent, type LogEventName } from '../../agent/shared/log-events.ts';

/** One line of the agent's log: its `event` (agent/shared/log-events.ts) is what tests key on; `msg` is for people. */
export type AgentLine = Record<string, unknown> & { level: string; event?: LogEventName; msg: string };

/** The agent's JSON log lines in a container's stderr (other lines are the task's own). */
export function agentLog(stderr: string): AgentLine[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes('"component":"spotsnap"'))
    .map((line) => JSON.parse(line) as AgentLine);
}

/** The events of the agent's lines, in order. */
export function agentEvents(stderr: string): Array<LogEventName | undefined> {
  return agentLog(stderr).map((l) => l.event);
}

/** The agent's first line of an event, if any. */
export function agentEvent(stderr: string, event: LogEventName): AgentLine | undefined {
  return agentLog(stderr).find((l) => l.event === event);
}

/** The agent's committed checkpoints of one kind ('final' or 'background'), in order. */
export function committedCheckpoints(stderr: string, kind: 'final' | 'background'): AgentLine[] {
  return agentLog(stderr).filter((l) => l.event === LogEvent.checkpointCommitted && l.checkpoint === kind);
}

/** A raw log line of the event, for waits on a container's log. */
export function eventLine(event: LogEventName): RegExp {
  return new RegExp(`"event":"${event.replace(/\./g, '\\.')}"`);
}

/** A raw log line of a checkpoint's event, for one kind of checkpoint ('final' or 'background'). */
export function checkpointEventLine(kind: 'final' | 'background', event: LogEventName): RegExp {
  return new RegExp(`"checkpoint":"${kind}"[^\\n]*${eventLine(event).source}`);
}

/** The events of a start from scratch: after snapshots that could not be restored, or with none to restore. */
export const FRESH_START_EVENTS: readonly LogEventName[] = [LogEvent.restoreFellBack, LogEvent.taskFreshStart];
