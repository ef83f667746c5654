// `node dist/test/write-man.js DIR`: writes ipvs-warden.8 and ipvs-warden.yaml.5 (roff) into
// DIR, from the README and the schema (src/cli/manpage.ts). deploy/debian/build.sh runs it.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandPage, configPage } from '../src/cli/manpage.js';
import { daemonSchema } from '../src/config/daemon.js';
import { renderMan } from './man.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: write-man.js DIR');
const root = new URL('../../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');
const { version } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  version: string;
};
// The date on the pages: the package's (SOURCE_DATE_EPOCH, from its changelog), so a rebuild
// gives the same bytes.
const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? Date.now() / 1000);
const date = new Date(epoch * 1000).toISOString().slice(0, 10);
const facts = { readme, environment: daemonSchema() };
mkdirSync(dir, { recursive: true });
for (const page of [commandPage(facts), configPage(facts)])
  writeFileSync(join(dir, page.file), renderMan(page, version, date));
