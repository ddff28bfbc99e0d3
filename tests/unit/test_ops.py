"""The operator stack as data: Prometheus config and alert rules, Grafana provisioning and
the dashboard, and their wiring in docker-compose.yml (no docker engine runs here).

The structural checks need nothing more. ``promtool`` (Debian's ``prometheus`` package,
which ``make test`` installs) checks the config and rules, runs the alert unit tests in
ops/prometheus/alerts_test.yml and parses every dashboard query; without it those tests
fail, saying so (a skipped rules check is a check that never runs).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from oracle.node.metrics import series_names
from oracle.paths import ROOT

OPS = ROOT / "ops"
PROMETHEUS = OPS / "prometheus"
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
PROM_CONFIG: dict[str, Any] = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
RULES: dict[str, Any] = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
DATASOURCES = yaml.safe_load((OPS / "grafana/provisioning/datasources/prometheus.yml").read_text())
PROVIDERS = yaml.safe_load((OPS / "grafana/provisioning/dashboards/oracle.yml").read_text())
DASHBOARDS = sorted((OPS / "grafana/dashboards").glob("*.json"))
REQUIRED_ALERTS = {
    "OracleSignerBalanceLow",
    "OracleListenerBehind",
    "OracleFinalityHalt",
    "OracleRequestsStuck",
}
NOT_OURS = {"up"}  # Prometheus's own per-target series
PROMTOOL = shutil.which("promtool")


def unknown_metrics(expr: str) -> set[str]:
    """Metric names in a PromQL expression that the node does not export."""
    names = set(re.findall(r"\boracle_[a-z0-9_]+", expr))
    return names - series_names()


def rules() -> list[dict[str, Any]]:
    return [rule for group in RULES["groups"] for rule in group["rules"]]


def dashboard_targets() -> list[tuple[str, str]]:
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            found += [(panel["title"], t["expr"]) for t in panel["targets"]]
    return found


def bind_mounts(service: str) -> dict[str, str]:
    """host path (relative to the repo) -> container path, for ``./`` volumes."""
    mounts = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[source.removeprefix("./")] = target
    return mounts


# -- docker-compose.yml ------------------------------------------------------------------
def test_compose_runs_prometheus_and_grafana_on_files_in_the_repo() -> None:
    assert {"prometheus", "grafana"} <= set(SERVICES)
    for service in ("prometheus", "grafana"):
        mounts = bind_mounts(service)
        assert mounts, service
        for source in mounts:
            assert (ROOT / source).exists(), f"{service} mounts {source}, which is not in the repo"
        assert "healthcheck" in SERVICES[service]


def test_prometheus_scrapes_the_node_where_it_serves_metrics() -> None:
    (job,) = PROM_CONFIG["scrape_configs"]
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    node = SERVICES["node"]
    assert host == "node" and job["metrics_path"] == "/metrics"
    assert node["environment"]["ORACLE_METRICS__PORT"] == port
    assert node["environment"]["ORACLE_METRICS__HOST"] == "0.0.0.0"  # reachable from prometheus
    config_flag = next(a for a in SERVICES["prometheus"]["command"] if a.startswith("--config"))
    in_container = config_flag.split("=", 1)[1]
    (host_dir, container_dir), *_ = [
        (source, target)
        for source, target in bind_mounts("prometheus").items()
        if in_container.startswith(target + "/")
    ]
    assert ROOT / host_dir / in_container.removeprefix(container_dir + "/") == (
        PROMETHEUS / "prometheus.yml"
    )
    for rule_file in PROM_CONFIG["rule_files"]:
        assert (PROMETHEUS / rule_file).is_file(), rule_file
    # the alerts on Prometheus's own `up` series name this job
    for rule in rules():
        for job_name in re.findall(r'job="([^"]+)"', rule["expr"]):
            assert job_name == job["job_name"], rule["alert"]


def test_grafana_reads_the_provisioned_prometheus_and_dashboards() -> None:
    (source,) = DATASOURCES["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "9090:9090" in SERVICES["prometheus"]["ports"]
    mounts = bind_mounts("grafana")
    assert mounts["ops/grafana/provisioning"] == "/etc/grafana/provisioning"
    (provider,) = PROVIDERS["providers"]
    assert mounts["ops/grafana/dashboards"] == provider["options"]["path"]
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (OPS / "grafana/dashboards" / Path(home).name).is_file()


# -- alert rules: structure (always) -----------------------------------------------------
def test_alert_rules_are_well_formed() -> None:
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)), "alert names must be unique"
    assert set(names) >= REQUIRED_ALERTS
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert isinstance(rule["expr"], str) and rule["expr"].strip()
        assert re.fullmatch(r"\d+[smhd]", str(rule.get("for", "0m"))), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_alert_rules_read_only_metrics_the_node_exports() -> None:
    for rule in rules():
        assert not unknown_metrics(rule["expr"]), (rule["alert"], unknown_metrics(rule["expr"]))
        named = set(re.findall(r"\boracle_[a-z0-9_]+", rule["expr"]))
        assert named or set(re.findall(r"\b[a-z_]+\b", rule["expr"])) & NOT_OURS, rule["alert"]


def test_every_required_alert_has_a_unit_test() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    fired = {
        case["alertname"]
        for t in tests["tests"]
        for case in t["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert fired >= REQUIRED_ALERTS


def test_the_metric_check_can_fail() -> None:
    assert unknown_metrics("rate(oracle_nope_total[5m]) + oracle_requests") == {"oracle_nope_total"}
    assert unknown_metrics("oracle_reorgs") == {"oracle_reorgs"}  # a counter needs _total
    assert not unknown_metrics("histogram_quantile(0.9, oracle_request_duration_seconds_bucket)")


# -- the dashboard: Grafana's schema as data ---------------------------------------------
DASHBOARD_KEYS = {"title", "uid", "panels", "schemaVersion", "version", "time", "templating"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_has_grafanas_shape(path: Path) -> None:
    board = json.loads(path.read_text())
    assert set(board) >= DASHBOARD_KEYS, DASHBOARD_KEYS - set(board)
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    uid = DATASOURCES["datasources"][0]["uid"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        title = panel["title"]
        assert panel["type"] in {"stat", "timeseries", "table", "gauge", "bargauge"}, title
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, title
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"} and all(isinstance(v, int) for v in grid.values())
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, title
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{title} overlaps another panel"
        cells |= mine
        assert panel["targets"], title
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), title
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == uid and t["expr"].strip(), title
    for var in board["templating"]["list"]:
        assert var["datasource"]["uid"] == uid
        assert not unknown_metrics(var["definition"])


def test_every_dashboard_query_reads_exported_metrics() -> None:
    targets = dashboard_targets()
    assert targets
    for title, expr in targets:
        assert re.search(r"\boracle_", expr), (title, expr)
        assert not unknown_metrics(expr), (title, unknown_metrics(expr))


# -- promtool ------------------------------------------------------------------------------
def promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    if PROMTOOL is None:
        pytest.fail("promtool is not installed: `make test` installs Debian's prometheus package")
    done = subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_accepts_the_config_and_rules() -> None:
    promtool("check", "config", "prometheus.yml")
    assert f"{len(rules())} rules found" in promtool("check", "rules", "alerts.yml")


def test_promtool_alert_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Each query as a recording rule: promtool parses its PromQL (variables filled in)."""
    recorded = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$chain_id", ".*")}
        for i, (_, expr) in enumerate(dashboard_targets())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    promtool("check", "rules", str(path), cwd=tmp_path)
