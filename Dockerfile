# lokiserve image. Placeholder for the foundation; the GPU/CPU image with the
# demo model, ports and healthcheck is built out by the benchmarks/Docker issue.
ARG VLLM_IMAGE=vllm/vllm-openai:v0.11.0
FROM ${VLLM_IMAGE}
WORKDIR /opt/lokiserve
COPY . .
RUN pip install --no-cache-dir -e . && if [ -f plugins/pyproject.toml ]; then pip install --no-cache-dir -e plugins; fi
