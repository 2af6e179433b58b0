# Shared set-up for .ci/serve and .ci/test: a project virtualenv with Formwork installed.
# Sourced, not run. Re-running is cheap: pip skips what is already installed.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FORMWORK_VENV:-$REPO/.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
"$VENV/bin/python" -m pip install --quiet -e "$REPO[test]"
export PATH="$VENV/bin:$PATH"
