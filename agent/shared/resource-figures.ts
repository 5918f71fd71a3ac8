// The agent's own memory and CPU use, in the units its log lines report them.

/** The agent's memory now, in MiB. */
export function memoryFigures(): Record<string, number> {
  const m = process.memoryUsage();
  const mib = (n: number) => Math.round(n / 1048576);
  return { rssMiB: mib(m.rss), heapMiB: mib(m.heapUsed), externalMiB: mib(m.external), arrayBuffersMiB: mib(m.arrayBuffers) };
}

/** CPU the agent used since `since` (a `process.cpuUsage()` reading; since it started without one), in ms. */
export function cpuFigures(since?: NodeJS.CpuUsage): { userMs: number; systemMs: number } {
  const used = process.cpuUsage(since);
  return { userMs: Math.round(used.user / 1000), systemMs: Math.round(used.system / 1000) };
}
