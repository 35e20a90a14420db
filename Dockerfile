# syntax=docker/dockerfile:1
# Image for the routing gateway: `gateway serve`, non-root, read-only root filesystem friendly.
#
#   docker build -t ghcr.io/routing-gateway/routing-gateway:0.1.0 .
#
# The encoders (ONNX export and static distillation of all-MiniLM-L6-v2) are built here, at
# image build time, so nothing is downloaded or written when the container runs.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    GATEWAY_ENCODER_DIR=/opt/routing-gateway/encoders
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY gateway/ gateway/
COPY classifiers/ classifiers/
# torch is pinned in constraints.txt; the CPU index keeps pip from pulling the CUDA build.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -c constraints.txt .
COPY policies/ policies/
# Builds both encoders into $GATEWAY_ENCODER_DIR (the static one in a throwaway venv).
RUN python -m classifiers.build_encoders --out "${GATEWAY_ENCODER_DIR}"

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    GATEWAY_ENCODER_DIR=/opt/routing-gateway/encoders \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_POLICY_PATH=/app/policies/default.yaml
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --no-create-home --home-dir /nonexistent gateway
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/routing-gateway /opt/routing-gateway
COPY --from=build /app/policies /app/policies
# pyproject.toml makes the wildcard match at least one file when LICENSE/NOTICE are absent.
COPY pyproject.toml LICENSE* NOTICE* /app/
WORKDIR /app
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["gateway"]
CMD ["serve"]
