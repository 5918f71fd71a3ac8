// The oldest CRIU spotsnap checkpoints with: below it `run` runs the task without snapshots (or refuses it when strict) and `doctor` fails.
import { OLDEST_CRIU_WITH_THIS_PROTOCOL } from '../../criu-bridge/page-server-protocol.ts';

/**
 * CRIU 4.2, as CriuVersion numbers it (major * 10000 + minor * 100 + patch): the agent receives every dump's
 * pages as CRIU's page server, and CRIU 4.2 changed that protocol (a 64-bit page count; the two forms cannot
 * be told apart on the wire). The task image bundles CRIU 4.2.1.
 */
export const MIN_CRIU_VERSION = { number: OLDEST_CRIU_WITH_THIS_PROTOCOL, text: '4.2' } as const;
