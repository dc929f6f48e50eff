#!/usr/bin/env bash
# make demo: train the sentiment example into the local store and serve it with its
# playground. SHIPML_STORE, SHIPML_HOST and SHIPML_PORT change where (defaults:
# ~/.shipml/store, 127.0.0.1, 8000).
set -euo pipefail
cd "$(dirname "$0")/../examples/sentiment"
host=${SHIPML_HOST:-127.0.0.1}
port=${SHIPML_PORT:-8000}
echo "==> Training the sentiment example (TF-IDF + logistic regression on 22,070 labelled sentences)"
shipml train
cat <<MSG

==> Serving sentiment@latest on http://$host:$port/  (Ctrl+C stops it)
    Open http://$host:$port/ for the playground, or try:
    curl -X POST http://$host:$port/predict -H 'Content-Type: application/json' -d '{"text": "I love this"}'
    curl -X POST http://$host:$port/predict -H 'Content-Type: application/json' -d '{"text": "This was terrible and a waste of money"}'

MSG
exec shipml serve sentiment@latest --host "$host" --port "$port"
