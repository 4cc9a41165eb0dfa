# One image for `fleetlog serve`, `fleetlog worker` and `fleetlog migrate` (docker-compose.yml).
# The build stage makes a virtualenv with fleetlog and its pinned dependencies; the runtime
# stage copies only that, and runs as an unprivileged user.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/fleetlog
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/fleetlog/bin/pip install .

FROM python:3.11-slim-bookworm
ENV PATH=/opt/fleetlog/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FLEETLOG_HOST=0.0.0.0 \
    FLEETLOG_PORT=8000 \
    FLEETLOG_DATA_DIR=/var/lib/fleetlog \
    FLEETLOG_LOG_FORMAT=json
RUN groupadd --system --gid 10001 fleetlog \
    && useradd --system --uid 10001 --gid fleetlog --home-dir /var/lib/fleetlog --create-home fleetlog
COPY --from=build /opt/fleetlog /opt/fleetlog
USER 10001:10001
WORKDIR /var/lib/fleetlog
EXPOSE 8000 9100
# No curl in a slim image: the healthcheck asks /health with Python's own urllib.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('FLEETLOG_PORT', '8000')}/health\", timeout=2)"]
ENTRYPOINT ["fleetlog"]
CMD ["serve"]
