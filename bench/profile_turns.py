"""Where a turn's CPU goes: the app under cProfile, driven by the `bench.turns` load.

The app runs as in `bench.turns` (its own process, Direct Line over loopback, the
embedded SQLite store or the local Cosmos DB server) with a cProfile profiler that
SIGUSR1 switches on after the warm-up and SIGUSR2 switches off and writes out, so
start-up and seeding stay out of the figures. The hottest functions are printed by own
time (where the CPU is spent) and by cumulative time (which layer it is spent under),
as ms per turn. Only the event-loop thread is profiled (aiosqlite's SQLite thread is
not), and cProfile roughly doubles the cost of Python calls: read shares, not absolute
figures; `bench.turns` has the unprofiled numbers.

Run: `.venv/bin/python -m bench.profile_turns [--target sqlite] [--conversations 32] [--turns 10]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.turns import ROOT, WARM_UP_CUSTOMERS, cpu_seconds, free_port, load, wait_until_healthy
from tests.support.cosmos import TEST_KEY, cosmos_server

# `python app.py` with a profiler the bench switches on and off by signal.
_PROFILED_APP = """
import cProfile, signal, sys
from bot.cli import main
profiler = cProfile.Profile()
def stop(*_):
    profiler.disable()
    profiler.dump_stats(sys.argv[1])
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
signal.signal(signal.SIGUSR2, stop)
sys.exit(main(["serve"]))
"""


@contextlib.contextmanager
def profiled_app(target: str, workdir: Path, profile: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"}
    with contextlib.ExitStack() as stack:
        if target == "cosmos":
            endpoint = stack.enter_context(cosmos_server())
            env.update({"STORE": "cosmos", "COSMOS_ENDPOINT": endpoint, "COSMOS_KEY": TEST_KEY})
        else:
            env.update({"STORE": "sqlite", "SQLITE_PATH": str(workdir / "profile.sqlite3")})
        command = [sys.executable, "-c", _PROFILED_APP, str(profile)]
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(process, url, "the app")
            yield url, process.pid
        finally:
            process.terminate()
            process.wait(60)


def report(profile: Path, turns: int, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(profile), stream=out)
    stats.strip_dirs()
    raw = stats.stats  # type: ignore[attr-defined]
    rows = [
        (func, calls, own, cumulative)
        for func, (_, calls, own, cumulative, _) in raw.items()
        if not func[2].startswith("<built-in method select") and "epoll" not in func[2]
    ]
    for title, column in (("own time", 2), ("cumulative time", 3)):
        out.write(f"\nTop {limit} by {title}, ms per turn (calls per turn):\n")
        for func, calls, own, cumulative in sorted(rows, key=lambda r: -r[column])[:limit]:
            name = f"{func[0]}:{func[1]}({func[2]})"
            value = own if column == 2 else cumulative
            out.write(f"  {value * 1000 / turns:8.3f}  ({calls / turns:7.1f})  {name}\n")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", choices=["sqlite", "cosmos"], default="sqlite")
    parser.add_argument("--conversations", type=int, default=32)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--keep", default="", help="write the profile here (for pstats or snakeviz)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(args.keep) if args.keep else Path(tmp) / "app.prof"
        with profiled_app(args.target, Path(tmp), profile) as (url, pid):
            asyncio.run(load(url, 4, 3, WARM_UP_CUSTOMERS))  # warm-up: imports, connections
            os.kill(pid, signal.SIGUSR1)
            cpu_before = cpu_seconds(pid)
            seconds, latencies, errors = asyncio.run(load(url, args.conversations, args.turns))
            cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / max(1, len(latencies))
            os.kill(pid, signal.SIGUSR2)
            deadline = time.monotonic() + 30
            while not profile.exists() and time.monotonic() < deadline:
                time.sleep(0.1)  # another process writes it; there is nothing to await
        # Per customer message; the conversation starts (a welcome turn each) are in the
        # profile too, one per `--turns` messages.
        turns = len(latencies)
        print(
            f"{args.target}: {len(latencies)} turns in {seconds:.1f} s under cProfile, "
            f"{cpu_ms:.1f} CPU ms per turn (profiled), {errors} errors"
        )
        print(report(profile, turns, args.limit))


if __name__ == "__main__":
    main()
