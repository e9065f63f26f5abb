# Ferry's own image: the API (`ferry api`) and the worker (`ferry worker`); see
# docs/deployment.md.
#
#   docker build -t ferry .
#   docker build --build-arg BASE=registry.example.com/python:3.11-slim -t ferry .
#
# BASE: a Debian-based image with Python >= 3.11 and its venv module (python:3.11-slim,
# or any bookworm image with python3-venv). Behind a TLS-intercepting proxy, copy its CA
# bundle into the build context as `.build-ca.crt`: pip uses it in the build stage only,
# and nothing of that stage but the installed venv reaches the final image.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# Marks what this stage leaves in the engine's image store (it holds the sources and any
# .build-ca.crt): `docker image prune --filter label=ferry.build-stage` removes it.
LABEL ferry.build-stage="1"
WORKDIR /src
COPY . .
RUN set -e; \
    if [ -s .build-ca.crt ]; then export PIP_CERT="$PWD/.build-ca.crt"; fi; \
    python3 -m venv /opt/ferry; \
    /opt/ferry/bin/pip install --no-cache-dir --disable-pip-version-check --quiet .

FROM ${BASE}
# git: the worker's host-only repositories; mkfs.ext4 (e2fsprogs) and mount: per-DevBox
# disk quotas. Installed only when the base lacks them.
RUN set -e; \
    if ! command -v git >/dev/null || ! command -v mkfs.ext4 >/dev/null; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            ca-certificates git e2fsprogs; \
        rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=build /opt/ferry /opt/ferry
ENV PATH=/opt/ferry/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FERRY_API_HOST=0.0.0.0 \
    FERRY_METRICS_HOST=0.0.0.0
# FERRY_API_HOST: in a container the API listens beyond loopback, so it requires
# FERRY_API_TOKEN. FERRY_METRICS_HOST: a worker's /metrics is reachable from outside.
EXPOSE 8000 9464
CMD ["ferry", "--help"]
