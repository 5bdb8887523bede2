"""The Grafana dashboard and the alert rules query only metrics CURE exports, and cover what
operators watch; the compose stack is valid for Compose, with its services, ports and gates."""

import json
import re
import tempfile
from pathlib import Path

import yaml
from prometheus_client import Counter, Gauge, Histogram

from cure.kit import metrics
from tests.conftest import ROOT
from tests.ops.compose import compose_config, write_secrets

MONITORING = ROOT / "monitoring"
NAME = re.compile(r"\b(cure_[a-z0-9_]+)\b")


def exported_names() -> set[str]:
    """Every sample name the instruments in cure.kit.metrics expose (labelled ones included,
    which the text format only shows once a label set was used)."""
    names: set[str] = set()
    for instrument in vars(metrics).values():
        if isinstance(instrument, Counter):
            base = instrument._name
            names |= {f"{base}_total", f"{base}_created"}
        elif isinstance(instrument, Histogram):
            base = instrument._name
            names |= {f"{base}_bucket", f"{base}_sum", f"{base}_count", f"{base}_created"}
        elif isinstance(instrument, Gauge):
            names.add(instrument._name)
    return names


def dashboard_queries() -> dict[str, list[str]]:
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "cure.json").read_text())
    return {
        panel["title"]: [target["expr"] for target in panel["targets"]]
        for panel in dashboard["panels"]
    }


def alert_rules() -> dict[str, str]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


async def test_every_metric_the_dashboard_and_alerts_query_is_exported(client) -> None:
    exported = exported_names()
    queried = {
        name
        for exprs in [*dashboard_queries().values(), list(alert_rules().values())]
        for expr in exprs
        for name in NAME.findall(expr)
    }
    assert queried and queried <= exported, sorted(queried - exported)

    # and what /metrics shows is drawn from those same instruments
    await client.get("/v1/apps")
    text = (await client.get("/metrics")).text
    shown = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:5] == "cure_"}
    assert shown and shown <= exported
    assert 'cure_http_requests_total{method="GET",route="/v1/apps",status="200"}' in text


def test_the_dashboard_covers_what_operators_watch() -> None:
    queries = dashboard_queries()
    joined = {title: " ".join(exprs) for title, exprs in queries.items()}
    wanted = {
        "Orders per state": "cure_orders",
        "Failure rate": "cure_orders_finished_total",
        "Order duration per app (p50, p95)": "cure_order_duration_seconds_bucket",
        "Queue depth": "cure_queue_messages",
        "API latency (p95 per route)": "cure_http_request_duration_seconds_bucket",
        "API error rate": "cure_http_requests_total",
        "Log errors": "cure_log_records_saved_total",
    }
    for title, metric in wanted.items():
        assert metric in joined[title], title
    datasource = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    assert datasource["datasources"][0]["uid"] == "prometheus"


def test_alert_rules_cover_a_stuck_queue_failures_and_readiness() -> None:
    rules = alert_rules()
    assert "cure.orders" in rules["CureOrdersQueueStuck"]
    assert "FAILED" in rules["CureFailureRateRising"]
    assert "cure_dependency_up" in rules["CureNotReady"]
    prometheus = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["cure-api"]["static_configs"][0]["targets"] == ["api:8000"]
    assert jobs["cure-worker"]["static_configs"][0]["targets"] == ["worker:9809"]


def _config(*profiles: str) -> dict:
    # With the credentials an operator makes with scripts/secrets (compose.yaml has none).
    with tempfile.TemporaryDirectory() as folder:
        env_file = Path(folder) / ".env"
        write_secrets(env_file)
        result = compose_config(*(f"--profile={p}" for p in profiles), env_file=env_file)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_compose_stack_is_valid_with_its_services_ports_and_health_gates() -> None:
    config = _config("monitoring")
    services = config["services"]
    assert set(services) >= {
        "db", "rabbitmq", "minio", "minio-bucket", "mail", "migrate", "api", "worker",
        "flower", "prometheus", "grafana",
    }  # fmt: skip
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]

    def published(name: str) -> set[int]:
        ports = services[name].get("ports", [])
        return {
            int(p["published"]) if isinstance(p, dict) else int(str(p).split(":")[-2])
            for p in ports
        }

    assert 8000 in published("api") and 5555 in published("flower")
    assert 15672 in published("rabbitmq") and 8025 in published("mail")
    assert 9090 in published("prometheus") and 3000 in published("grafana")

    # every dependency on a service with a health check waits for it to be healthy
    for name, service in services.items():
        for needed, gate in (service.get("depends_on") or {}).items():
            condition = gate["condition"]
            if "healthcheck" in services[needed]:
                assert condition == "service_healthy", (name, needed, condition)
            else:
                assert condition == "service_completed_successfully", (name, needed)
    for name in ("db", "rabbitmq", "minio", "mail", "api", "worker", "flower", "prometheus"):
        assert services[name]["healthcheck"]["test"], name
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker"]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert services["api"]["build"]["network"] == "host"
    mounts = " ".join(str(v) for v in services["grafana"]["volumes"])
    assert "monitoring/grafana/dashboards" in mounts and "provisioning" in mounts
