# syntax=docker/dockerfile:1
# One image for every c2c component: `c2c worker`, `c2c api`, `c2c sandbox` (and the operator
# commands, e.g. `docker compose exec api c2c ops exceptions`). docker-compose.yml runs it;
# docs/deployment.md explains how.
#
#   docker build -t c2c:local .
#   docker run --rm c2c:local --help
#
# Secrets (webhook secret, API tokens, Temporal API key, database passwords) come from the
# environment at run time; nothing secret is copied into the image (.dockerignore keeps .env out).

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install c2c and its dependencies into a virtualenv --------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/c2c
WORKDIR /src
# The packages pyproject.toml installs ([tool.setuptools]); README.md is its `readme`.
COPY pyproject.toml README.md worker.py ./
COPY c2c ./c2c
COPY domain ./domain
COPY workflows ./workflows
COPY activities ./activities
COPY connectors ./connectors
COPY ledger ./ledger
COPY sandbox ./sandbox
COPY starter ./starter
# A regular (not editable) install without the dev extra: the runtime stage needs no sources.
RUN /opt/c2c/bin/pip install .

# --- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# A fixed uid/gid, so volumes and Kubernetes' runAsUser agree with the image.
RUN groupadd --system --gid 10001 c2c \
    && useradd --system --uid 10001 --gid c2c --home-dir /var/lib/c2c --no-create-home \
        --shell /usr/sbin/nologin c2c \
    && mkdir -p /var/lib/c2c \
    && chown c2c:c2c /var/lib/c2c
COPY --from=build /opt/c2c /opt/c2c
COPY deploy/healthcheck.py /opt/c2c/healthcheck.py
ENV PATH=/opt/c2c/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    C2C_STATE_DIR=/var/lib/c2c \
    C2C_LOG_FORMAT=json
# The state directory is the working directory: the sandbox keeps its SQLite file here (mount a
# volume), and c2c reads no `.env` from it unless one is mounted on purpose.
WORKDIR /var/lib/c2c
USER 10001:10001
# API, sandbox.
EXPOSE 8000 8100
# Fits the default command (the API); compose gives the sandbox and the worker their own.
HEALTHCHECK --interval=15s --timeout=6s --start-period=20s --retries=3 \
    CMD ["python", "/opt/c2c/healthcheck.py", "http://127.0.0.1:8000/healthz"]
ENTRYPOINT ["c2c"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
