// The oldest CRIU spotsnap checkpoints with: below it `run` runs the task without snapshots (or refuses it when strict) and `doctor` fails.

/** CRIU 4.0, as CriuVersion numbers it (major * 10000 + minor * 100 + patch). */
export const MIN_CRIU_VERSION = { number: 40000, text: '4.0' } as const;
