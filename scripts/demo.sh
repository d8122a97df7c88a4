#!/usr/bin/env bash
# Start the web server and one RQ worker on the embedded Redis; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${1:-8000}"
PY=.venv/bin/python
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.dev}"
mkdir -p var
$PY manage.py rqworker default imports quality training --with-scheduler > var/worker.log 2>&1 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; exit 0' INT TERM EXIT
cat <<MSG

  Labelloop is running:  http://127.0.0.1:${PORT}/

  Logins (password = username + "-pass"):
    owner        ML engineer, owns the demo projects
    annotator1   annotator
    annotator2   annotator
    reviewer     reviewer
  Admin:  http://127.0.0.1:${PORT}/admin/   API docs: http://127.0.0.1:${PORT}/api/docs/
  Worker log: var/worker.log     Stop: Ctrl-C

MSG
$PY manage.py runserver "0.0.0.0:${PORT}"
