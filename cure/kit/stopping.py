"""Stopping on time: every CURE process exits within ``shutdown_seconds`` of SIGTERM.

Compose gives a container 10 s between SIGTERM and SIGKILL, Kubernetes 30 s. A process that is
still busy then is killed mid-write, so each one stops its own work in time instead:

- ``on_stop_signal`` runs a callback in the event loop as soon as SIGTERM or SIGINT arrives,
  before the handler that was there (uvicorn's, which then stops accepting and waits for the
  open connections): the API closes its long polls and event streams at once with it.
- ``within`` bounds a step of a shutdown: what has not finished by its deadline is cancelled,
  and a step that swallows its cancellation is left behind, not waited for.
- ``stopping_now`` is set when a process begins to stop: a worker's pool process sets it on its
  way out, and the supervision of its app container stops the app at its next tick (its order
  goes back to the queue, unacknowledged, for another run).
- ``exit_by`` is the backstop: once armed, the process ends with exit status 1 at the deadline
  whatever is still running (a thread, a C call that does not return). Nothing is lost by it:
  orders, outbox rows and callback retries are in the database, and an unacknowledged task goes
  back to its queue.
"""

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

log = logging.getLogger("cure.stopping")

# Set once this process is stopping: work that runs in threads (a worker's app supervision)
# stops at its next check instead of running on while the process waits for it.
stopping_now = threading.Event()

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_stop_signal(
    callback: Callable[[signal.Signals], None],
    *,
    at_once: Callable[[signal.Signals], None] | None = None,
) -> Callable[[], None]:
    """Call ``callback`` (with the signal) in the running loop at SIGTERM or SIGINT, then the
    handler that was installed before (uvicorn's, or Python's own); ``at_once`` runs in the
    signal handler itself (arming the backstop: it must not wait for a loop that may be stuck).
    Returns a function that puts the earlier handlers back. Outside the main thread (signals
    cannot be caught there) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    earlier = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def handle(sig: int, frame: FrameType | None) -> None:
        if at_once is not None:
            at_once(signal.Signals(sig))
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(callback, signal.Signals(sig))
        before = earlier[signal.Signals(sig)]
        if callable(before):
            before(sig, frame)
        elif before == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, before in earlier.items():
            if signal.getsignal(sig) is handle:
                signal.signal(sig, before)

    return restore


CANCEL_SECONDS = 0.2  # how long a step past its time is given to take its cancellation


async def within(seconds: float, step: Awaitable[Any], what: str) -> None:
    """Await ``step`` for at most ``seconds``, then cancel it and give it CANCEL_SECONDS more
    before giving up on it: a step never takes longer than ``seconds`` + CANCEL_SECONDS."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=max(seconds, 0))
    if task in done:
        if not task.cancelled() and task.exception() is not None:
            log.warning("stopping: %s failed: %r", what, task.exception())
        return
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=CANCEL_SECONDS)
    log.warning(
        "stopping: %s did not finish within %.1f s%s",
        what,
        seconds,
        "" if done else "; left behind",
    )


FLUSH_SECONDS = 0.5  # the backstop's last flush of the log handlers


def exit_by(seconds: float, what: str) -> threading.Timer:
    """Arm the backstop: exit status 1 in ``seconds`` (less the time of a last flush of the
    logs) unless the process has ended before."""
    seconds = max(seconds - FLUSH_SECONDS, 0)

    def now() -> None:
        log.error("stopping: %s still running %.1f s after the stop signal; exiting", what, seconds)
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                try:
                    handler.flush(timeout=FLUSH_SECONDS)  # type: ignore[call-arg]
                except TypeError:  # a handler whose flush takes no time limit
                    handler.flush()
        os._exit(1)

    timer = threading.Timer(seconds, now)
    timer.daemon = True
    timer.start()
    return timer
