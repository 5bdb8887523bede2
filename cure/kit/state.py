"""What one API process holds while it runs: its settings, its database resources, its notice
listener, and the parts each domain keeps for the process (the federation's clients, the storage
client, the log waiters, ...), made by ``create_app`` and its lifespan.

The kit cannot name a domain's types (the import contracts), so a domain's part is held under a
typed key the domain declares next to its dependency, like aiohttp's ``web.AppKey``:
``FEDERATION = StateKey[Federation]("federation")`` in ``cure/ccsi/dependencies.py``, then
``state_of(request.app).get(FEDERATION)`` is a ``Federation | None`` to mypy, ``need`` a
``Federation`` (or ``NotStarted``).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from cure.config import Settings
from cure.kit.listen import Listener
from cure.kit.resources import Resources

T = TypeVar("T")


class NotStarted(RuntimeError):
    """A part the lifespan makes was asked for before the lifespan ran (or after it ended)."""


class StateKey(Generic[T]):
    """The typed name of one part of the process's state."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StateKey({self.name!r})"


@dataclass
class AppState:
    settings: Settings
    # Made in the lifespan; None before it runs (an app built but not started).
    resources: Resources | None = None
    listener: Listener | None = None
    _parts: dict[StateKey[Any], Any] = field(default_factory=dict, repr=False)

    @property
    def db(self) -> Resources:
        """The engine and sessionmakers (``NotStarted`` outside the lifespan)."""
        if self.resources is None:
            raise NotStarted("the app's database resources are made in its lifespan")
        return self.resources

    @property
    def notices(self) -> Listener:
        """The process's listener of the database's change notices (``NotStarted`` outside the
        lifespan)."""
        if self.listener is None:
            raise NotStarted("the app's notice listener is made in its lifespan")
        return self.listener

    def put(self, key: StateKey[T], part: T) -> T:
        self._parts[key] = part
        return part

    def get(self, key: StateKey[T]) -> T | None:
        """The part, or None where this process has none (an optional one, or not started)."""
        return cast(T | None, self._parts.get(key))

    def need(self, key: StateKey[T]) -> T:
        """The part, which the lifespan always makes."""
        try:
            return cast(T, self._parts[key])
        except KeyError:
            raise NotStarted(f"the app has no {key.name} (made in its lifespan)") from None

    def pop(self, key: StateKey[T]) -> T | None:
        """Take the part out (a test's transaction that must not use it), to ``put`` back."""
        return cast(T | None, self._parts.pop(key, None))

    def made(self, key: StateKey[T], make: Callable[[], T]) -> T:
        """The part, made at first use (for parts that need only the settings)."""
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = make()
        return cast(T, part)


def state_of(app: Any) -> AppState:
    """The state of a CURE app (``create_app`` keeps it as ``app.state.cure``)."""
    state: AppState = app.state.cure
    return state
