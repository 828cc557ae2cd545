// Build the bundled tiny pack (models/tiny) when it is missing: `npm run dev` and
// `npm run build` serve it as the app's default pack.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

if (!existsSync(new URL('../models/tiny/manifest.json', import.meta.url))) {
  const r = spawnSync(
    process.execPath,
    [
      'bin/likeness.mjs',
      'pack',
      '--from',
      '../shared/data/reference/tiny-sd',
      '--out',
      'models/tiny',
      '--name',
      'tiny',
      '--untrained-encoder',
    ],
    { stdio: 'inherit' },
  );
  process.exit(r.status ?? 1);
}
