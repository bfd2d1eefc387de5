#!/bin/sh
# Waits for the database at TUNESMITH_DATABASE_URL, applies the migrations, then runs the
# given command (exec), e.g. `tunesmith-prestart tunesmith serve --workers 0`.
# TUNESMITH_DB_WAIT_SECONDS (default 60) bounds the wait.
set -eu

: "${TUNESMITH_DATABASE_URL:?TUNESMITH_DATABASE_URL must name the database}"
wait_s="${TUNESMITH_DB_WAIT_SECONDS:-60}"

python - "$wait_s" <<'PY'
import os
import sys
import time

from sqlalchemy import create_engine, text

url = os.environ["TUNESMITH_DATABASE_URL"]
deadline = time.monotonic() + float(sys.argv[1])
engine = create_engine(url, pool_pre_ping=True)
while True:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        break
    except Exception as exc:
        if time.monotonic() > deadline:
            sys.exit(f"tunesmith-prestart: database not reachable after {sys.argv[1]} s: {exc}")
        print(f"tunesmith-prestart: waiting for the database ({type(exc).__name__})", flush=True)
        time.sleep(1)
engine.dispose()
PY

tunesmith db upgrade
if [ "$#" -gt 0 ]; then
    exec "$@"
fi
