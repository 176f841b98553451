# The StreamGuard worker image (docker-compose.yml builds it as streamguard:local).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# PyICU compiles against the system ICU: its headers and a compiler (libicu-dev brings the
# shared library the image needs at run time).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libicu-dev pkg-config g++ \
    && rm -rf /var/lib/apt/lists/*
# Dependencies next, at the versions the tests ran with (docker/constraints.txt): this layer
# is rebuilt when the pins change, not on every source edit.
COPY docker/constraints.txt ./constraints.txt
RUN pip install --no-deps -r constraints.txt

# Then the project itself (see .dockerignore: metadata and sources only). --no-deps: every
# dependency is pinned above; `pip check` fails the build if pyproject.toml needs one the
# constraints lack.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps . \
    && pip check \
    && useradd --system --uid 10001 --home-dir /var/lib/streamguard --create-home streamguard

# Table state (RocksDB) and the plate-hash salt live in the data dir: mount a volume there so a
# restart keeps both (a new salt would break the link between old and new audit records).
USER streamguard
ENV STREAMGUARD_DATA_DIR=/var/lib/streamguard \
    STREAMGUARD_WEB_PORT=6066
EXPOSE 6066
ENTRYPOINT ["streamguard"]
CMD ["worker"]
