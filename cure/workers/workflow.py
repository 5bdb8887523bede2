"""An app's workflow on a worker: the steps of its manifest run as a DAG.

Each step runs once its needs have succeeded; steps whose needs are met run side by side, at
most ``parallel`` at once. The first step that does not succeed (it failed, or it was stopped)
ends the workflow: the steps still running are stopped (``abort``), no further step starts, and
that step is returned. The containers themselves are the runner's (``Job.run_step``); this
module only decides what runs when.
"""

import asyncio
import contextvars
import functools
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from graphlib import TopologicalSorter

from cure.apps.schemas import AppStep
from cure.containers.runner import ContainerOutcome

# Runs one step's container to its end (synchronous: called in a thread); it stops the container
# soon after ``abort`` is set, and does not start it when it is set already.
StepRunner = Callable[[AppStep, threading.Event], ContainerOutcome]


@dataclass(frozen=True)
class StepResult:
    step: AppStep
    outcome: ContainerOutcome


async def run_steps(
    steps: list[AppStep],
    run_one: StepRunner,
    *,
    parallel: int,
    succeeded: Callable[[AppStep, ContainerOutcome], bool],
) -> tuple[StepResult | None, StepResult | None]:
    """Run ``steps`` in the order of their needs: (the first step that did not succeed, or None;
    the last step that ended). An exception of a step (the engine was lost) stops the others
    and is raised once they have ended."""
    by_name = {step.name: step for step in steps}
    sorter = TopologicalSorter({step.name: step.needs for step in steps})
    sorter.prepare()
    abort = threading.Event()
    # Threads of the workflow's own, as many as may run: the loop's default pool stays free for
    # what the rest of the worker needs (a DNS lookup when a connection is made again).
    threads = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="cure-step")
    loop = asyncio.get_running_loop()
    waiting: deque[str] = deque()
    running: dict[asyncio.Future[ContainerOutcome], AppStep] = {}
    failed: StepResult | None = None
    last: StepResult | None = None
    try:
        while failed is None and sorter.is_active():
            waiting.extend(sorter.get_ready())
            while waiting and len(running) < parallel:
                step = by_name[waiting.popleft()]
                # In the run's context (as asyncio.to_thread would): its log fields name the order.
                call = functools.partial(contextvars.copy_context().run, run_one, step, abort)
                task = asyncio.ensure_future(loop.run_in_executor(threads, call))
                running[task] = step
            if not running:  # cannot happen in a valid DAG (the manifest checks it is one)
                raise RuntimeError("no step of the workflow can run")
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                step = running.pop(task)
                last = StepResult(step, task.result())
                if succeeded(step, last.outcome):
                    sorter.done(step.name)
                elif failed is None:
                    failed = last
        return failed, last
    finally:
        if running:  # a step failed, raised, or the run itself was cancelled: stop the others
            abort.set()
            await asyncio.gather(*running, return_exceptions=True)
        threads.shutdown(wait=False)
