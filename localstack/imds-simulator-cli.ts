// Runs the IMDS simulator on 127.0.0.1 (default port 1338, the port of AWS's own metadata mock) until stopped.
import { ImdsSimulator } from './imds-simulator.ts';

const portArg = process.argv.indexOf('--port');
const port = portArg >= 0 ? Number(process.argv[portArg + 1]) : 1338;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`imds-simulator: --port ${JSON.stringify(process.argv[portArg + 1])} is not a port number (0-65535)`);
  process.exit(64);
}
const simulator = new ImdsSimulator({ requireTokens: process.argv.includes('--require-tokens') });
const url = await simulator.start(port);
console.log(`IMDS simulator on ${url}; schedule a notice with: curl -X POST '${url}/spotsnap-sim/interrupt?in=10'`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void simulator.stop().then(() => process.exit(0)));
