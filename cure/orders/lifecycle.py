"""The order state machine: the one place that decides which transitions are legal."""

from enum import StrEnum


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

# RECEIVED -> RUNNING is legal: delivery is at least once, so a worker can start an order whose
# relay crashed after the broker confirmed the task but before the QUEUED mark was committed.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.RECEIVED: frozenset(
        {OrderStatus.QUEUED, OrderStatus.RUNNING, OrderStatus.FAILED, OrderStatus.CANCELLED}
    ),
    OrderStatus.QUEUED: frozenset(
        {OrderStatus.RUNNING, OrderStatus.FAILED, OrderStatus.INVALID, OrderStatus.CANCELLED}
    ),
    OrderStatus.RUNNING: frozenset(
        {OrderStatus.SUCCESS, OrderStatus.FAILED, OrderStatus.INVALID, OrderStatus.CANCELLED}
    ),
    **{state: frozenset() for state in FINAL_STATES},
}


def can_transition(current: OrderStatus, new: OrderStatus) -> bool:
    return new in TRANSITIONS[current]
