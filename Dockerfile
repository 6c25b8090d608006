# syntax=docker/dockerfile:1
# The fnevents container image: `fnevents run` on the manifests in /etc/fnevents/manifests.
#
#   docker build -t fnevents:dev .
#   docker run --rm -p 9464:9464 \
#       -v "$PWD/examples/quickstart:/etc/fnevents/manifests:ro" fnevents:dev
#
# The chart (charts/fnevents) and `fnevents render` mount the manifests from a ConfigMap at
# /etc/fnevents/manifests and pass their own arguments (e.g. `run -f ... --only ROLE`).
#
# Adding users' function code (a Function's spec.source is a .py file relative to its
# manifest, or a module name):
#
#   - a derived image, for code and its dependencies:
#
#         FROM ghcr.io/fnevents/fnevents:0.1.0
#         COPY functions/ /app/functions/
#         USER 0
#         RUN python -m pip install --no-cache-dir -r /app/functions/requirements.txt
#         USER 10001
#
#     /app/functions is on PYTHONPATH, so `source: mymodule` imports
#     /app/functions/mymodule.py (a `source: mymodule.py` file is looked up beside the
#     manifest instead).
#
#   - a mounted directory, for dependency-free code: put the .py files beside the manifests
#     (in the same ConfigMap, or a volume at /etc/fnevents/manifests) and name them with
#     `source: hello.py`; or mount another volume at /app/functions and use module names.
#
# The image runs as uid 10001. Bytecode is compiled at install time and
# PYTHONDONTWRITEBYTECODE keeps Python from writing any for mounted code, so Python itself
# needs no writable path on a readOnlyRootFilesystem but the /tmp emptyDir that the chart
# and `fnevents render` mount.
#
# We cannot build images on the development machines (no Docker there):
# tests/packaging/test_wheel.py checks this file and runs the builder stage's wheel build,
# then installs that wheel into a fresh venv and starts `fnevents run` with this CMD.

# --- builder: the fnevents wheel, from the files .dockerignore lets in ---------------------
FROM python:3.12-slim AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY events/ events/
COPY sources/ sources/
COPY triggers/ triggers/
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- the image: the wheel and its dependencies, nothing else -------------------------------
FROM python:3.12-slim
LABEL org.opencontainers.image.title="fnevents" \
      org.opencontainers.image.description="Event bus and triggers for serverless functions" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app/functions
# the wheel is bind-mounted from the builder, so it never becomes a layer of this image
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir /wheels/*.whl \
    && groupadd --gid 10001 fnevents \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin fnevents \
    && mkdir -p /app/functions /etc/fnevents/manifests
WORKDIR /app
USER 10001:10001
# /healthz, /readyz and /metrics (fnevents run --port; events.cli.main.DEFAULT_PORT)
EXPOSE 9464
ENTRYPOINT ["fnevents"]
# --host 0.0.0.0: the ops server must answer the kubelet's probes and Prometheus on the
# pod's address, not only on loopback (fnevents run's default for a laptop)
CMD ["run", "-f", "/etc/fnevents/manifests", "--host", "0.0.0.0"]
