// The agent's structured logger: JSON lines on stderr, written synchronously so nothing is lost at exit.
import pino, { type Logger } from 'pino';
import type { LogLevel } from '../config/config.ts';

export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { component: 'spotsnap' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
}
