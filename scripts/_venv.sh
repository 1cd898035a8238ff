# Sourced by the scripts: make .venv (Python 3.11+) and install the project into it once.
# Editable installs use editable_mode=strict: the default import-hook finder hides
# Twisted plugins from `twist` (see shared/TWISTED.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ANTIGRAVITY_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required (found: $("$PY" --version 2>&1))" >&2; exit 1; }
# Progress lines go to stderr so a first run is not silent for half a minute.
say() { echo "setup: $*" >&2; }
SETUP_START=$SECONDS
if [ ! -x "$VENV/bin/python" ]; then
  say "creating the environment in $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
STAMP="$VENV/.installed-$1"
# Strict editable installs link the files that exist at install time: reinstall
# when packaging changes or a module is added or removed.
FILES="$(cd "$ROOT" && find gateway twisted -name '*.py' | sort | cksum)"
if [ ! -f "$STAMP" ] || [ "$ROOT/setup.cfg" -nt "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ] || [ "$(cat "$STAMP")" != "$FILES" ]; then
  LOG="$VENV/install.log"
  say "installing the project and its dependencies${2:+ $2} into $VENV (about 30 s the first time; log: $LOG)"
  if ! "$VENV/bin/python" -m pip install --quiet -e "$ROOT$2" --config-settings editable_mode=strict >"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "installing the project into $VENV failed (log above)" >&2
    exit 1
  fi
  # Editable strict mode links files that existed at install time; re-linking on
  # each setup.cfg change keeps new modules visible. Warm the plugin cache once.
  "$VENV/bin/python" -c 'from twisted.plugin import getPlugins, IPlugin; import gateway.plugins, twisted.plugins; list(getPlugins(IPlugin)); list(getPlugins(IPlugin, gateway.plugins))' || true
  echo "$FILES" > "$STAMP"
  say "done in $((SECONDS - SETUP_START)) s"
fi
