"""A fresh clone has no var/ folder: the default SQLite database must still open (manage.py migrate in make demo)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_migrate_on_the_default_database_creates_its_folder(tmp_path):
    var = tmp_path / "no-such-folder-yet" / "var"
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings.dev", "LABELLOOP_VAR_DIR": str(var)}
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (var / "labelloop.sqlite3").exists()
