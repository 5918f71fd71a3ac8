// `npm run docs:reference`: writes docs/reference.md from the tables in code (reference.test.ts fails while it is out of date).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REFERENCE_PATH, renderReference } from './reference.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
writeFileSync(path.join(root, REFERENCE_PATH), renderReference());
process.stdout.write(`wrote ${REFERENCE_PATH}\n`);
