"""training.ml and training.spec stay free of Django, and importing them starts no CUDA."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import training.ml

ROOT = Path(__file__).resolve().parents[3]


def test_every_module_imports_without_django_or_cuda():
    modules = ["training.spec"] + [f"training.ml.{m.name}" for m in pkgutil.iter_modules(training.ml.__path__)]
    assert {"training.ml.recipe", "training.ml.registry", "training.ml.launch"} <= set(modules)
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "import torch\n"
        "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "assert not leaked, leaked\n"
        "assert not torch.cuda.is_initialized()\n"
        "print('clean')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "clean" in result.stdout
