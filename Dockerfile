# ecsportal: one image for every role (web, runner, collector, migrate); docs/deploy.md.
#   docker build -t ecsportal .
# Runtime requirements only (requirements.txt); tests, docs and tools stay out (.dockerignore).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the virtualenv. Every runtime package ships a manylinux wheel, so no compiler is
# needed even here; the stage keeps pip's work out of the final image.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --only-binary=:all: -r /tmp/requirements.txt

# --- the image
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    DJANGO_STATIC_ROOT=/app/staticfiles

RUN groupadd --system --gid 10001 ecsportal \
    && useradd --system --uid 10001 --gid ecsportal --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin ecsportal
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# The code belongs to root and is read-only for the portal's user; only var/ (SQLite in the
# embedded mode: mount a volume there to keep it) is writable.
COPY . .
# Static files are collected at build time and served by WhiteNoise from /app/staticfiles.
# DEBUG only lets the settings load without production secrets; DJANGO_ENV_FILE keeps any file out.
RUN DJANGO_DEBUG=true DJANGO_ENV_FILE=/dev/null python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q ecsportal \
    && mkdir -p /app/var \
    && chown ecsportal:ecsportal /app/var \
    && chmod 0755 deploy/entrypoint.sh

USER 10001:10001
EXPOSE 8000
# For the web role; runner, collector and migrate containers turn it off (deploy/compose.yaml).
HEALTHCHECK --interval=30s --timeout=6s --start-period=30s --retries=3 \
    CMD ["python", "-m", "ecsportal.healthcheck"]

# Production needs DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS and ECSPORTAL_SECRET_KEYS (docs/deploy.md).
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]
