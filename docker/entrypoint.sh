#!/usr/bin/env bash
# Tollgate container entry point: one image, one role per container.
#
#   web                 gunicorn (gthread) serving controlplane.wsgi:application on :8000
#   llm-proxy [args...] uvicorn serving controlplane.asgi:application (the LLM proxy) on :8002
#   worker [args...]    Celery worker      (extra args go to `celery worker`, e.g. --concurrency 4)
#   beat [args...]      Celery beat with the database scheduler (run exactly ONE)
#   migrate [args...]   python manage.py migrate --noinput
#   manage <cmd> ...    any manage.py command, e.g. `manage createsuperuser`
#   <anything else>     executed as-is (e.g. `bash`)
set -euo pipefail

APP_DIR="$(cd "$(dirname "$0")/.." && pwd)"
cd "$APP_DIR"

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

role="${1:-web}"
if [ "$#" -gt 0 ]; then
  shift
fi

case "$role" in
  web)
    # Several gunicorn workers share one metrics registry through files in this directory;
    # gunicorn.conf.py empties it at start-up and cleans up after exited workers.
    export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus-multiproc}"
    exec gunicorn --config "$APP_DIR/docker/gunicorn.conf.py" "$@"
    ;;
  llm-proxy)
    # The LLM proxy (/v1/chat/completions, /v1/messages, /v1/embeddings) under ASGI: a stream
    # holds no thread. One process per container by default; scale with replicas.
    exec uvicorn controlplane.asgi:application --host "${LLM_PROXY_HOST:-0.0.0.0}" \
      --port "${LLM_PROXY_PORT:-8002}" --http httptools --loop uvloop \
      --timeout-graceful-shutdown "${LLM_PROXY_GRACEFUL_TIMEOUT:-30}" --no-access-log "$@"
    ;;
  worker)
    # Prefork children each hold one persistent connection; the pool (DB_POOL_MAX_SIZE) is for
    # gunicorn's threads and its background threads do not survive a fork.
    export DB_POOL_MAX_SIZE="${DB_POOL_MAX_SIZE:-0}"
    exec celery -A controlplane worker --loglevel "${LOG_LEVEL:-INFO}" "$@"
    ;;
  beat)
    export DB_POOL_MAX_SIZE="${DB_POOL_MAX_SIZE:-0}"
    exec celery -A controlplane beat --loglevel "${LOG_LEVEL:-INFO}" \
      --scheduler django_celery_beat.schedulers:DatabaseScheduler "$@"
    ;;
  migrate)
    exec python manage.py migrate --noinput "$@"
    ;;
  manage)
    if [ "$#" -eq 0 ]; then
      echo "usage: manage <command> [args...]" >&2
      exit 64
    fi
    exec python manage.py "$@"
    ;;
  help | -h | --help)
    usage
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
