// Builds the package (ES modules with declarations, into dist/) and packs it with npm:
//
//     node openapi/typescript/pack.mjs [DIR]      # default DIR: target/
//
// leaves DIR/chat-api-client-<version>.tgz and prints its path. `make ts-package` and the tests run this.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const dest = resolve(process.argv[2] ?? join(root, 'target'));

rmSync(join(here, 'dist'), { recursive: true, force: true });
execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(here, 'tsconfig.build.json')], { stdio: 'inherit' });
// tsc emits no declaration files it was given: the generated schema is copied as it is.
copyFileSync(join(here, 'schema.d.ts'), join(here, 'dist/schema.d.ts'));
mkdirSync(dest, { recursive: true });
const packed = execFileSync('npm', ['pack', '--json', '--pack-destination', dest], { cwd: here, encoding: 'utf8' });
const [{ filename }] = JSON.parse(packed);
console.log(join(dest, filename));
