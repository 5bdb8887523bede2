"""The ``cure`` command: api, worker, relay, order-events (status-manager), log-saver, flower, db upgrade,
apps build, demo seed, portal prepare, admin create, mail, check."""

import argparse
import asyncio
import os
import shutil
import sys
from datetime import date
from pathlib import Path

from cure.config import get_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
# What ``add_subparsers`` returns, to which each group below adds its sub-commands.
Subparsers = argparse._SubParsersAction  # type: ignore[type-arg]


def _api(args: argparse.Namespace) -> None:
    import uvicorn

    settings = get_settings()
    workers = _api_workers(args)
    uvicorn.run(
        "cure.main:create_app",
        factory=True,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        # Several processes share the port; one of them runs the relay and the consumers.
        workers=workers,
        log_config=None,  # the records go through cure.logs, set up in main()
        # A record per request costs a tenth of a small request's time; the request metrics
        # (GET /metrics) count and time every route. CURE_ACCESS_LOG=true turns it on.
        access_log=settings.access_log,
        # After SIGTERM, requests still open get half of shutdown_seconds (long polls and event
        # streams end at once), then the lifespan stops the services (cure.kit.stopping).
        timeout_graceful_shutdown=max(1, round(settings.shutdown_seconds / 2)),
    )


def _api_workers(args: argparse.Namespace) -> int:
    return int(args.workers or get_settings().api_workers)


def _prepare_worker_metrics(args: argparse.Namespace) -> None:
    _prepare_multiprocess_metrics("worker")


def _prepare_multiprocess_metrics(kind: str) -> None:
    """Processes that share a port or a pool (a Celery worker's pool, `cure api --workers N`)
    share a multiprocess directory, which must be named before prometheus_client is first
    imported; whichever serves /metrics adds them all up."""
    settings = get_settings()
    for old in settings.metrics_dir.glob(f"{kind}-*"):  # those of processes that are gone
        pid = old.name.removeprefix(f"{kind}-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    folder = (settings.metrics_dir / f"{kind}-{os.getpid()}").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def _serve_metrics(port: int | None) -> None:
    if not port:
        return
    import logging

    from cure.kit.metrics import serve

    settings = get_settings()
    try:
        serve(port, settings.metrics_host)
    except OSError as exc:  # a port in use must not keep the process from working
        logging.getLogger("cure.cli").warning("metrics not served on port %s: %s", port, exc)


def _worker(args: argparse.Namespace) -> None:
    # SIGTERM is a cold shutdown: the pool's processes stop their app containers at once and
    # their tasks go back to the queue (acks_late), for this worker or another to run again;
    # a warm one would wait for every running app, up to its timeout (minutes), and compose
    # kills a container 10 s after SIGTERM. Read by billiard when it is first imported.
    os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")
    if "billiard.common" in sys.modules:
        raise RuntimeError("billiard was imported before cure worker could set REMAP_SIGTERM")
    from cure.workers.celery_app import celery_app

    argv = [
        "worker",
        "--loglevel=INFO",
        f"--concurrency={args.concurrency}",
        f"--queues={get_settings().orders_queue}",
    ]
    if args.hostname:
        argv.append(f"--hostname={args.hostname}")
    port = get_settings().worker_metrics_port if args.metrics_port is None else args.metrics_port
    _serve_metrics(port)
    celery_app.worker_main(argv)


def _flower(args: argparse.Namespace) -> None:
    from cure.workers.celery_app import celery_app

    celery_app.start(["flower", "--address=127.0.0.1", f"--port={args.port}"])


async def _run_alone(which: str) -> None:
    from cure.kit.resources import open_resources
    from cure.runtime import run_alone

    async with open_resources(get_settings()) as resources:
        await run_alone(which, resources)


def _mail_serve(args: argparse.Namespace) -> None:
    import signal
    import threading

    from cure.mail.catcher import serve

    settings = get_settings()
    port = args.port or settings.smtp_port
    controller = serve(settings.mail_dir, host=args.host, port=port)
    print(f"catching mail on {args.host}:{port}, stored in {settings.mail_dir}/", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


def _mail_list(args: argparse.Namespace) -> None:
    from cure.mail.catcher import stored

    folder = get_settings().mail_dir
    mails = stored(folder)
    if not mails:
        print(f"no mail in {folder}/")
        return
    for mail in mails[-args.last :]:
        print(mail.summary)


def _mail_show(args: argparse.Namespace) -> None:
    from cure.mail.catcher import render, stored

    folder = get_settings().mail_dir
    found = [m for m in stored(folder) if m.number == args.number]
    if not found:
        raise SystemExit(f"no message {args.number} in {folder}/ (see `cure mail list`)")
    print(render(found[0]))


def _check(args: argparse.Namespace) -> None:
    from cure.ops.check import CheckFailed, CheckRun, run_check

    run = CheckRun(
        url=args.url.rstrip("/"),
        client_id=args.client_id or os.environ.get("CURE_CHECK_CLIENT_ID"),
        client_secret=args.client_secret or os.environ.get("CURE_CHECK_CLIENT_SECRET"),
        app_id=args.app,
        timeout=args.timeout,
        out=sys.stdout,
    )
    try:
        run_check(run)
    except CheckFailed as exc:
        print(f"FAILED at step '{exc.step}': {exc.reason}", file=sys.stderr)
        raise SystemExit(1) from exc
    print(f"ok: {args.url} passed health, token, order and download")


def _db_upgrade(args: argparse.Namespace) -> None:
    from cure.kit.provision import ensure_database, migrate

    url = get_settings().database_url
    asyncio.run(ensure_database(url))
    migrate(url, args.revision)


def _apps_build(args: argparse.Namespace) -> None:
    from cure.apps.images import build_all

    for app_id, tag in build_all(get_settings(), no_cache=args.no_cache):
        print(f"{app_id}: {tag}")


def _apps_try(args: argparse.Namespace) -> None:
    from cure.kit.errors import CureError
    from cure.workers.commands import read_json_argument, try_app

    try:
        code = try_app(
            get_settings(),
            args.app_id,
            inputs=args.inputs,
            params=read_json_argument(args.params),
            roi=read_json_argument(args.roi) if args.roi else None,
            start=args.start,
            end=args.end or args.start,
            out=args.out,
        )
    except (CureError, ValueError) as exc:  # unknown app, bad parameters or JSON, no region
        print(f"cannot try the app: {exc}", file=sys.stderr)
        code = 2
    raise SystemExit(code)


def _demo_seed(args: argparse.Namespace) -> None:
    from cure.demo.seed import seed
    from cure.kit.resources import open_resources

    async def run() -> None:
        async with open_resources(get_settings()) as resources:
            report = await seed(resources)
        print(f"demo products: {report.added} added, {report.present} already there")

    asyncio.run(run())


def _portal_prepare(args: argparse.Namespace) -> None:
    from cure.demo.showcase import prepare
    from cure.kit.resources import open_resources

    async def run() -> int:
        async with open_resources(get_settings()) as resources:
            report = await prepare(resources, timeout_seconds=args.timeout)
        for line in report.published:
            print(f"published: {line}")
        for line in report.failed:
            print(f"not ready: {line}", file=sys.stderr)
        return 0 if report.ok else 1

    raise SystemExit(asyncio.run(run()))


def _ccsi_register(args: argparse.Namespace) -> None:
    from cure.ccsi.scan import period_of, register_folder, register_stored
    from cure.kit.resources import open_resources

    settings = get_settings()
    source = str(args.source)
    if args.end and not args.start:
        raise SystemExit("--end needs --start")
    try:
        period = period_of(args.start, args.end) if args.start else None
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if source.startswith("s3://"):
        bucket, _, prefix = source.removeprefix("s3://").partition("/")
        if bucket != settings.s3_bucket:
            raise SystemExit(f"only the storage bucket ({settings.s3_bucket}) can be registered")

    options = {"product_type": args.product_type, "period": period, "asset_key": args.asset_key}

    async def run() -> None:
        async with open_resources(settings) as resources:
            async with resources.sessionmaker() as session, session.begin():
                if source.startswith("s3://"):
                    report = await register_stored(
                        session, settings, args.collection, prefix, **options
                    )
                else:
                    report = await register_folder(
                        session, settings, args.collection, Path(source), **options
                    )
        print(f"{len(report.added)} product(s) added, {len(report.skipped)} already there")

    asyncio.run(run())


def _docker_proxy(args: argparse.Namespace) -> None:
    import os

    from cure.containers.socket_proxy import DockerSocketProxy
    from cure.workers.pipeline import DEPLOYMENT_LABEL

    # Only this deployment's app runs: what its workers label theirs with (CURE_DEPLOYMENT_ID,
    # or derived from the database and broker URLs, so run it with the workers' settings).
    scope = {DEPLOYMENT_LABEL: args.deployment or get_settings().deployment}

    async def serve() -> None:
        proxy = DockerSocketProxy(listen=args.socket, upstream=args.upstream, scope=scope)
        await proxy.start()
        os.chmod(args.socket, int(args.mode, 8))  # who may use it: the worker's user or group
        await proxy.serve_forever()

    asyncio.run(serve())


def _admin_create(args: argparse.Namespace) -> None:
    from cure.crm.commands import create_admin

    raise SystemExit(create_admin(email=args.email, name=args.name, organisation=args.organisation))


# Commands that are services: their records go to the logs queue under these names.
SERVICES = {
    "api": "api",
    "worker": "worker",
    "order-events": "order-events",
    "status-manager": "order-events",
    "relay": "relay",
    "log-saver": "log-saver",
    "flower": "flower",
}


def _configure_logging(args: argparse.Namespace) -> None:
    from cure.kit.log_handler import configure_logging

    settings = get_settings()
    service = SERVICES.get(args.command)
    configure_logging(
        service=service or f"cli:{args.command}",
        level=settings.log_level,
        # One-shot commands log to the terminal only; long-running services to the queue too.
        broker_url=settings.broker_url if service and settings.log_to_broker else None,
        queue_name=settings.log_queue,
        capacity=settings.log_buffer_records,
    )


def _add_process_parsers(sub: Subparsers) -> None:
    """`cure api`, `cure worker` and `cure flower`."""
    api = sub.add_parser("api", help="run the HTTP API (its leader runs the services too)")
    api.add_argument("--host")
    api.add_argument("--port", type=int)
    api.add_argument(
        "--workers",
        type=int,
        help="API processes sharing the port (default CURE_API_WORKERS, 1); the relay and the "
        "consumers run in one of them",
    )
    api.set_defaults(func=_api)

    worker = sub.add_parser("worker", help="run a Celery worker for orders")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument("--hostname")
    worker.add_argument(
        "--metrics-port", type=int, help="serve /metrics here (default CURE_WORKER_METRICS_PORT)"
    )
    worker.set_defaults(func=_worker)

    flower = sub.add_parser("flower", help="run the Flower dashboard")
    flower.add_argument("--port", type=int, default=5555)
    flower.set_defaults(func=_flower)


def _add_service_parsers(sub: Subparsers) -> None:
    """One sub-command per group of the runtime table's services run alone (cure.runtime)."""
    from cure.runtime import ALIASES, COMMANDS, services

    for name in (*COMMANDS, *ALIASES):
        what = ", ".join(s.name for s in services(command=name))
        also = f" (the old name of `cure {ALIASES[name]}`)" if name in ALIASES else ""
        alone = sub.add_parser(
            name, help=f"run {what} alone (they also run inside `cure api`){also}"
        )
        alone.add_argument("--metrics-port", type=int, help="serve /metrics on this port")

        def run_alone(a: argparse.Namespace, n: str = name) -> None:
            _serve_metrics(a.metrics_port)
            asyncio.run(_run_alone(n))

        alone.set_defaults(func=run_alone)


def _add_db_and_apps_parsers(sub: Subparsers) -> None:
    """`cure db upgrade`, `cure apps build` and `cure apps try`."""
    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="create the database if missing, then migrate")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(func=_db_upgrade)

    apps = sub.add_parser("apps", help="app commands")
    apps_sub = apps.add_subparsers(dest="apps_command", required=True)
    build = apps_sub.add_parser("build", help="build every app's image (cached layers are reused)")
    build.add_argument("--no-cache", action="store_true", help="rebuild every layer")
    build.set_defaults(func=_apps_build)

    try_ = apps_sub.add_parser(
        "try", help="run an app image on local inputs exactly the way the worker runs it"
    )
    try_.add_argument("app_id")
    try_.add_argument(
        "--inputs", type=Path, help="a folder with one sub-folder per input role holding its files"
    )
    try_.add_argument("--params", default="{}", help="the app's parameters as JSON (or @file)")
    try_.add_argument("--roi", help="the region as GeoJSON (or @file); default: the first input's")
    try_.add_argument("--start", type=date.fromisoformat, default=date.today())
    try_.add_argument("--end", type=date.fromisoformat)
    try_.add_argument("--out", type=Path, default=Path("outputs"), help="where outputs go")
    try_.set_defaults(func=_apps_try)


def _add_demo_and_portal_parsers(sub: Subparsers) -> None:
    """`cure demo seed` and `cure portal prepare`."""
    demo = sub.add_parser("demo", help="demo data")
    demo_sub = demo.add_subparsers(dest="demo_command", required=True)
    seed = demo_sub.add_parser(
        "seed", help="generate demo inputs for a few cities, upload and register them (idempotent)"
    )
    seed.set_defaults(func=_demo_seed)

    portal = sub.add_parser("portal", help="the web portal")
    portal_sub = portal.add_subparsers(dest="portal_command", required=True)
    prepare = portal_sub.add_parser(
        "prepare",
        help="order, wait for and publish the storylines' demonstration products on the demo "
        "data (idempotent; the API and a worker must be running)",
    )
    prepare.add_argument(
        "--timeout", type=float, default=600, help="seconds to wait for the orders (default 600)"
    )
    prepare.set_defaults(func=_portal_prepare)


def _add_catalogue_parsers(sub: Subparsers) -> None:
    """`cure ccsi register` and `cure ccsi sources ...`."""
    ccsi = sub.add_parser("ccsi", help="the catalogue")
    ccsi_sub = ccsi.add_subparsers(dest="ccsi_command", required=True)
    register = ccsi_sub.add_parser(
        "register",
        help="register every GeoTIFF of a folder (uploaded first) or of a bucket prefix, reading "
        "footprint and time from the files",
    )
    register.add_argument("collection")
    register.add_argument(
        "source", help="a folder, or s3://<the storage bucket>/<prefix> of GeoTIFFs stored already"
    )
    register.add_argument("--product-type", help="default: each file's PRODUCT_TYPE tag")
    register.add_argument(
        "--start",
        help="acquisition start (a date or an ISO 8601 time) of files that carry no "
        "ACQUISITION_START or TIFFTAG_DATETIME tag, such as the HRL layers",
    )
    register.add_argument("--end", help="acquisition end (a date: its end); default: --start")
    register.add_argument(
        "--asset-key",
        default="data",
        help="the name of each product's one asset, as the apps read it (e.g. lst, imd)",
    )
    register.set_defaults(func=_ccsi_register)
    from cure.ccsi.sources.commands import add_parsers as add_sources_parsers

    add_sources_parsers(ccsi_sub)  # cure ccsi sources add|list|show|enable|disable|remove


def _add_operator_parsers(sub: Subparsers) -> None:
    """`cure docker-proxy` and `cure admin create`."""
    proxy = sub.add_parser(
        "docker-proxy",
        help="serve a Docker socket that admits only hardened app runs (run it as root; point "
        "the worker's CURE_DOCKER_URL at unix://SOCKET)",
    )
    proxy.add_argument("--socket", required=True, help="the socket to create for the worker")
    proxy.add_argument("--upstream", default="/var/run/docker.sock", help="the engine's socket")
    proxy.add_argument("--mode", default="660", help="permissions of the socket (octal)")
    proxy.add_argument(
        "--deployment",
        help="the deployment whose app runs it admits (default: the settings' deployment id)",
    )
    proxy.set_defaults(func=_docker_proxy)

    admin = sub.add_parser("admin", help="admin accounts")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_sub.add_parser(
        "create",
        help="create an admin; the password is read from a prompt or standard input, never argv",
    )
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--organisation")
    create.set_defaults(func=_admin_create)


def _add_mail_and_check_parsers(sub: Subparsers) -> None:
    """`cure mail serve|list|show` and `cure check`."""
    mail = sub.add_parser("mail", help="the local mailbox (where emails go without a server)")
    mail_sub = mail.add_subparsers(dest="mail_command", required=True)
    mail_serve = mail_sub.add_parser(
        "serve", help="catch mail over SMTP (default CURE_SMTP_PORT) into CURE_MAIL_DIR"
    )
    mail_serve.add_argument("--host", default="127.0.0.1")
    mail_serve.add_argument("--port", type=int)
    mail_serve.set_defaults(func=_mail_serve)
    mail_list = mail_sub.add_parser("list", help="the caught messages: number, date, to, subject")
    mail_list.add_argument("--last", type=int, default=50, help="only the last N (default 50)")
    mail_list.set_defaults(func=_mail_list)
    mail_show = mail_sub.add_parser("show", help="print one caught message")
    mail_show.add_argument("number", type=int)
    mail_show.set_defaults(func=_mail_show)

    check = sub.add_parser(
        "check",
        help="check a running deployment end to end (health, token, an order, its download); "
        "exits 1 naming the step that failed",
    )
    check.add_argument("--url", required=True, help="the API's base URL")
    check.add_argument("--client-id", help="default: CURE_CHECK_CLIENT_ID, else a new customer")
    check.add_argument("--client-secret", help="default: CURE_CHECK_CLIENT_SECRET")
    check.add_argument("--app", default="roi_stats", help="the app to order (default roi_stats)")
    check.add_argument("--timeout", type=float, default=120, help="seconds for the order")
    check.set_defaults(func=_check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cure", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_process_parsers,
        _add_service_parsers,
        _add_db_and_apps_parsers,
        _add_demo_and_portal_parsers,
        _add_catalogue_parsers,
        _add_operator_parsers,
        _add_mail_and_check_parsers,
    ):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "worker":
        _prepare_worker_metrics(args)
    if args.command == "api" and _api_workers(args) > 1:
        _prepare_multiprocess_metrics("api")
    _configure_logging(args)
    args.func(args)


if __name__ == "__main__":
    main()
