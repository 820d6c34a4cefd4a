# ecsportal: one image for the embedded server and for scale-out runners.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PORT=8000

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin ecsportal
WORKDIR /app

COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY --chown=ecsportal:ecsportal . .
# Collect static files at build time; DEBUG only lets settings load without production secrets.
RUN DJANGO_DEBUG=true python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/var && chown -R ecsportal:ecsportal /app/var /app/staticfiles

USER ecsportal
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=6s --start-period=20s --retries=3 \
    CMD ["python", "-m", "ecsportal.healthcheck"]

# Production needs DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS and ECSPORTAL_SECRET_KEYS (see .env.example).
CMD ["sh", "-c", "python manage.py migrate --noinput && exec daphne -b 0.0.0.0 -p ${PORT} --proxy-headers ecsportal.asgi:application"]
