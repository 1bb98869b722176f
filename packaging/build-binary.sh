#!/usr/bin/env bash
# Build the one-file binary dist/chronary from chronary.spec.
#
# Usage: packaging/build-binary.sh [DIST_DIR]   (default: dist/ in the checkout)
# Uses the Python of $PYTHON, else .venv/bin/python if present, else python3; installs the
# `build` extra (PyInstaller) into it when PyInstaller is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dist="${1:-$root/dist}"
if [[ -n "${PYTHON:-}" ]]; then py="$PYTHON"
elif [[ -x "$root/.venv/bin/python" ]]; then py="$root/.venv/bin/python"
else py="python3"; fi
if ! "$py" -c 'import PyInstaller' 2>/dev/null; then
  "$py" -m pip install -q -e "$root[build]"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$root"
"$py" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$dist" --workpath "$work" chronary.spec
echo "built $dist/chronary"
