"""Resident memory of a web process: after loading Django and every route, and of gunicorn workers serving pages.

    python bench/web_memory.py [--workers 4]

Prints the RSS of a bare process that ran django.setup() and loaded the URL conf (what every gunicorn
worker holds before its first request) and of each gunicorn worker (production settings, collectstatic's
manifest, SQLite) after it served the login page, the project list and a project's pages.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.production import SEED, Session, _free_port, manage, production_env  # noqa: E402

HEAVY = ("sklearn", "scipy", "pandas", "cleanlab", "krippendorff", "torch", "transformers")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def bare_process(env: dict[str, str]) -> None:
    code = (
        "import sys, django; django.setup(); import config.urls; "
        "from django.urls import get_resolver; get_resolver().url_patterns; "
        "rss = [l for l in open('/proc/self/status') if l.startswith('VmRSS:')][0].split()[1]; "
        f"print(int(rss) / 1024, sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    rss, _, heavy = out.stdout.strip().partition(" ")
    print(f"after django.setup() + URL conf: {float(rss):.0f} MiB; ML libraries imported: {heavy}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="labelloop-webmem-"))
    env = production_env(tmp)
    bare_process(env)
    for command in (("migrate", "--noinput"), ("collectstatic", "--noinput")):
        manage(env, *command).check_returncode()
    project_id = int(manage(env, "shell", "-c", SEED).stdout.split()[-1])
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz/", timeout=1)  # noqa: S310 - the loopback server above
                break
            except OSError:
                time.sleep(0.2)
        for _ in range(args.workers * 3):  # spread over the workers
            client = Session(base)
            client.login("owner")
            for path in ("/", f"/projects/{project_id}/", f"/projects/{project_id}/quality/",
                         f"/projects/{project_id}/snapshots/", f"/projects/{project_id}/review/"):
                client.get(path)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        sizes = [rss_mib(int(pid)) for pid in children]
        print(f"gunicorn workers after serving pages ({len(sizes)}): "
              + ", ".join(f"{size:.0f}" for size in sizes) + f" MiB; total {sum(sizes):.0f} MiB")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
