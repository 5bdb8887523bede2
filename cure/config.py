"""Settings: every value comes from a ``CURE_*`` environment variable, with working local defaults."""

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"  # noqa: S105 (a placeholder, refused outside dev)
DEV_STORAGE_SECRET = "dev-only-insecure-storage-secret-change-me"  # noqa: S105
DEV_CALLBACK_KEY = "dev-only-insecure-callback-key-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CURE_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/cure"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = "http://127.0.0.1:8000"

    # Access tokens: JWTs signed with HS* (jwt_secret) or RS* (an RSA private key in PEM, given
    # inline or as a file; the public key is derived from it and published at /v1/auth/jwks.json).
    jwt_secret: str = DEV_JWT_SECRET
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
    throttle_window_seconds: int = Field(default=900, gt=0)
    throttle_account_failures: int = Field(default=10, gt=0)
    throttle_address_failures: int = Field(default=100, gt=0)
    throttle_reset_requests: int = Field(default=5, gt=0)

    # Outgoing email (SMTP).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_from: str = "CURE <noreply@cure.invalid>"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0

    # Storage: "s3" (MinIO, AWS, any S3-compatible server) or "local" (a directory, with links
    # the API signs and serves itself) for a single machine with no S3 service.
    storage_backend: Literal["s3", "local"] = "local"
    storage_dir: Path = Path("var/storage")
    storage_secret: str = DEV_STORAGE_SECRET
    s3_endpoint_url: str | None = None
    s3_bucket: str = "cure-results"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    result_link_ttl_seconds: int = 3600

    apps_dir: Path = Path(__file__).parent / "apps"
    docker_url: str | None = None  # None: the environment's DOCKER_HOST or the local socket
    docker_timeout_seconds: float = Field(default=60, gt=0)  # every call to the engine
    # Labels every container and volume of this deployment's runs, so deployments sharing an
    # engine never touch each other's; default: derived from the database and broker it uses.
    deployment_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    database_timeout_seconds: float = Field(default=30, gt=0)  # a worker's every statement
    container_memory_mb: int = 512
    container_cpus: float = 1.0
    container_pids: int = 128
    container_timeout_seconds: int = 600
    max_output_bytes: int = 256 * 1024 * 1024
    container_sweep_seconds: float = 60  # how often a worker removes app containers no run owns

    # Inputs: found through a CCSI-compatible catalogue (None: this deployment's own, under
    # public_url), fetched only from the storage bucket or from these hosts (public addresses
    # only), into a per-worker cache bounded in size, and staged in a work folder per run.
    ccsi_url: str | None = None
    input_hosts: list[str] = Field(default_factory=list)
    input_cache_dir: Path = Path("var/cache/inputs")
    input_cache_max_mb: int = Field(default=2048, gt=0)
    work_dir: Path = Path("var/work")
    stage_timeout_seconds: float = Field(default=600, gt=0)

    # Per-customer limits on submitting: orders not yet final, and orders per window.
    max_active_orders: int = 10
    max_orders_per_window: int = 200
    orders_window_seconds: int = 3600

    # Callbacks: loopback, link-local and private targets are refused unless allowed here.
    allow_private_callbacks: bool = False
    callback_signing_key: str = DEV_CALLBACK_KEY
    callback_timeout_seconds: float = 10
    callback_max_attempts: int = 6

    # Notifier: failed emails and callbacks wait base * 2^(tries - 1) seconds, at most max.
    notify_poll_seconds: float = 1
    notify_retry_base_seconds: float = 5
    notify_retry_max_seconds: float = 3600
    email_max_attempts: int = 60  # with the cap, about two days of trying

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

    # Celery: an infrastructure failure is retried this often, then the task is dead-lettered.
    task_max_retries: int = 3
    task_outage_seconds: float = 600  # an outage of a backing service is waited out this long
    task_retry_backoff_seconds: float = 2
    delivery_limit: int = 3  # redeliveries (e.g. a worker killed mid-task) before dead-lettering

    publish_timeout_seconds: float = 10
    notify_lease_seconds: float = 120  # a claimed notification is tried again after this

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
    app_log_max_lines: int = Field(default=10000, gt=0)  # an app's output lines kept per run

    # Metrics and health: standalone processes (worker, status manager, relay, log saver) serve
    # /metrics on their own port; a worker's pool processes share a multiprocess directory.
    metrics_dir: Path = Path("var/metrics")
    worker_metrics_port: int = 9809  # 0: none
    metrics_host: str = "127.0.0.1"
    health_checks: list[Literal["database", "broker", "storage", "docker"]] = Field(
        default=["database", "broker", "storage", "docker"]
    )
    health_timeout_seconds: float = Field(default=3, gt=0)

    # The local mail catcher (`cure mail serve`, started by scripts/run): one file per message.
    mail_dir: Path = Path("var/mail")

    orders_queue: str = "cure.orders"
    dead_letter_exchange: str = "cure.dead"
    dead_letter_queue: str = "cure.dead"
    events_queue: str = "cure.order_events"
    relay_poll_seconds: float = 0.5
    run_background_services: bool = True

    # The portal: the built single-page app (portal/dist, made by `npm run build` in portal/),
    # an optional base map of XYZ tiles (e.g. an OpenStreetMap tile server; none by default, the
    # maps then draw on a plain background) and the account that runs and publishes the
    # storylines' demonstration orders (`cure portal prepare`).
    portal_dir: Path = Path(__file__).resolve().parent.parent / "portal" / "dist"
    portal_tile_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    portal_tile_attribution: str = "© OpenStreetMap contributors"
    portal_demo_email: str = "portal-demo@example.org"

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
    def _refuse_placeholder_secrets(self) -> "Settings":
        if self.jwt_algorithm.startswith("RS"):
            if self.jwt_private_key is None and self.jwt_private_key_file is None:
                raise ValueError(
                    f"CURE_JWT_ALGORITHM={self.jwt_algorithm} needs CURE_JWT_PRIVATE_KEY "
                    "or CURE_JWT_PRIVATE_KEY_FILE (an RSA private key in PEM)"
                )
        elif self.environment == "production" and (
            self.jwt_secret == DEV_JWT_SECRET or len(self.jwt_secret) < 32
        ):
            raise ValueError("CURE_JWT_SECRET must be set to a random value of 32+ characters")
        if self.environment == "production":
            if self.storage_backend == "local" and self.storage_secret == DEV_STORAGE_SECRET:
                raise ValueError("CURE_STORAGE_SECRET must be set outside development")
            if self.callback_signing_key == DEV_CALLBACK_KEY:
                raise ValueError("CURE_CALLBACK_SIGNING_KEY must be set outside development")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
