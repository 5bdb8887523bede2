"""Settings: every value comes from a ``CURE_*`` environment variable, with working local defaults.

Secrets fail closed: a known placeholder or a short value is refused everywhere. With no secret
configured, a development or test install generates strong random ones at first start and keeps
them in ``var/secrets.json`` (readable by its owner only); production must be given every one.
"""

import hashlib
import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# Values that were public (this repository's former development defaults) or are the usual
# stand-ins: refused in every environment, since anyone could sign tokens or links with them.
KNOWN_PLACEHOLDERS = frozenset(
    {
        "dev-only-insecure-jwt-secret-change-me",
        "dev-only-insecure-storage-secret-change-me",
        "dev-only-insecure-callback-key-change-me",
        "changeme",
        "change-me",
        "secret",
        "password",
    }
)
MIN_SECRET_LENGTH = 32
# The secrets a local install generates when none is configured, with the variable that sets each.
GENERATED_SECRETS = {
    "jwt_secret": "CURE_JWT_SECRET",
    "storage_secret": "CURE_STORAGE_SECRET",
    "callback_signing_key": "CURE_CALLBACK_SIGNING_KEY",
    "sources_key": "CURE_SOURCES_KEY",
}


class SecretsFileError(ValueError):
    pass


def _read_secrets(path: Path) -> dict[str, str]:
    mode = path.stat().st_mode
    if mode & 0o077:
        raise SecretsFileError(
            f"{path} can be read by others than its owner; run: chmod 600 {path}"
        )
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise SecretsFileError(f"{path} is not a JSON object of strings")
    return data


def _write_new(path: Path, data: dict[str, str]) -> bool:
    """Write ``data`` at ``path`` (mode 600) unless it exists; False if another process won."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)  # atomic, and never over a file another process wrote first
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def local_secrets(path: Path) -> dict[str, str]:
    """The generated secrets kept at ``path``, made at first use (API and worker share them)."""
    try:
        known = _read_secrets(path)
    except FileNotFoundError:
        known = {}
    missing = [name for name in GENERATED_SECRETS if name not in known]
    if not missing:
        return known
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = {**known, **{name: secrets.token_urlsafe(48) for name in missing}}
    if known:  # an older file lacks a newer secret: add it, keeping the ones in use
        tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(fresh, out, indent=2)
        os.replace(tmp, path)
        return fresh
    if _write_new(path, fresh):
        return fresh
    return _read_secrets(path)  # a process started at the same moment wrote them first


def check_secret(variable: str, value: str) -> None:
    if value.strip().lower() in KNOWN_PLACEHOLDERS:
        raise ValueError(f"{variable} is a known placeholder; set a random value")
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"{variable} must have at least {MIN_SECRET_LENGTH} characters")


# Well-known credentials of the services CURE uses (MinIO's, RabbitMQ's and PostgreSQL's defaults,
# this repository's former compose values, the usual stand-ins): refused in production, where
# anyone who read the services' manuals could log in with them.
DEFAULT_PASSWORDS = KNOWN_PLACEHOLDERS | {
    "minioadmin",
    "minio123",
    "guest",
    "postgres",
    "cure",
    "admin",
    "root",
    "cure-minio-secret",
    "cure-grafana",
}
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/cure"


def _is_default(password: str | None, *, user: str | None = None) -> bool:
    return password is not None and (
        password.strip().lower() in DEFAULT_PASSWORDS or password == user
    )


def _database_problem(url: str) -> str | None:
    if url == DEFAULT_DATABASE_URL:
        return "is the local default (PostgreSQL's superuser without a password)"
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "is not a database URL"
    if _is_default(parsed.password, user=parsed.username):
        return "has a well-known default password"
    return None


def _broker_problem(url: str) -> str | None:
    for one in url.split(";"):  # kombu's fail-over list
        parsed = urlsplit(one.strip())
        if parsed.username is None or unquote(parsed.username) == "guest":
            return "uses RabbitMQ's default guest account"
        password = unquote(parsed.password) if parsed.password is not None else None
        if _is_default(password, user=unquote(parsed.username)):
            return "has a well-known default password"
    return None


def default_credentials(settings: "Settings") -> list[str]:
    """What production refuses: each setting that still holds a well-known default credential."""
    problems = {
        "CURE_DATABASE_URL": _database_problem(settings.database_url),
        "CURE_BROKER_URL": _broker_problem(settings.broker_url),
    }
    if settings.s3_access_key_id is not None and _is_default(settings.s3_access_key_id):
        problems["CURE_S3_ACCESS_KEY_ID"] = "is a well-known default (a root user of MinIO)"
    for variable, secret, user in (
        ("CURE_S3_SECRET_ACCESS_KEY", settings.s3_secret_access_key, settings.s3_access_key_id),
        ("CURE_SMTP_PASSWORD", settings.smtp_password, settings.smtp_user),
    ):
        if secret is not None and _is_default(secret.get_secret_value(), user=user):
            problems[variable] = "is a well-known default password"
    return [f"{name} {problem}" for name, problem in problems.items() if problem]


def reveal(secret: SecretStr | None, variable: str) -> str:
    """A secret's value where it is needed; None only where Settings allowed it to be unset."""
    if secret is None:
        raise RuntimeError(f"{variable} is not configured")
    return secret.get_secret_value()


# Every group reads the same environment variables: CURE_ and the field's name in capitals.
SETTINGS_CONFIG = SettingsConfigDict(env_prefix="CURE_", extra="ignore")


class OperationsSettings(BaseSettings):
    """How the processes run: environment, database and broker, the API's address and body
    limits, logs, metrics and health, stopping."""

    model_config = SETTINGS_CONFIG

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL

    # Connections of the API's request pool (and as many again in overflow); a second, small
    # pool keeps short bookkeeping transactions (throttle records) apart from it.
    database_pool_size: int = Field(default=10, ge=2)

    # How long a request waits for a pooled connection before it is answered 503 (Retry-After).
    database_pool_timeout_seconds: float = Field(default=5, gt=0)
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = Field(default=1, ge=1, le=64)  # `cure api` processes on the port
    access_log: bool = False  # a log record per request (uvicorn's access log)
    public_url: str = "http://127.0.0.1:8000"

    # Request bodies larger than these answer 413 before anything parses them: auth and CRM
    # (credentials, profiles), orders (a region of up to geo.MAX_VERTICES positions), the rest.
    max_small_body_bytes: int = Field(default=16 * 1024, ge=1024)
    max_order_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # Where a development or test install keeps the secrets it generated at its first start.
    secrets_file: Path = Path("var/secrets.json")
    # Every publish to the broker (the relay, a worker's events) waits this long for its confirm.
    publish_timeout_seconds: float = 10

    # Logs: every process publishes its records to a queue through a non-blocking handler (a
    # bounded buffer; what does not fit is dropped and counted); the log saver writes them to
    # the log_records table, partitioned by day, and drops partitions past the retention period.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_to_broker: bool = True
    log_queue: str = "cure.logs"
    log_buffer_records: int = Field(default=10000, gt=0)
    log_retention_days: int = Field(default=14, gt=0)
    log_retention_interval_seconds: float = 3600
    log_saver_batch: int = Field(default=500, gt=0, le=5000)
    log_saver_flush_seconds: float = Field(default=0.5, gt=0)
    log_post_max_records: int = Field(default=1000, gt=0)
    log_post_max_bytes: int = Field(default=1024 * 1024, gt=0)

    # Long polls (?wait=) and event streams of order logs open at once, per customer and per
    # API process; past either cap a new one is answered 429 with Retry-After.
    log_waits_per_customer: int = Field(default=4, gt=0)
    log_waits_per_process: int = Field(default=200, gt=0)

    # Metrics and health: standalone processes (worker, order events, relay, log saver) serve
    # /metrics on their own port; a worker's pool processes share a multiprocess directory.
    metrics_dir: Path = Path("var/metrics")
    worker_metrics_port: int = 9809  # 0: none
    metrics_host: str = "127.0.0.1"
    health_checks: list[Literal["database", "broker", "storage", "docker"]] = Field(
        default=["database", "broker", "storage", "docker"]
    )
    health_timeout_seconds: float = Field(default=3, gt=0)

    # A flood of /health/ready costs one round of checks per interval, and /metrics reads its
    # database and broker gauges at most once per interval (0: every time).
    health_cache_seconds: float = Field(default=2, ge=0)
    metrics_cache_seconds: float = Field(default=5, ge=0)

    # The local mail catcher (`cure mail serve`, started by scripts/run): one file per message.
    mail_dir: Path = Path("var/mail")
    run_background_services: bool = True

    # After SIGTERM a process has this long to stop (compose kills it at 10 s): the API closes
    # its long polls and event streams at once, gives other requests half of it, then stops its
    # services; whatever still runs at the end is abandoned (exit status 1). Nothing is lost:
    # orders, outbox rows and callback retries are in the database.
    shutdown_seconds: float = Field(default=8, gt=1, le=60)


class AuthSettings(BaseSettings):
    """Accounts and tokens: signing, lifetimes, scopes, passwords, throttling, verification,
    the principal cache."""

    model_config = SETTINGS_CONFIG

    # Access tokens: JWTs signed with HS* (jwt_secret) or RS* (an RSA private key in PEM, given
    # inline or as a file; the public key is derived from it and published at /v1/auth/jwks.json).
    # None: generated at first start (development and test) into secrets_file; production
    # must set it (HS* algorithms only).
    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512"] = "HS256"
    jwt_private_key: SecretStr | None = None
    jwt_private_key_file: Path | None = None
    jwt_issuer: str = "cure"
    jwt_audience: str = "cure-api"
    access_token_ttl_seconds: int = Field(default=3600, gt=0, le=86400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, gt=0)

    # The first-party public client (portal, scripts) that uses the password grant without a secret.
    first_party_client_id: str = "cure-portal"

    # Scopes every new customer gets; app:<id> of every public app is added to them.
    default_scopes: list[str] = Field(
        default_factory=lambda: ["account:read", "account:write", "orders:read", "orders:write"]
    )

    # Passwords: argon2id, never below OWASP's minimum; raising these upgrades hashes at login.
    argon2_memory_kib: int = Field(default=19456, ge=19456)
    argon2_time_cost: int = Field(default=2, ge=2)
    password_min_length: int = Field(default=10, ge=8, le=64)
    password_reset_ttl_seconds: int = Field(default=1800, gt=0, le=86400)

    # Link put in reset emails, e.g. "https://portal.example.org/reset#token={token}"; without
    # it the email gives the token and the API call to make.
    password_reset_url: str | None = None

    # Brute-force throttling: failures counted per account and per client address in a window.
    # Brute force (README "Brute force"): wrong passwords for one account from one address are
    # refused past pair_failures; an account past account_failures (from anywhere) is under
    # attack, an address past address_failures is abusive: both only slow the guesses down
    # (a growing delay), and together they refuse. Cheap random credentials (client secrets,
    # refresh and reset tokens) are always checked first: the right one is never refused.
    throttle_window_seconds: int = Field(default=900, gt=0)
    throttle_pair_failures: int = Field(default=5, gt=0)
    throttle_account_failures: int = Field(default=10, gt=0)
    throttle_address_failures: int = Field(default=100, gt=0)
    throttle_delay_base_seconds: float = Field(default=0.25, ge=0)
    throttle_delay_max_seconds: float = Field(default=4, ge=0)
    throttle_reset_requests: int = Field(default=5, gt=0)
    throttle_registrations: int = Field(default=20, gt=0)  # per address and window

    # Threads that hash passwords (None: one less than the CPUs, at least one), so a burst of
    # logins queues for them instead of taking every core from the event loop.
    password_hash_threads: int | None = Field(default=None, ge=1, le=64)

    # Email verification: a single-use link mailed at registration. Required to order when on.
    require_email_verification: bool = False
    email_verification_ttl_seconds: int = Field(default=2 * 86400, gt=0)

    # Link put in verification emails, e.g. "https://portal.example.org/verify#token={token}".
    email_verification_url: str | None = None

    # Each API process keeps verified access tokens' principals, dropped at once on a change to
    # the customer, its clients or the token's revocation (heard through PostgreSQL notices), and
    # kept at most principal_cache_seconds: a backstop should a notice be lost unnoticed.
    principal_cache: bool = True
    principal_cache_seconds: float = Field(default=60, gt=0)


class OrderSettings(BaseSettings):
    """Orders: per-customer limits, the reconciler's deadlines and attempts, the queues and
    the relay."""

    model_config = SETTINGS_CONFIG

    # Per-customer limits on submitting: orders not yet final, and orders per window.
    max_active_orders: int = 10
    max_orders_per_window: int = 200
    orders_window_seconds: int = 3600

    # Reconciler: an order is stuck when its worker has been silent past these deadlines.
    heartbeat_interval_seconds: float = 10
    heartbeat_timeout_seconds: float = 60
    queued_timeout_seconds: float = 3600
    max_attempts: int = 3

    # A QUEUED order is published again after queued_timeout_seconds without spending an attempt,
    # at most this many times in all; then it ends FAILED with the reason.
    max_dispatches: int = Field(default=5, ge=1)

    # After it starts, the reconciler waits this long (default: heartbeat_timeout_seconds) before
    # it judges any silence: heartbeats sent while it was down must be applied first.
    reconcile_grace_seconds: float | None = Field(default=None, ge=0)
    reconcile_interval_seconds: float = 15

    # The broker's queues and dead-letter exchange, and how often the relay reads the outbox
    # besides the wake-ups it hears.
    orders_queue: str = "cure.orders"
    dead_letter_exchange: str = "cure.dead"
    dead_letter_queue: str = "cure.dead"
    events_queue: str = "cure.order_events"
    relay_poll_seconds: float = 0.5


class NotificationSettings(BaseSettings):
    """Emails (SMTP) and callbacks, and the notifier that delivers them."""

    model_config = SETTINGS_CONFIG

    # Outgoing email (SMTP).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_from: str = "CURE <noreply@cure.invalid>"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0

    # Callbacks: loopback, link-local and private targets are refused unless allowed here.
    allow_private_callbacks: bool = False
    callback_signing_key: SecretStr | None = None  # derives each customer's key; None: generated
    callback_timeout_seconds: float = 10  # one deadline: resolving the host and the call

    # At submit, the callback's host must resolve within this, with no database connection held.
    callback_resolve_seconds: float = Field(default=2, gt=0)
    callback_max_attempts: int = 6

    # Notifier: failed emails and callbacks wait base * 2^(tries - 1) seconds, at most max.
    notify_poll_seconds: float = 1
    notify_retry_base_seconds: float = 5
    notify_retry_max_seconds: float = 3600
    email_max_attempts: int = 60  # with the cap, about two days of trying

    # Deliveries at once; below the pool size, and no connection is held during network calls.
    notify_concurrency: int = Field(default=4, ge=1)
    notify_lease_seconds: float = 120  # a claimed notification is tried again after this


class WorkerSettings(BaseSettings):
    """What a worker host needs: the apps, the Docker engine and container limits, staged
    inputs, task retries."""

    model_config = SETTINGS_CONFIG

    # The apps (a folder each, with its manifest.json) that the API offers and workers run.
    apps_dir: Path = Path(__file__).parent / "apps"
    docker_url: str | None = None  # None: the environment's DOCKER_HOST or the local socket
    docker_timeout_seconds: float = Field(default=60, gt=0)  # every call to the engine

    # Labels every container and volume of this deployment's runs, so deployments sharing an
    # engine never touch each other's; default: derived from the database and broker it uses.
    deployment_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    database_timeout_seconds: float = Field(default=30, gt=0)  # a worker's every statement

    # Each app container's limits (an app's manifest may set its own) and its outputs' caps.
    container_memory_mb: int = 512
    container_cpus: float = 1.0
    container_pids: int = 128
    container_timeout_seconds: int = 600
    max_output_bytes: int = 256 * 1024 * 1024
    max_log_bytes: int = 8 * 1024 * 1024  # an app's stdout and stderr together
    container_sweep_seconds: float = 60  # how often a worker removes app containers no run owns
    # A workflow app's most steps running at once, unless its manifest sets limits.parallel_steps.
    workflow_parallel_steps: int = Field(default=2, ge=1, le=20)

    # Inputs are fetched only from the storage bucket or from these hosts (public addresses
    # only), into a per-worker cache bounded in size, and staged in a work folder per run.
    input_hosts: list[str] = Field(default_factory=list)
    input_cache_dir: Path = Path("var/cache/inputs")
    input_cache_max_mb: int = Field(default=2048, gt=0)
    work_dir: Path = Path("var/work")
    stage_timeout_seconds: float = Field(default=600, gt=0)

    # A remote source's transfer that fails for now (429, 5xx, a broken connection) is tried
    # again up to stage_retries times, after base * 2^n seconds with jitter (or the server's
    # Retry-After), within the stage deadline. Private addresses for inputs: tests only.
    stage_retries: int = Field(default=5, ge=0, le=20)
    stage_retry_base_seconds: float = Field(default=0.5, ge=0)
    allow_private_inputs: bool = False

    # Celery: an infrastructure failure is retried this often, then the task is dead-lettered.
    task_max_retries: int = 3
    task_outage_seconds: float = 600  # an outage of a backing service is waited out this long
    task_retry_backoff_seconds: float = 2
    delivery_limit: int = 3  # redeliveries (e.g. a worker killed mid-task) before dead-lettering
    app_log_max_lines: int = Field(default=10000, gt=0)  # an app's output lines kept per run


class StorageSettings(BaseSettings):
    """Where results are kept: a local folder or an S3-compatible bucket, and their links."""

    model_config = SETTINGS_CONFIG

    # Storage: "s3" (MinIO, AWS, any S3-compatible server) or "local" (a directory, with links
    # the API signs and serves itself) for a single machine with no S3 service.
    storage_backend: Literal["s3", "local"] = "local"
    storage_dir: Path = Path("var/storage")
    storage_secret: SecretStr | None = None  # signs local storage links; None: generated
    s3_endpoint_url: str | None = None
    s3_bucket: str = "cure-results"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    result_link_ttl_seconds: int = 3600


class CatalogueSettings(BaseSettings):
    """The catalogue: where inputs are found, federated sources and their cache, anonymous
    reads."""

    model_config = SETTINGS_CONFIG

    # The federated catalogue keeps remote sources' answers this long, at most this many and this
    # many megabytes of them per process (0 entries: none kept).
    ccsi_remote_cache_seconds: float = Field(default=60, ge=0)
    ccsi_remote_cache_entries: int = Field(default=256, ge=0)
    ccsi_remote_cache_mb: int = Field(default=32, ge=0)

    # Catalogue sources' inline secrets are stored encrypted with a key derived from this (None:
    # generated locally; production without it stores no inline secret, only *_env references).
    # Each process re-reads its enabled sources on a change notice, and at least this often.
    sources_key: SecretStr | None = None
    sources_refresh_seconds: float = Field(default=60, gt=0)

    # Inputs are found through a CCSI-compatible catalogue (None: this deployment's own, under
    # public_url).
    ccsi_url: str | None = None

    # Anonymous reads of /v1/ccsi/* and /stac/* per client address and minute, per API process
    # (authenticated readers are not counted); past it, 429 with Retry-After.
    anonymous_reads_per_minute: int = Field(default=600, gt=0)


class PortalSettings(BaseSettings):
    """The web portal and its quicklooks."""

    model_config = SETTINGS_CONFIG

    # The portal: the built single-page app (portal/dist, made by `npm run build` in portal/),
    # and the service account that runs and publishes the storylines' demonstration orders
    # (`cure portal prepare`): a customer, never an admin, with no password, at an address no
    # mail reaches.
    portal_dir: Path = Path(__file__).resolve().parent.parent / "portal" / "dist"
    portal_demo_email: str = "demo@cure.invalid"

    # The maps' base layer: XYZ tiles, OpenStreetMap's standard ones by default, with the
    # attribution their tile usage policy asks for (text, and the page it links to). Another tile
    # server needs its own attribution. Empty, "none" or "off": no tiles. Where the tiles fail
    # (offline, blocked) or are off, the maps draw CURE's own light basemap instead
    # (/v1/portal/basemap), so a map is never empty.
    portal_tile_url: str | None = Field(
        default="https://tile.openstreetmap.org/{z}/{x}/{y}.png", pattern=r"^https?://[^\s]+$"
    )
    portal_tile_attribution: str = Field(default="© OpenStreetMap contributors", max_length=300)
    portal_tile_attribution_url: str | None = Field(
        default="https://www.openstreetmap.org/copyright", pattern=r"^https?://[^\s]+$"
    )

    @field_validator("portal_tile_url", "portal_tile_attribution_url", mode="before")
    @classmethod
    def _switched_off(cls, value: object) -> object:
        """An empty value, "none" or "off" switches the tiles (or the link) off."""
        if isinstance(value, str) and value.strip().lower() in {"", "none", "off"}:
            return None
        return value

    @field_validator("portal_tile_url")
    @classmethod
    def _xyz(cls, value: str | None) -> str | None:
        if value is not None and not all(part in value for part in ("{z}", "{x}", "{y}")):
            raise ValueError("a tile URL names {z}, {x} and {y}, e.g. https://host/{z}/{x}/{y}.png")
        return value

    # Quicklooks rendered at once per API process (each holds a raster in memory and a thread);
    # a render that waits longer than quicklook_wait_seconds for its turn answers 503.
    quicklook_concurrency: int = Field(default=2, gt=0)
    quicklook_wait_seconds: float = Field(default=10, ge=0)


class Settings(
    OperationsSettings,
    AuthSettings,
    OrderSettings,
    NotificationSettings,
    WorkerSettings,
    StorageSettings,
    CatalogueSettings,
    PortalSettings,
):
    """Every setting, each read from its ``CURE_*`` environment variable. The fields are
    declared by concern in the groups above; each group is also a typed view of the same values
    (``settings.auth.access_token_ttl_seconds`` is ``settings.access_token_ttl_seconds``), so a
    function that needs one concern can say so: ``def f(settings: AuthSettings)``. The checks
    that span groups (secrets, pool sizes, default credentials) are here."""

    model_config = SETTINGS_CONFIG

    # -- the groups, as typed views -------------------------------------------------------------

    @property
    def operations(self) -> OperationsSettings:
        return self

    @property
    def auth(self) -> AuthSettings:
        return self

    @property
    def orders(self) -> OrderSettings:
        return self

    @property
    def notifications(self) -> NotificationSettings:
        return self

    @property
    def worker(self) -> WorkerSettings:
        return self

    @property
    def storage(self) -> StorageSettings:
        return self

    @property
    def catalogue(self) -> CatalogueSettings:
        return self

    @property
    def portal(self) -> PortalSettings:
        return self

    # -- derived values and checks across groups ----------------------------------------------

    @property
    def deployment(self) -> str:
        if self.deployment_id:
            return self.deployment_id
        seed = f"{self.database_url}\n{self.broker_url}".encode()
        return hashlib.sha256(seed).hexdigest()[:12]

    @property
    def catalogue_url(self) -> str:
        return (self.ccsi_url or f"{self.public_url.rstrip('/')}/v1/ccsi").rstrip("/")

    @model_validator(mode="after")
    def _secrets(self) -> "Settings":
        if self.jwt_algorithm.startswith("RS"):
            if self.jwt_private_key is None and self.jwt_private_key_file is None:
                raise ValueError(
                    f"CURE_JWT_ALGORITHM={self.jwt_algorithm} needs CURE_JWT_PRIVATE_KEY "
                    "or CURE_JWT_PRIVATE_KEY_FILE (an RSA private key in PEM)"
                )
        if self.notify_concurrency >= self.database_pool_size:
            raise ValueError("CURE_NOTIFY_CONCURRENCY must be below CURE_DATABASE_POOL_SIZE")
        needed = {
            "jwt_secret": not self.jwt_algorithm.startswith("RS"),
            "storage_secret": self.storage_backend == "local",
            "callback_signing_key": True,
            "sources_key": False,  # without it, sources' secrets come from the environment only
        }
        generated: dict[str, str] | None = None
        for name, variable in GENERATED_SECRETS.items():
            value: SecretStr | None = getattr(self, name)
            if value is None:
                if self.environment == "production":
                    if needed[name]:
                        raise ValueError(f"{variable} must be set in production")
                    continue
                generated = generated or local_secrets(self.secrets_file)
                value = SecretStr(generated[name])
                setattr(self, name, value)
            check_secret(variable, value.get_secret_value())
        return self

    @model_validator(mode="after")
    def _no_default_credentials(self) -> "Settings":
        if self.environment == "production" and (problems := default_credentials(self)):
            raise ValueError(
                "; ".join(problems) + ": give each service its own credentials in production "
                "(for compose.yaml, scripts/secrets writes random ones into .env)"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
