"""Configuration from the environment: production refuses to start on a missing or weak secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRONG = "k3J9xq0vZ8Lr2mNw5Tb7Yc1Hd4Fg6Ps0Qa9Ue3Ri8Wo2Ej5Kl7"


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE"}}
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings.production", LABELLOOP_EMBEDDED_REDIS="0")
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("secret", "reason"),
    [(None, "SECRET_KEY is not set"), ("short", "looks unsafe"), ("dev-insecure-" + "x" * 40, "looks unsafe")],
)
def test_production_refuses_a_missing_or_weak_secret(secret, reason):
    env = {} if secret is None else {"SECRET_KEY": secret}
    result = load_settings(**env)
    assert result.returncode != 0
    assert reason in result.stderr


def test_production_starts_with_a_real_secret_and_debug_off_by_default():
    result = load_settings(SECRET_KEY=STRONG)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_an_unknown_scan_model_stops_the_start_naming_the_variable():
    result = load_settings(SECRET_KEY=STRONG, LABELLOOP_SCAN_MODEL="bert")
    assert result.returncode != 0
    assert "LABELLOOP_SCAN_MODEL='bert': choose linear or encoder." in result.stderr
    assert load_settings(SECRET_KEY=STRONG, LABELLOOP_SCAN_MODEL="encoder").returncode == 0
