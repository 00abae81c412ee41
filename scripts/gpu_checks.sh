#!/usr/bin/env bash
# Every GPU check and benchmark in one command (run on a CUDA machine from the
# repository root; needs torch + triton, not vLLM). Results go to bench/results
# and, when $OUT is set (the lent device machine), are copied there too.
#   bash scripts/gpu_checks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python}
status=0
started=$(mktemp)  # results are whatever this run writes (their names carry the device's)
trap 'rm -f "$started"' EXIT
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(), torch.__version__)" || exit 2
"$PY" -m pytest -q -m gpu -p no:cacheprovider tests/test_kmm_kernel.py || status=1
"$PY" bench/kmm_kernel.py || status=1
if "$PY" -c "import transformers" 2>/dev/null; then
    "$PY" bench/decode_step.py || status=1
else
    echo "transformers missing: bench/decode_step.py skipped (it runs the reference model)"
fi
if [ -n "${OUT:-}" ]; then
    find bench/results -type f -newer "$started" -exec cp {} "$OUT"/ \;
fi
exit $status
