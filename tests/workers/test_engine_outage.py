"""An engine that does not answer when a run starts is an outage the task waits out (an
OSError, as when it drops mid-run), not an error tried a bounded number of times; a wrong
engine address stays the configuration error it is."""

import socket

import pytest
from docker.errors import DockerException

from cure.containers.engine import DockerRunner
from cure.containers.runner import EngineUnavailable
from cure.workers.tasks import is_transient


def test_an_engine_that_does_not_answer_is_an_outage(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A socket that exists and refuses: bound, never listening (the engine's socket while
    # dockerd restarts).
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(path))
        with pytest.raises(EngineUnavailable) as caught:
            DockerRunner(f"unix://{path}", timeout=2)
    assert isinstance(caught.value, OSError) and is_transient(caught.value)
    assert "does not answer" in str(caught.value)


def test_a_wrong_engine_address_is_not_waited_out() -> None:
    with pytest.raises(DockerException) as caught:
        DockerRunner("bogus://engine", timeout=2)
    assert not isinstance(caught.value, EngineUnavailable)
    assert not is_transient(caught.value)
