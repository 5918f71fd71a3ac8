// The agent's structured logger: JSON lines on stderr, written synchronously so nothing is lost at exit, levels as names and times in ISO 8601.
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/config.ts';

/**
 * Each line: `level` by name (`"info"`, as log routers and CloudWatch Logs Insights read it), `time` in ISO 8601,
 * `component: "spotsnap"`, the line's `event` (agent/shared/log-events.ts) and `msg`, which is for people.
 */
export function createLogger(level: LogLevel, destination: DestinationStream = pino.destination({ fd: 2, sync: true })): Logger {
  return pino(
    {
      level,
      base: { component: 'spotsnap' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
