#!/usr/bin/env bash
# Every test: formatting, types, lint, unit/kernel tests (Node + Dawn, software Vulkan), browser tests
# (Debian chromium, software WebGPU). Ends with one "N passed, N failed" line over all tests.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
reports=$(mktemp -d)
run() {
  local name=$1; shift
  echo "== $name: $*"
  if "$@"; then echo "== $name: ok"; else echo "== $name: FAILED"; status=1; fi
}
run format-check npx prettier --check .
run typecheck npx tsc -p tsconfig.json --noEmit
run lint npx eslint --max-warnings=0 .
run unit npx vitest run --reporter=default --reporter=json --outputFile.json="$reports/unit.json"
run e2e npx vitest run --config vitest.e2e.config.ts --reporter=default --reporter=json --outputFile.json="$reports/e2e.json"
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) { failed++; continue; } // a stage that could not report counts as a failure
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + (r.numTodoTests || 0);
  }
  console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$reports/unit.json" "$reports/e2e.json"
rm -rf "$reports"
exit $status
