#!/usr/bin/env bash
# Mutation testing of the math with mutmut ([tool.mutmut] in pyproject.toml); not part of CI.
#   scripts/mutation.sh                  every target below (about 25 minutes on one core)
#   scripts/mutation.sh "core.sde.*"     only the mutants matching these mutmut name globs
# Installs the `mutation` extra if mutmut is missing, starts from a fresh mutants/ copy, runs mutmut on
# MUTATION_JOBS cores (default 1) and prints the score per module and every surviving mutant's diff
# (also written to mutants/mutation-report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
BIN="$(dirname "$PY")"

# mutmut generates mutants for every function of a listed file; of core/vae/train.py only `bounds` is run.
TARGETS=(
  "core.bounds.*" "core.sde.*"
  "core.diffusion.sampler.*" "core.diffusion.dsm.*" "core.diffusion.score_mlp.*" "core.diffusion.elbo.*"
  "core.diffusion.noise.*" "core.metrics.*" "core.vae.model.*" "core.vae.train.x_bounds__*"
)
[ $# -gt 0 ] && TARGETS=("$@")

"$PY" -c "import mutmut" 2>/dev/null || "$PY" -m pip install --quiet -e ".[mutation]"

rm -rf mutants
mkdir mutants
start=$(date +%s)
# mutmut redraws a progress line and lists every mutant it was given; the full output is kept in the log.
status=0
"$BIN/mutmut" run --max-children "${MUTATION_JOBS:-1}" "${TARGETS[@]}" > mutants/mutmut-run.log 2>&1 || status=$?
tr '\r' '\n' < mutants/mutmut-run.log | grep -E ' [0-9]+/[0-9]+  ' | tail -n 1 || true
tr '\r' '\n' < mutants/mutmut-run.log | grep -E 'done in|mutations/second|FAILED|Failed|Error|Stopping' || true
echo "mutation run: exit status $status, $(( $(date +%s) - start )) s (log: mutants/mutmut-run.log)"
[ "$status" -eq 0 ] || exit "$status"
"$PY" scripts/mutation_report.py "${TARGETS[@]}" --out mutants/mutation-report.md
