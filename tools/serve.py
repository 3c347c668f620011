"""``./build.sh serve [--port N]``: the collector serving the demo site (build/www) on one origin.

Starts ``python -m empmix_collector`` with a fixed demo token and a database under var/, prints
the page URLs once it listens, and stops it cleanly on Ctrl-C (SIGINT/SIGTERM are forwarded).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "demo_token"  # site/app.py uses it unless the page URL says ?token=...


def main() -> int:
    parser = argparse.ArgumentParser(prog="./build.sh serve", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--db", default=str(ROOT / "var" / "serve.db"))
    args = parser.parse_args()
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen(
        [sys.executable, "-m", "empmix_collector", "--host", "127.0.0.1", "--port", str(args.port),
         "--db", args.db, "--token", TOKEN, "--site", str(ROOT / "build" / "www")],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
        start_new_session=True)  # Ctrl-C reaches only us; we forward it once

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    assert child.stdout is not None
    for line in child.stdout:  # wait for "empmix-collector listening on http://HOST:PORT"
        print(line, end="", flush=True)
        if "listening on " in line:
            base = line.split("listening on ", 1)[1].strip()
            print(f"\n  app:              {base}/\n  app in a worker:  {base}/worker.html\n"
                  f"  app, MicroPython: {base}/mpy.html  (and {base}/mpy-worker.html)\n"
                  f"  dashboard:        {base}/dashboard.html\n  project token:    {TOKEN}\n"
                  f"  database:         {args.db}\n\nCtrl-C stops the collector.", flush=True)
            break
    for line in child.stdout:
        print(line, end="", flush=True)
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
