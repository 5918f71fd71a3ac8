// The EC2 spot interruption notice (`/latest/meta-data/spot/instance-action`) as a typed, validated value.

export type SpotAction = 'terminate' | 'stop' | 'hibernate';

export interface SpotNotice {
  action: SpotAction;
  /** When EC2 acts on the instance, in ms since the epoch. */
  deadline: number;
  /** The notice's own text of the time, for the log. */
  time: string;
  /** Identity derived from the content, so that repeated polls of one notice fire once. */
  id: string;
}

/** A notice body that is not what EC2 sends. */
export class MalformedNoticeError extends Error {
  constructor(body: string, why: string) {
    super(`malformed spot notice (${why}): ${JSON.stringify(body.slice(0, 200))}`);
    this.name = 'MalformedNoticeError';
  }
}

/** Parses `{"action":"terminate","time":"2026-11-21T09:00:00Z"}`. */
export function parseSpotNotice(body: string): SpotNotice {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new MalformedNoticeError(body, 'not JSON');
  }
  if (typeof value !== 'object' || value === null) throw new MalformedNoticeError(body, 'not an object');
  const { action, time } = value as Record<string, unknown>;
  if (action !== 'terminate' && action !== 'stop' && action !== 'hibernate') {
    throw new MalformedNoticeError(body, 'action is not terminate, stop or hibernate');
  }
  if (typeof time !== 'string' || Number.isNaN(Date.parse(time))) {
    throw new MalformedNoticeError(body, 'time is not an RFC 3339 time');
  }
  return { action, time, deadline: Date.parse(time), id: `${action}@${time}` };
}
