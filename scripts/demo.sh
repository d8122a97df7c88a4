#!/usr/bin/env bash
# Start the web server and two RQ workers on the embedded Redis; Ctrl-C (or `make stop`) stops all three.
# Two workers, so a long training run never holds up an import or a noise scan (docs/OPERATIONS.md):
#   worker           imports, quality (noise scans), default (the sweep): the short jobs, never training;
#   worker-training  training (runs, prediction batches) first, and the short jobs while no run waits.
# Both talk to the same embedded Redis socket (the first to start it wins a file lock, config/embedded_redis.py).
# Each process's pid goes to var/<name>.pid, so `make stop` stops exactly what this script started.
# The server listens on 127.0.0.1 only; HOST=0.0.0.0 makes it reachable from other machines.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${1:-8000}"
HOST="${HOST:-127.0.0.1}"
PY=${PY:-.venv/bin/python}  # make passes its own (VENV=...)
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.dev}"
mkdir -p var
for name in web worker worker-training; do
  if [ -f "var/$name.pid" ] && kill -0 "$(cat "var/$name.pid")" 2>/dev/null; then
    echo "A $name started by this script is still running (pid $(cat "var/$name.pid")): run 'make stop' first." >&2
    exit 1
  fi
done
stop() {
  for name in web worker worker-training; do
    [ -f "var/$name.pid" ] && kill "$(cat "var/$name.pid")" 2>/dev/null || true
    rm -f "var/$name.pid"
  done
}
trap 'stop; exit 0' INT TERM
trap stop EXIT
# Both run RQ's scheduler: it holds a per-queue lock, so only one schedules at a time and the other takes over.
$PY manage.py rqworker imports quality default --with-scheduler > var/worker.log 2>&1 &
echo $! > var/worker.pid
$PY manage.py rqworker training imports quality default --with-scheduler > var/worker-training.log 2>&1 &
echo $! > var/worker-training.pid
cat <<MSG

  Labelloop is running:  http://${HOST}:${PORT}/

  Logins (password = username + "-pass"):
    owner        ML engineer, owns the demo projects
    annotator1   annotator
    annotator2   annotator
    reviewer     reviewer
  The SMS projects route adaptively, as new projects do: the reviewer gets only the items whose weighted
  vote stays in doubt, audit samples and noise flags (Quality -> Routing plan says why). The chit-chat
  project routes fixed (a weighted vote needs one label per item).
  Admin:  http://${HOST}:${PORT}/admin/   API docs: http://${HOST}:${PORT}/api/docs/
  Logs: var/web.log, var/worker.log, var/worker-training.log     Stop: Ctrl-C or 'make stop'

MSG
$PY manage.py runserver --noreload "${HOST}:${PORT}" > var/web.log 2>&1 &
echo $! > var/web.pid
status=0
wait "$(cat var/web.pid)" || status=$?
# `make stop` ends the server with SIGTERM (exit 143): that is a stop, not a failure for make to report
if [ "$status" -ne 0 ] && [ "$status" -ne 143 ]; then
  echo "The web server stopped with exit status $status: see var/web.log." >&2
  exit "$status"
fi
