"""gunicorn's hooks for the /metrics endpoint: `gunicorn -c python:config.gunicorn config.wsgi`.

With PROMETHEUS_MULTIPROC_DIR set, each worker writes its counters to files there and a
scrape sums them all (docs/operations/metrics.md). The master empties the directory when
it starts, as prometheus_client's documentation asks (files of an earlier run would be
counted again), and tells the library when a worker exits. Every other gunicorn setting
still comes from the command line.
"""

import os
from pathlib import Path
from typing import Any


def on_starting(server: Any) -> None:
    """Before any worker is forked: an empty directory for this run's figures."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not folder:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A worker's counters stay (a scrape still sums them); its live gauges, if any
    metric used one, are dropped."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
