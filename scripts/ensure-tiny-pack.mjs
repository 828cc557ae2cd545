// Build the bundled tiny pack (public/packs/tiny) when it is missing: `npm run dev` and
// `npm run build` serve it as the app's default pack.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

if (!existsSync(new URL('../public/packs/tiny/manifest.json', import.meta.url))) {
  const r = spawnSync(process.execPath, ['bin/likeness.mjs', 'pack', '--from', '../shared/data/reference/tiny-sd', '--out', 'public/packs/tiny', '--name', 'tiny', '--untrained-encoder'], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
