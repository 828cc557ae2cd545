#!/usr/bin/env bash
# Every test: types, lint, unit/kernel tests (Node + Dawn, software Vulkan), browser tests
# (Debian chromium, software WebGPU). Prints one summary line per stage and a total.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
run() {
  local name=$1; shift
  echo "== $name: $*"
  if "$@"; then echo "== $name: ok"; else echo "== $name: FAILED"; status=1; fi
}
run typecheck npx tsc -p tsconfig.json --noEmit
run lint npx eslint --max-warnings=0 .
run unit npx vitest run
run e2e npx vitest run --config vitest.e2e.config.ts
exit $status
