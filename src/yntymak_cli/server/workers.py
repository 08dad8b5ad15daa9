"""Several `hq serve` processes on one socket, for HQ on PostgreSQL (`--workers N`).

The parent holds the address (run.bind with shared=True) and starts N worker processes;
each listens on it with its own SO_REUSEPORT socket and the kernel spreads new connections
over them. (One listening socket shared by all would not spread them: the first event loop
to wake accepts every connection waiting, and the others sit idle.) The address is
announced once every worker listens. A worker that dies (killed, out of
memory) is started again; one that keeps dying at start stops the whole server, as a
broken certificate or database would otherwise spin. SIGINT/SIGTERM stop every worker
after its requests in flight.

Processes are spawned, not forked: the parent has opened database connections (the
migration check), which a forked child must never share.

What is per process: the request rates, the bytes in flight, the one-upload-per-device
rule and the bundles-per-minute per device. Correctness across processes does not rest on
them: PostgreSQL's advisory lock per device and the unique bundle id make the same bundle
at two workers import once (store/hq.py).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from yntymak_cli.server.app import Settings
from yntymak_cli.server.run import Bound, listen_shared, serve

log = logging.getLogger("yntymak.server")

# A worker that dies this many times, each within FAST_EXIT seconds of its start, is not
# started again: the server stops with an error.
MAX_FAST_EXITS = 5
FAST_EXIT = 10.0
# Seconds each worker gets to finish its requests after SIGTERM (uvicorn's graceful
# shutdown is 30 s) before it is killed.
STOP_GRACE = 40.0


@dataclass(frozen=True)
class WorkerArgs:
    parent: int  # the server process's pid
    family: int
    address: tuple[Any, ...]  # what the parent's socket is bound to (its real port)
    settings: Settings
    certfile: Path | None
    keyfile: Path | None
    max_connections: int


def run_workers(
    bound: Bound,
    settings: Settings,
    workers: int,
    *,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    max_connections: int = 256,
    ready: Callable[[], None] = lambda: None,
) -> bool:
    """Serve with `workers` processes until SIGINT or SIGTERM; `ready()` once every one
    listens. False when workers kept failing at start (the error is in the log) and the
    server gave up."""
    _configure_logging()
    ctx = multiprocessing.get_context("spawn")
    # Each process verifies and imports one bundle at a time: the processes are the
    # parallelism (and each has its own interpreter lock).
    args = WorkerArgs(os.getpid(), bound.sock.family, bound.sock.getsockname(),
                      replace(settings, max_imports=1), certfile, keyfile,
                      max_connections)  # fmt: skip
    listening = ctx.Queue()
    waiting = set(range(workers))  # slots not yet listening for the first time
    # A plain flag: a signal handler that sets a threading.Event can deadlock with the
    # main thread waiting on that Event (both take its lock).
    stop: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs: list[BaseProcess | None] = [None] * workers
    started_at = [0.0] * workers
    fast_exits = 0
    gave_up = False
    try:
        for slot in range(workers):
            procs[slot], started_at[slot] = _start(ctx, slot, args, listening), time.monotonic()
        while not stop:
            time.sleep(0.1)
            while waiting and not listening.empty():
                waiting.discard(listening.get())
                if not waiting:
                    ready()
            for slot, proc in enumerate(procs):
                if stop:  # a Ctrl-C reaches the workers too: they end, not to be restarted
                    break
                if proc is None or proc.is_alive():
                    continue
                lived = time.monotonic() - started_at[slot]
                log.warning(
                    "worker %d (pid %s) ended with exit code %s after %.0f s; starting it again",
                    slot + 1, proc.pid, proc.exitcode, lived,
                )  # fmt: skip
                fast_exits = fast_exits + 1 if lived < FAST_EXIT else 0
                if fast_exits >= MAX_FAST_EXITS:
                    log.error("workers keep failing at start: stopping the server")
                    gave_up = True
                    stop.append(0)
                    break
                procs[slot], started_at[slot] = _start(ctx, slot, args, listening), time.monotonic()
    finally:
        _stop_all([p for p in procs if p is not None])
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return not gave_up


def _start(
    ctx: multiprocessing.context.SpawnContext, slot: int, args: WorkerArgs, listening: Any
) -> BaseProcess:
    proc = ctx.Process(
        target=_worker, args=(slot, args, listening), name=f"yntymak-hq-worker-{slot + 1}"
    )
    proc.start()
    log.info("worker %d started (pid %s)", slot + 1, proc.pid)
    return proc


def _stop_all(procs: list[BaseProcess]) -> None:
    for proc in procs:
        if proc.is_alive():
            proc.terminate()  # SIGTERM: uvicorn finishes the requests in flight
    deadline = time.monotonic() + STOP_GRACE
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            log.warning("worker pid %s did not stop in %.0f s: killed", proc.pid, STOP_GRACE)
            proc.kill()
            proc.join(5)


def _worker(slot: int, args: WorkerArgs, listening: Any) -> None:
    """A worker process: its own listening socket on the shared address, one uvicorn."""
    from yntymak_cli.home import set_home
    from yntymak_cli.i18n import set_lang

    if args.settings.home is not None:
        set_home(args.settings.home)  # --home of the command: HQ's media files are there
    # A Ctrl-C before uvicorn takes over SIGINT (it does once the app is built) would end
    # this worker with a KeyboardInterrupt traceback; the parent's SIGTERM follows anyway.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(args.parent)
    sock = listen_shared(args.family, args.address)
    listening.put(slot)  # connections now wait in this socket's queue

    # Once uvicorn runs, a Ctrl-C in the terminal reaches every worker too: uvicorn stops
    # gracefully on it, and the parent's SIGTERM that follows does not make it any harder.
    set_lang("en")  # refusals travel in English, as in the single-process server
    serve(
        Bound(sock, "", 0, True),
        args.settings,
        certfile=args.certfile,
        keyfile=args.keyfile,
        max_connections=args.max_connections,
    )


def _die_with_parent(parent: int) -> None:
    """A worker whose server process is gone (killed with SIGKILL, say) must not go on
    serving on its own, unsupervised: it is killed too, as the server was. On Linux the
    kernel sends the signal (PR_SET_PDEATHSIG); elsewhere a thread watches."""
    import ctypes
    import ctypes.util
    import sys
    import threading

    if sys.platform == "linux":
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        pr_set_pdeathsig = 1
        if libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before the line above
                os.kill(os.getpid(), signal.SIGKILL)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _configure_logging() -> None:
    from logging.config import dictConfig

    from yntymak_cli.server.run import LOG_CONFIG

    dictConfig(LOG_CONFIG)
