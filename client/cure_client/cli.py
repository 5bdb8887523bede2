"""``cure-client``: log in, list apps, order, watch, download, list orders, search products.

Human-readable output by default (a live progress bar on a terminal); ``--json`` prints JSON for
scripts (one document per command; ``watch`` prints one JSON line per change).
"""

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn
from rich.table import Table

from cure_client import config
from cure_client.auth import ClientCredentials, Credentials, PasswordLogin
from cure_client.client import AsyncCureClient
from cure_client.errors import CureClientError
from cure_client.models import Order
from cure_client.region import parse_region

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


class Cli:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json = bool(args.json)
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False)
        stored = config.load()
        self.url = (
            args.url or os.environ.get("CURE_URL") or stored.get("url") or config.DEFAULT_URL
        ).rstrip("/")
        self.credentials = (
            config.credentials_of(stored) if stored.get("url", self.url) == self.url else None
        )

    def client(self, credentials: Credentials | None = None) -> AsyncCureClient:
        return AsyncCureClient(
            self.url, credentials or self.credentials, on_refresh=config.remember_refresh
        )

    def print_json(self, value: Any) -> None:
        print(json.dumps(value, default=str, indent=None if self.args.command == "watch" else 2))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A table on a terminal; elsewhere (a pipe, a file) one tab-separated line per row."""
        if not self.out.is_terminal:
            for row in rows:
                print("\t".join(row))
            return
        table = Table(*headers)
        table.columns[-1].overflow = "ellipsis"
        for row in rows:
            table.add_row(*row)
        self.out.print(table)

    def show_order(self, order: Order) -> None:
        detail = f" {order.progress}%" if order.progress is not None and not order.is_final else ""
        message = f" - {order.message}" if order.message else ""
        self.out.print(f"{order.order_id} {order.app_id} [bold]{order.status}[/]{detail}{message}")


# -- commands -----------------------------------------------------------------------------------


async def login(cli: Cli) -> int:
    args = cli.args
    client_id = args.client_id or os.environ.get("CURE_CLIENT_ID")
    client_secret = args.client_secret or os.environ.get("CURE_CLIENT_SECRET")
    credentials: Credentials
    if client_id:
        if not client_secret:
            client_secret = getpass.getpass("Client secret: ")
        credentials = ClientCredentials(client_id, client_secret, args.scope)
    elif args.email:
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass()
        credentials = PasswordLogin(args.email, password=password, scope=args.scope)
    else:
        cli.err.print("give --client-id (and --client-secret) or --email")
        return EXIT_ERROR
    async with cli.client(credentials) as cure:
        token = await cure.login()
    path = config.save(config.to_data(cli.url, credentials))
    if cli.json:
        cli.print_json({"url": cli.url, "scope": token.scope, "config": str(path)})
    else:
        cli.out.print(f"Logged in to {cli.url}; scopes: {token.scope}")
        cli.out.print(f"Credentials kept in {path} (readable by you only)")
    return EXIT_OK


async def apps(cli: Cli) -> int:
    async with cli.client() as cure:
        listed = await cure.apps()
    if cli.json:
        cli.print_json([app.model_dump(mode="json") for app in listed])
        return EXIT_OK
    rows = [
        (
            app.id,
            app.version,
            app.title,
            ", ".join(i.collection for i in app.inputs) or "-",
            ", ".join(app.parameters.get("properties", {})) or "-",
        )
        for app in listed
    ]
    cli.table(("app", "version", "title", "inputs", "parameters"), rows)
    return EXIT_OK


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = json.loads(args.params) if args.params else {}
    for item in args.param or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise CureClientError(f"--param {item!r}: write name=value")
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value  # a plain string
    return params


def _region(args: argparse.Namespace) -> dict[str, Any]:
    given = [v for v in (args.region, args.geojson, args.bbox, args.wkt) if v]
    if len(given) != 1:
        raise CureClientError("give exactly one of --region, --geojson, --bbox, --wkt")
    return parse_region(given[0])


async def order(cli: Cli) -> int:
    args = cli.args
    async with cli.client() as cure:
        submitted = await cure.submit(
            args.app,
            _region(args),
            args.start,
            args.end,
            params=_params(args),
            idempotency_key=args.idempotency_key,
            notify_email=False if args.no_email else None,
        )
        if not args.wait:
            if cli.json:
                cli.print_json(submitted.model_dump(mode="json"))
            else:
                cli.out.print(f"Ordered {submitted.app_id}: {submitted.order_id}")
            return EXIT_OK
        if not cli.json:
            cli.out.print(f"Ordered {submitted.app_id}: {submitted.order_id}")
        final = await _follow(cli, cure, submitted.order_id)
        files = []
        if final.status == "SUCCESS":
            files = await _download(cli, cure, final, Path(args.out), roles=None)
    if cli.json:
        cli.print_json({**final.model_dump(mode="json"), "files": [str(f) for f in files]})
    return EXIT_OK if final.status == "SUCCESS" else EXIT_FAILED


async def _follow(cli: Cli, cure: AsyncCureClient, order_id: str) -> Order:
    """Follow an order to its end: a live bar with the current step on a terminal, a line per
    change elsewhere, a JSON line per change with --json."""
    interval, patience = cli.args.interval, cli.args.patience
    final: Order | None = None
    if cli.json or not cli.out.is_terminal:
        async for final in cure.watch(order_id, interval=interval, patience=patience):
            if cli.json and cli.args.command == "watch":
                cli.print_json(final.model_dump(mode="json"))
            elif not cli.json:
                cli.show_order(final)
        assert final is not None
        return final
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[state]:<9}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=cli.out) as bar:
        task: TaskID = bar.add_task("waiting", total=100, state="RECEIVED")
        async for final in cure.watch(order_id, interval=interval, patience=patience):
            done = 100 if final.status == "SUCCESS" else (final.progress or 0)
            bar.update(task, completed=done, state=final.status, description=final.message or "")
    assert final is not None
    cli.show_order(final)
    return final


async def watch(cli: Cli) -> int:
    async with cli.client() as cure:
        final = await _follow(cli, cure, cli.args.order_id)
    return EXIT_OK if final.status == "SUCCESS" else EXIT_FAILED


async def _download(
    cli: Cli, cure: AsyncCureClient, final: Order, out: Path, roles: list[str] | None
) -> list[Path]:
    if cli.json or not cli.out.is_terminal:
        files = await cure.download(final, out, roles=roles)
    else:
        sizes = {a.role: a.size for a in final.assets}
        with Progress(TextColumn("{task.description}"), BarColumn(), console=cli.out) as bar:
            tasks = {role: bar.add_task(role, total=size) for role, size in sizes.items()}
            files = await cure.download(
                final,
                out,
                roles=roles,
                progress=lambda asset, done: bar.update(tasks[asset.role], completed=done),
            )
    if not cli.json:
        for path in files:
            cli.out.print(f"Saved {path} (sha256 verified)")
    return files


async def download(cli: Cli) -> int:
    async with cli.client() as cure:
        found = await cure.order(cli.args.order_id)
        files = await _download(cli, cure, found, Path(cli.args.out), cli.args.role or None)
    if cli.json:
        cli.print_json({"order_id": found.order_id, "files": [str(f) for f in files]})
    return EXIT_OK


async def orders(cli: Cli) -> int:
    args = cli.args
    filters = {
        "status": args.status or None,
        "app_id": args.app or None,
        "limit": min(args.limit, 100),
    }
    async with cli.client() as cure:
        listed = [o async for o in cure.orders(max_items=args.limit, **filters)]
    if cli.json:
        cli.print_json([o.model_dump(mode="json") for o in listed])
        return EXIT_OK
    rows = []
    for o in listed:
        period = (
            f"{o.start_date}" if o.start_date == o.end_date else f"{o.start_date}..{o.end_date}"
        )
        created = o.created_at.strftime("%Y-%m-%d %H:%M")
        rows.append((o.order_id, o.app_id, o.status, period, created, o.message or ""))
    cli.table(("order", "app", "status", "period", "created", "message"), rows)
    return EXIT_OK


async def search(cli: Cli) -> int:
    args = cli.args
    async with cli.client() as cure:
        found = [
            p
            async for p in cure.search(
                bbox=args.bbox,
                start=args.start,
                end=args.end,
                collection=args.collection,
                product_type=args.product_type,
                max_items=args.limit,
            )
        ]
    if cli.json:
        cli.print_json([p.model_dump(mode="json") for p in found])
        return EXIT_OK
    rows = [
        (p.collection, p.identifier, p.product_type, p.start.isoformat(), ", ".join(p.assets))
        for p in found
    ]
    cli.table(("collection", "identifier", "type", "start", "assets"), rows)
    return EXIT_OK


# -- arguments ----------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="cure-client",
        description="CURE from the command line: log in, list apps, order, watch, download, "
        "list orders, search products.",
    )
    top.add_argument("--url", help="CURE's address (default: the login's, or $CURE_URL)")
    top.add_argument("--json", action="store_true", help="JSON output for scripts")
    commands = top.add_subparsers(dest="command", required=True)

    p = commands.add_parser("login", help="check credentials and keep them for later commands")
    p.add_argument("--client-id", help="a client's id (or $CURE_CLIENT_ID)")
    p.add_argument("--client-secret", help="its secret (or $CURE_CLIENT_SECRET, or a prompt)")
    p.add_argument("--email", help="log in as a person instead (the password is asked for)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--scope", help="ask for fewer scopes (space-separated)")

    commands.add_parser("apps", help="the apps you can order")

    p = commands.add_parser("order", help="order an app for a region and a period")
    p.add_argument("app")
    p.add_argument("--region", help="a GeoJSON file, a bbox, WKT or GeoJSON text")
    p.add_argument("--geojson", help="a GeoJSON file (geometry, Feature or FeatureCollection)")
    p.add_argument("--bbox", help="min_lon,min_lat,max_lon,max_lat")
    p.add_argument("--wkt", help="POLYGON or MULTIPOLYGON well-known text")
    p.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--end", help="last day (default: the first)")
    p.add_argument("--param", action="append", help="name=value (value as JSON, else text)")
    p.add_argument("--params", help="all parameters as a JSON object")
    p.add_argument("--idempotency-key", help="default: a new one (retries never order twice)")
    p.add_argument("--no-email", action="store_true", help="no email when the order ends")
    p.add_argument("--wait", action="store_true", help="follow it, then download the result")
    p.add_argument("--out", default=".", help="where --wait saves the result (default: here)")
    _follow_options(p)

    p = commands.add_parser("watch", help="follow an order until it ends")
    p.add_argument("order_id")
    _follow_options(p)

    p = commands.add_parser("download", help="save an order's outputs, checksums verified")
    p.add_argument("order_id")
    p.add_argument("--out", default=".", help="a folder (default: here)")
    p.add_argument("--role", action="append", help="only this output (repeat for more)")

    p = commands.add_parser("orders", help="your orders, newest first")
    p.add_argument("--status", action="append", help="RECEIVED, QUEUED, RUNNING, SUCCESS, ...")
    p.add_argument("--app", action="append", help="an app id (repeat for more)")
    p.add_argument("--limit", type=int, default=20)

    p = commands.add_parser("search", help="products in the catalogue (public and yours)")
    p.add_argument("--bbox", help="min_lon,min_lat,max_lon,max_lat")
    p.add_argument("--start", help="from this date or time")
    p.add_argument("--end", help="until this date or time")
    p.add_argument("--collection")
    p.add_argument("--product-type")
    p.add_argument("--limit", type=int, default=20)
    return top


def _follow_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--interval", type=float, default=1.0, help="seconds between looks")
    p.add_argument(
        "--patience", type=float, default=300.0, help="seconds to wait for an unreachable API"
    )


COMMANDS = {
    "login": login,
    "apps": apps,
    "order": order,
    "watch": watch,
    "download": download,
    "orders": orders,
    "search": search,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cli = Cli(args)
    try:
        return asyncio.run(COMMANDS[args.command](cli))
    except CureClientError as exc:
        if cli.json:
            print(json.dumps({"error": type(exc).__name__, "detail": str(exc)}), file=sys.stderr)
        else:
            cli.err.print(f"[red]error:[/] {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
