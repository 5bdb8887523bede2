"""Celery task messages (protocol 2), so a task can be published through the outbox with aio-pika."""

from typing import Any


def celery_task_message(
    task: str, *, task_id: str, args: list[Any], origin: str = "cure-api"
) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """Body (to be sent as JSON), headers and message properties of one Celery task call."""
    headers = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr(args),
        "kwargsrepr": "{}",
        "origin": origin,
        "ignore_result": True,
    }
    body = [args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    properties = {
        "correlation_id": task_id,
        "content_type": "application/json",
        "content_encoding": "utf-8",
    }
    return body, headers, properties
