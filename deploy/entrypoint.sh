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

# SQLite (the default: var/db.sqlite3, or a sqlite:// DATABASE_URL) needs its directory
# writable by the portal's user, uid 10001. A host directory bind-mounted on /app/var is often
# root's, and SQLite then says only "unable to open database file": say what is wrong instead.
sqlite_dir_check() {
  case "${DATABASE_URL:-}" in
    "") file="var/db.sqlite3" ;;
    sqlite://:memory:*|sqlite:///:memory:*) return 0 ;;
    sqlite:*) file="${DATABASE_URL#sqlite://}"; file="${file#/}"; file="${file%%\?*}" ;;
    *) return 0 ;;
  esac
  dir="$(dirname "$file")"
  if [ ! -d "$dir" ]; then
    echo "ecsportal: the SQLite database $file cannot be created: $dir does not exist." >&2
    exit 78  # EX_CONFIG
  fi
  if [ ! -w "$dir" ] || { [ -e "$file" ] && [ ! -w "$file" ]; }; then
    echo "ecsportal: cannot write the SQLite database $file: its directory $dir belongs to" \
      "uid:gid $(stat -c '%u:%g' "$dir"), and this process runs as $(id -u):$(id -g)." >&2
    echo "Give the directory (a bind mount on /app/var) to the image's user, uid 10001:" \
      "chown -R 10001:10001 <host directory>; or mount a named volume there, or set DATABASE_URL" \
      "to PostgreSQL (docs/deploy.md, \"The image\")." >&2
    exit 78  # EX_CONFIG
  fi
}

case "$role" in
  web|migrate|runner|collector) sqlite_dir_check ;;
esac

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
