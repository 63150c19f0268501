#!/usr/bin/env bash
# Builds the Python package (python/) in a scratch virtualenv with pinned
# dependencies and runs its tests; fails loudly. .ci/run calls it after
# `cargo test`; developers can run it as is.
#
#   bash python/ci.sh [VENV_DIR]        (default: target/python-venv)
#
# The extension is built with the library's dev profile in the library's
# target dir (CARGO_TARGET_DIR, default target/), so after `cargo test` the
# compiled dependencies are reused instead of built a second time; only the
# library (at the dependencies' opt-level 3) and the bindings are compiled.
# torch is the CPU+CUDA wheel from PyPI (the CPU-only index is not reachable
# here): a ~3 GB download, ~1.5 min to install.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${1:-$PWD/target/python-venv}"
PY="${PYTHON:-$(command -v python3.11 || command -v python3 || true)}"
if [ -z "$PY" ]; then
  echo "error: no python3 found (need CPython >= 3.9)" >&2
  exit 1
fi
"$PY" - <<'PYEOF'
import sys
if sys.version_info < (3, 9):
    sys.exit(f"error: Python {sys.version.split()[0]} is too old (need >= 3.9)")
print("python", sys.version.split()[0])
PYEOF

# the versions the tests were written against; pyhf 0.7.6 gives the reference numbers
PINS=(
  "maturin==1.16.0" "numpy==2.4.6" "scipy==1.17.1" "pytest==9.2.0" "pyhf==0.7.6"
  "dask[distributed]==2026.8.0" "pandas==3.1.1" "jax==0.10.2" "jaxlib==0.10.2" "torch==2.15.0"
)

echo "== python: virtualenv $VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --progress-bar off --disable-pip-version-check "${PINS[@]}"

echo "== python: pip install ./python (dev profile, target dir ${CARGO_TARGET_DIR:-$PWD/target})"
PATH="$VENV/bin:$PATH" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" MATURIN_PEP517_ARGS="--profile dev" \
  "$VENV/bin/python" -m pip install --no-build-isolation --progress-bar off \
  --disable-pip-version-check --force-reinstall --no-deps ./python

# every optional part must be importable here, so that no test is skipped
"$VENV/bin/python" -c "import anagrad, anagrad.jax, anagrad.torch, pyhf, distributed, pandas; print('anagrad', anagrad.__version__)"

echo "== python: pytest python/tests"
cd python
"$VENV/bin/python" -m pytest tests -q -ra -p no:cacheprovider
