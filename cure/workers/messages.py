"""Celery task messages (protocol 2), so the outbox relay can publish them with aio-pika."""

import json
from typing import Any

RUN_ORDER_TASK = "cure.run_order"


def celery_task_message(
    task: str, *, task_id: str, args: list[Any], origin: str = "cure-api"
) -> tuple[bytes, dict[str, Any], dict[str, Any]]:
    """Body, headers and message properties of one Celery task call with JSON arguments."""
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
    body = json.dumps(
        [args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    )
    properties = {
        "correlation_id": task_id,
        "content_type": "application/json",
        "content_encoding": "utf-8",
    }
    return body.encode(), headers, properties
