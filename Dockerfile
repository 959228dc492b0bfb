# syntax=docker/dockerfile:1
# Image for the API, the workers and migrations; the command picks the role:
#   backfill up (default: migrate, API and workers in one process),
#   backfill api | backfill worker | backfill migrate
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN groupadd --system --gid 10001 backfill \
    && useradd --system --uid 10001 --gid backfill --home-dir /app --create-home \
        --shell /usr/sbin/nologin backfill

# Build from a scratch directory; only the installed package is used at runtime.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY orchestrator/ orchestrator/
COPY api/ api/
COPY workers/ workers/
RUN pip install --no-cache-dir . \
    && rm -rf /src

WORKDIR /app
USER backfill

# Inside a container the API must listen on all interfaces to be reachable.
ENV BACKFILL_HTTP_HOST=0.0.0.0 \
    BACKFILL_HTTP_PORT=8080
EXPOSE 8080

# Probes the API. Containers that run only workers should probe /ops/health on
# BACKFILL_METRICS_PORT instead, and migrations disable it (compose.yaml does both).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('BACKFILL_HTTP_PORT', '8080') + '/ops/health', timeout=4).close()"]

CMD ["backfill", "up"]
