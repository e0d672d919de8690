#!/usr/bin/env bash
# Create /work/benchvenv with the two anchor libraries (pytorch-forecasting, darts) next to our package.
# Idempotent; never touches the main interpreter's site-packages (everything goes through the venv's pip).
#
#   bash benchmarks/anchors/install.sh            # VENV=/path/to/venv to override
#
# torch is pinned to the local CPU wheel (2.13.0+cpu) by a constraint on every pip call: any other torch
# spec would pull the CUDA build and several GB of nvidia-* wheels.
set -euo pipefail

PYTHON=${PYTHON:-/root/.pyenv/versions/3.11.7/bin/python}
VENV=${VENV:-/work/benchvenv}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
printf 'torch==2.13.0\n' >"$CONSTRAINTS"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

"${PIP[@]}" install -c "$CONSTRAINTS" torch==2.13.0
# pytorch-forecasting 1.8.0 caps pandas < 3.1 (-> pandas 3.0.6 in the venv); darts[torch] adds pytorch-lightning.
# the `bench` extra: pytorch-forecasting 1.8.0 caps pandas < 3.1 (-> pandas 3.0.6 in the venv); darts[torch]
# adds pytorch-lightning
"${PIP[@]}" install -c "$CONSTRAINTS" -e "$REPO[bench]"
"${PIP[@]}" check || true

"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("torch", "lightning", "pytorch-lightning", "pytorch-forecasting", "darts", "pandas", "numpy"):
    print(f"{name}=={md.version(name)}")
PY
