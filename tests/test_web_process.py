"""A web process stays small: loading Django and every route imports no ML library.

scikit-learn, SciPy, pandas, cleanlab, krippendorff (about 220 MiB a process) and torch/transformers/peft are
imported by the code that needs them, when a request or a job first needs them; gunicorn's workers each
pay for them only then. docs/benchmarks.md records the resident memory of a web process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sklearn", "scipy", "pandas", "cleanlab", "krippendorff", "torch", "transformers", "peft", "accelerate")


def test_loading_every_route_imports_no_ml_library():
    code = (
        "import json, sys, django; django.setup(); import config.urls; "
        "from django.urls import get_resolver; get_resolver().url_patterns; "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "config.settings.test", "LABELLOOP_EMBEDDED_REDIS": "0"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
