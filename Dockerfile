# syntax=docker/dockerfile:1
# The Placement API as a small, non-root image. The entrypoint is the service's
# own console script; the schema is synced by a separate one-shot step
# (`placement-manage db sync`, see docker-compose.yml) or at start-up unless
# PLACEMENT_SYNC_ON_STARTUP=false.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN python -m venv /opt/placement \
    && /opt/placement/bin/pip install --no-compile . \
    && find /opt/placement -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/placement \
        --create-home --shell /usr/sbin/nologin placement
COPY --from=build /opt/placement /opt/placement
ENV PATH=/opt/placement/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PLACEMENT_LOG_FORMAT=json
USER placement
WORKDIR /var/lib/placement
EXPOSE 8778
# Readiness: the database answers (GET / is the liveness check).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8778/healthcheck', timeout=4)"]
# uvicorn finishes the requests in flight on SIGTERM (--graceful-timeout, 30 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["placement-api"]
CMD ["--host", "0.0.0.0", "--port", "8778"]
