# The StreamGuard worker image (docker-compose.yml builds it as streamguard:local).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Metadata and sources only (see .dockerignore): the image holds what `pip install .` needs.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/streamguard --create-home streamguard

# Table state (RocksDB) and the plate-hash salt live in the data dir: mount a volume there so a
# restart keeps both (a new salt would break the link between old and new audit records).
USER streamguard
ENV STREAMGUARD_DATA_DIR=/var/lib/streamguard \
    STREAMGUARD_WEB_PORT=6066
EXPOSE 6066
ENTRYPOINT ["streamguard"]
CMD ["worker"]
