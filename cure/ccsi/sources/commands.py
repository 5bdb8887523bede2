"""``cure ccsi sources``: add, replace, list, show, enable, disable and remove catalogue sources
straight on the database (an operator on the machine; the API's ``/v1/ccsi/sources`` is the same
for admins over HTTP), and print the document's JSON Schema. Every process that searches or
stages sees a change at once (the ``cure_sources`` notice).

What is printed never holds a secret: documents are shown as the API shows them, with
``"**********"`` for each stored secret, and errors name fields, never values.

``cure ccsi sources check [NAME] --bbox --start --end`` (reachability, conformance, counts per
mapped collection) runs ``cure.ccsi.sources.check``.
"""

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

SOURCES_HELP = "remote catalogues (STAC APIs, OpenSearch) searched beside the local one"


def add_parsers(ccsi_sub: Any) -> None:
    """Add ``sources`` and its commands to the ``cure ccsi`` subparsers."""
    sources = ccsi_sub.add_parser("sources", help=SOURCES_HELP, description=SOURCES_HELP)
    sub = sources.add_subparsers(dest="sources_command", required=True)

    add = sub.add_parser(
        "add",
        help="add a source from its JSON document (docs/sources.md); inline secrets are stored "
        "encrypted",
    )
    add.add_argument("file", help="the source document (JSON), or - for standard input")
    add.add_argument(
        "--replace",
        action="store_true",
        help='replace the source of that name if there is one ("**********" keeps a stored secret)',
    )
    add.set_defaults(func=_add)

    listing = sub.add_parser("list", help="the sources: name, kind, enabled, priority, version")
    listing.add_argument("--json", action="store_true", help="print them as JSON (secrets masked)")
    listing.set_defaults(func=_list)

    show = sub.add_parser("show", help="one source's document (secrets masked)")
    show.add_argument("name")
    show.set_defaults(func=_show)

    for verb, enabled, what in (
        ("enable", True, "search and stage from a source again"),
        ("disable", False, "stop searching and staging from a source, keeping it"),
    ):
        toggle = sub.add_parser(verb, help=what)
        toggle.add_argument("name")
        toggle.set_defaults(func=_toggle, enabled=enabled)

    remove = sub.add_parser("remove", help="remove a source and its stored secrets")
    remove.add_argument("name")
    remove.set_defaults(func=_remove)

    schema = sub.add_parser("schema", help="print the source document's JSON Schema")
    schema.set_defaults(func=_schema)

    check = sub.add_parser(
        "check",
        help="reachability, conformance and the items of each mapped collection over a box and "
        "a period, of one source or of all",
    )
    check.add_argument("name", nargs="?", help="the source (all when absent)")
    check.add_argument(
        "--bbox", help="min_lon,min_lat,max_lon,max_lat (WGS84); the world if absent"
    )
    check.add_argument("--start", help="the period's start: a date or an RFC 3339 time")
    check.add_argument("--end", help="the period's end: a date (its end) or an RFC 3339 time")
    check.add_argument("--json", action="store_true", help="print the checks as JSON")
    check.set_defaults(func=_check)


def _run(work: Callable[[Any], Awaitable[str]]) -> None:
    """Run ``work(session)`` in one transaction; print its answer, or the error (exit 1)."""
    from cure.config import get_settings
    from cure.kit.errors import CureError
    from cure.kit.resources import open_resources

    async def run() -> str:
        async with open_resources(get_settings()) as resources:
            async with resources.sessionmaker() as session, session.begin():
                return await work(session)

    try:
        print(asyncio.run(run()))
    except CureError as exc:
        print(f"cure ccsi sources: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None


def _read_document(file: str) -> Any:
    from cure.ccsi.sources.schemas import SourceDocument

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"cure ccsi sources: cannot read {file}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"cure ccsi sources: {file} is not JSON ({exc})") from None
    try:
        return SourceDocument.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"  {'.'.join(str(part) for part in error['loc']) or '(document)'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise SystemExit(
            "cure ccsi sources: the document is not valid:\n" + "\n".join(problems)
        ) from None


def _add(args: argparse.Namespace) -> None:
    from cure.ccsi.sources import service
    from cure.config import get_settings

    document = _read_document(args.file)
    settings = get_settings()

    async def work(session: Any) -> str:
        if args.replace:
            found, added = await service.put(session, settings, document.name, document)
        else:
            found, added = await service.add(session, settings, document), True
        verb = "added" if added else "replaced"
        return f"source {found.name} {verb} (version {found.version}, {_summary(found)})"

    _run(work)


def _summary(source: Any) -> str:
    state = "enabled" if source.enabled else "disabled"
    return f"{source.kind}, auth {source.auth.get('type', 'none')}, {state}"


def _list(args: argparse.Namespace) -> None:
    from cure.ccsi.sources import service

    async def work(session: Any) -> str:
        sources = await service.list_sources(session)
        if args.json:
            return json.dumps([s.model_dump(mode="json") for s in sources], indent=2)
        if not sources:
            return "no sources (add one: cure ccsi sources add FILE.json)"
        rows = [("NAME", "KIND", "ENABLED", "PRIORITY", "VERSION", "AUTH", "COLLECTIONS", "URL")]
        rows += [
            (
                s.name,
                s.kind,
                "yes" if s.enabled else "no",
                str(s.priority),
                str(s.version),
                str(s.auth.get("type", "none")),
                ",".join(sorted(s.collections)),
                s.url,
            )
            for s in sources
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
            for row in rows
        )

    _run(work)


def _show(args: argparse.Namespace) -> None:
    from cure.ccsi.sources import service

    async def work(session: Any) -> str:
        found = await service.get(session, args.name)
        return json.dumps(found.model_dump(mode="json"), indent=2)

    _run(work)


def _toggle(args: argparse.Namespace) -> None:
    from cure.ccsi.sources import service

    async def work(session: Any) -> str:
        found = await service.set_enabled(session, args.name, enabled=args.enabled)
        state = "enabled" if found.enabled else "disabled"
        return f"source {found.name} {state} (version {found.version})"

    _run(work)


def _remove(args: argparse.Namespace) -> None:
    from cure.ccsi.sources import service

    async def work(session: Any) -> str:
        await service.remove(session, args.name)
        return f"source {args.name} removed"

    _run(work)


def _schema(_args: argparse.Namespace) -> None:
    from cure.ccsi.sources.schemas import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))


def _check(args: argparse.Namespace) -> None:
    """Check one source or every one; exit 1 when a check found a problem."""
    from cure.ccsi.sources import check

    try:
        where = check.where_and_when(args.bbox, args.start, args.end)
    except ValueError as exc:
        raise SystemExit(f"cure ccsi sources check: {exc}") from None
    results = check.run_checks(args.name, where)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in results], indent=2))
    else:
        print("\n".join(check.summary(r) for r in results) or "no sources to check")
    if not all(r.ok for r in results):
        raise SystemExit(1)
