#!/bin/sh
# The image's entry point: one image, one role per container (docs/deploy.md).
#   web [ARGS]        migrate (unless ECSPORTAL_MIGRATE_ON_START=false), then daphne on $PORT
#   runner            the runs worker: manage.py runsworker (ECSPORTAL_RUNNER_MODE=worker, Redis); drains on SIGTERM
#   collector [SECS]  stopped-task history: manage.py collect_stopped_tasks --loop SECS (default 300)
#   migrate           apply database migrations and exit (a one-off task before a scale-out deploy)
#   anything else     run as given, e.g. `python manage.py createsuperuser`
set -eu

role="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$role" in
  web)
    if [ "${ECSPORTAL_MIGRATE_ON_START:-true}" = "true" ]; then
      python manage.py migrate --noinput
    fi
    # No --proxy-headers: daphne would believe the FIRST X-Forwarded-For address, which a client
    # behind an appending proxy (an ALB) chooses. The portal reads the client's address itself
    # (ECSPORTAL_TRUSTED_PROXY_HOPS) and the scheme from X-Forwarded-Proto (DJANGO_BEHIND_TLS_PROXY).
    # Pings every 20 s keep WebSockets alive through proxies that drop idle connections at 60 s.
    # --http-timeout ends an HTTP answer that takes longer than this (long exports included).
    # The portal writes its own access line per request (with the request ID), so daphne's is off
    # unless DAPHNE_ACCESS_LOG names a file (- for stdout).
    exec daphne \
      --bind "${BIND:-0.0.0.0}" --port "${PORT:-8000}" \
      --http-timeout "${DAPHNE_HTTP_TIMEOUT:-600}" \
      --websocket_connect_timeout 10 --websocket_timeout 86400 \
      --ping-interval 20 --ping-timeout 30 \
      --application-close-timeout 10 \
      --access-log "${DAPHNE_ACCESS_LOG:-/dev/null}" \
      "$@" ecsportal.asgi:application
    ;;
  runner)
    exec python manage.py runsworker "$@"
    ;;
  collector)
    exec python manage.py collect_stopped_tasks --loop "${1:-300}"
    ;;
  migrate)
    exec python manage.py migrate --noinput "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
