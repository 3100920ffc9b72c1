# syntax=docker/dockerfile:1
# One image for web, worker and beat (the compose file picks the command).

# --- front-end packages (htmx) ------------------------------------------------------
FROM node:20-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

# --- the application ----------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin hedgerow \
    && mkdir -p /var/lib/hedgerow \
    && chown hedgerow:hedgerow /var/lib/hedgerow
WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
# The install is editable because the app finds its templates and migrations next to
# the package (/app/frontend, /app/migrations).
COPY pyproject.toml README.md ./
# EXTRAS=train builds the trainer image (torch, transformers, trl, peft...).
ARG EXTRAS=""
RUN mkdir -p backend/hedgerow && touch backend/hedgerow/__init__.py \
    && pip install -e ".${EXTRAS:+[$EXTRAS]}"

COPY alembic.ini ./
COPY migrations ./migrations
COPY frontend ./frontend
COPY --from=frontend /src/frontend/node_modules ./frontend/node_modules
COPY backend ./backend

USER hedgerow
ENV HEDGEROW_ENVIRONMENT=production \
    HEDGEROW_HOST=0.0.0.0 \
    HEDGEROW_DATA_DIR=/var/lib/hedgerow
EXPOSE 8000
# uvicorn with Hedgerow's options: X-Forwarded-For/-Proto are believed only from the
# addresses in HEDGEROW_TRUSTED_PROXIES (your reverse proxy; README "Behind a reverse
# proxy"), never from whoever connects; WEB_CONCURRENCY sets the worker processes.
CMD ["hedgerow", "web", "--host", "0.0.0.0", "--port", "8000"]
