"""The order state machine: the one place that decides which transitions are legal."""

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class OrderStatus(StrEnum):
    RECEIVED = "RECEIVED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    INVALID = "INVALID"
    CANCELLED = "CANCELLED"


FINAL_STATES = frozenset(
    {OrderStatus.SUCCESS, OrderStatus.FAILED, OrderStatus.INVALID, OrderStatus.CANCELLED}
)

# Forward skips are legal because delivery is at least once and events from one worker can be
# applied by competing consumers: RECEIVED -> RUNNING (the relay crashed after the broker confirmed
# the task, before its QUEUED mark committed) and QUEUED -> a final state (the final event overtook
# RUNNING, which then arrives late and is dropped). Nothing ever moves backwards.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.RECEIVED: frozenset(
        {OrderStatus.QUEUED, OrderStatus.RUNNING, OrderStatus.FAILED, OrderStatus.CANCELLED}
    ),
    OrderStatus.QUEUED: frozenset(
        {
            OrderStatus.RUNNING,
            OrderStatus.SUCCESS,
            OrderStatus.FAILED,
            OrderStatus.INVALID,
            OrderStatus.CANCELLED,
        }
    ),
    OrderStatus.RUNNING: frozenset(
        {OrderStatus.SUCCESS, OrderStatus.FAILED, OrderStatus.INVALID, OrderStatus.CANCELLED}
    ),
    **{state: frozenset() for state in FINAL_STATES},
}


def can_transition(current: OrderStatus, new: OrderStatus) -> bool:
    return new in TRANSITIONS[current]


# A new attempt (the reconciler requeues an order whose worker went silent) restarts from QUEUED.
RETRYABLE_STATES = frozenset({OrderStatus.QUEUED, OrderStatus.RUNNING})
ACTIVE_STATES = frozenset({OrderStatus.RECEIVED, OrderStatus.QUEUED, OrderStatus.RUNNING})


def can_apply(
    current: OrderStatus, current_attempt: int, new: OrderStatus, new_attempt: int
) -> bool:
    """Whether an event (state and attempt) may move the order: the one rule the system follows.

    Attempts only grow; within an attempt the table above decides; a later attempt may only start
    over from QUEUED, and only from a state that can be retried.
    """
    if new_attempt < current_attempt:
        return False
    if new_attempt > current_attempt:
        return new == OrderStatus.QUEUED and current in RETRYABLE_STATES
    return can_transition(current, new)


def result_files(
    status: str, assets: Mapping[str, dict[str, Any]] | None
) -> list[tuple[str, dict[str, Any]]]:
    """An order's files by role once it succeeded (none before): the primary one first, then by
    role. The one rule for what an order's result is, for its status, its links and OGC's."""
    if status != OrderStatus.SUCCESS or not assets:
        return []
    return sorted(assets.items(), key=lambda item: (not item[1].get("primary", False), item[0]))
