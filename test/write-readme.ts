// `npm run -s readme`: rewrites the README's generated blocks (the check tables) from the
// declarations; test/readme.test.ts fails until they agree.
import { readFileSync, writeFileSync } from 'node:fs';
import { CATALOG } from '../checks/index.js';
import { readmeBlocks, rewriteBlocks } from '../src/cli/docs.js';

const file = new URL('../../README.md', import.meta.url);
writeFileSync(file, rewriteBlocks(readFileSync(file, 'utf8'), readmeBlocks(CATALOG)));
