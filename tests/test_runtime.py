"""The runtime table (cure/runtime.py) is what runs: `cure api`'s leader starts its api-leader
services and each stand-alone command those of its command, through the same loop, and the
README's process table is the table's own rendering."""

import asyncio
import time

import pytest

from cure import runtime
from cure.kit.resources import build_resources
from cure.main import create_app
from tests.conftest import ROOT, _retire_earlier_orders


def test_the_readmes_process_table_is_the_runtime_table() -> None:
    readme = (ROOT / "README.md").read_text()
    assert runtime.process_table() in readme, (
        "README.md's process table differs from cure/runtime.py: paste "
        "`python -c 'from cure.runtime import process_table; print(process_table())'`"
    )


def test_the_tables_channels_are_those_the_notices_go_to() -> None:
    from cure.auth.principals import CHANNEL as AUTH
    from cure.ccsi.sources.service import CHANNEL as SOURCES
    from cure.logs.waiters import CHANNEL as ORDER_LOGS
    from cure.outbox.relay import OUTBOX_CHANNEL

    assert runtime.OUTBOX_CHANNEL == OUTBOX_CHANNEL
    assert (runtime.ORDER_LOGS_CHANNEL, runtime.AUTH_CHANNEL) == (ORDER_LOGS, AUTH)
    assert runtime.SOURCES_CHANNEL == SOURCES


def test_the_command_line_is_built_without_prometheus_client() -> None:
    """`cure worker` names the metrics' multiprocess folder after the command line is parsed
    and before prometheus_client is first imported: building the parser must not import it."""
    import subprocess
    import sys

    check = (
        "import sys\n"
        "from cure import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('prometheus_client' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_every_service_runs_somewhere_and_every_command_runs_some() -> None:
    names = [s.name for s in runtime.SERVICES]
    assert len(names) == len(set(names))
    for service in runtime.SERVICES:
        assert service.does and service.where in ("api-leader", "api", "worker")
        if service.where == "api-leader":  # the leader's are also a command's, and startable
            assert service.command and service.run is not None
    assert set(runtime.COMMANDS) == {"relay", "order-events", "log-saver"}
    assert runtime.services(command="status-manager") == runtime.services(command="order-events")


async def _running_names(seconds: float = 15) -> set[str]:
    """The names of this loop's tasks once the leader's services are among them."""
    wanted = {s.name for s in runtime.services()}
    deadline = time.monotonic() + seconds
    while True:
        names = {task.get_name() for task in asyncio.all_tasks()}
        if wanted <= names or time.monotonic() > deadline:
            return names
        await asyncio.sleep(0.1)


def test_cure_api_starts_the_leaders_services_from_the_table(settings) -> None:  # type: ignore[no-untyped-def]
    _retire_earlier_orders()  # what the services would find to do is not this test's

    async def started() -> set[str]:
        app = create_app(settings.model_copy(update={"run_background_services": True}))
        async with app.router.lifespan_context(app):
            names = await _running_names()
        await asyncio.sleep(0.3)  # the broker connections' close callbacks, before the loop
        return names

    names = asyncio.run(started())
    leader = {s.name for s in runtime.SERVICES if s.where == "api-leader"}
    assert leader <= names, leader - names
    assert {"notice-listener", "leadership"} <= names


@pytest.mark.parametrize("command", ["relay", "order-events", "status-manager", "log-saver"])
def test_each_command_starts_its_services_from_the_table(settings, command: str) -> None:  # type: ignore[no-untyped-def]
    _retire_earlier_orders()  # what the relay and notifier would find to do is not ours

    async def started() -> set[str]:
        resources = build_resources(settings)
        alone = asyncio.create_task(runtime.run_alone(command, resources))
        try:
            wanted = {s.name for s in runtime.services(command=command)}
            deadline = time.monotonic() + 15
            while not wanted <= (names := {t.get_name() for t in asyncio.all_tasks()}):
                assert time.monotonic() < deadline, (wanted, names)
                await asyncio.sleep(0.05)
            return names
        finally:
            alone.cancel()
            await asyncio.gather(alone, return_exceptions=True)
            await resources.dispose()
            await asyncio.sleep(0.3)  # the broker connections' close callbacks, before the loop

    names = asyncio.run(started())
    ours = {s.name for s in runtime.services(command=command)}
    others = {s.name for s in runtime.SERVICES if s.run is not None} - ours
    assert ours <= names and not (others & names)
