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


DEMO_PAGES = """
from django.test import Client
client = Client(HTTP_HOST="localhost")
missing = client.get("/no/such/page/")
css = client.get("/static/css/app.css")
print(missing.status_code, "URLconf" in missing.content.decode(), "Not found" in missing.content.decode())
print(css.status_code)
"""


def test_the_demo_hides_debug_pages_and_serves_its_static_files(tmp_path):
    """make demo runs the dev settings: a 404 is the styled page, not Django's list of every URL pattern,
    and static files are served without collectstatic."""
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL", "DEBUG")}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings.dev", "LABELLOOP_VAR_DIR": str(tmp_path / "var")}
    run = [sys.executable, "manage.py"]
    subprocess.run([*run, "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, check=True)
    done = subprocess.run([*run, "shell", "-c", DEMO_PAGES], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    missing, css = done.stdout.strip().splitlines()[-2:]  # after shell's "N objects imported" line
    assert missing == "404 False True"
    assert css == "200"
