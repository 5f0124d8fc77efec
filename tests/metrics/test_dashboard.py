"""The Grafana dashboard in the docs: valid JSON, every panel on the datasource variable,
and every metric it queries one that /metrics exports."""

import json
import re
from pathlib import Path

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from .support import TOKEN

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "operations" / "grafana-dashboard.json"
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}


def exported_names(settings) -> set[str]:
    settings.TOKENTILL_METRICS_TOKEN = TOKEN
    settings.CELERY_BROKER_URL = "memory://"  # kombu's in-process broker: every queue empty
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in SUFFIXES.get(family.type, [""])
    }


def panels(dashboard: dict) -> list[dict]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_every_panel_reads_the_datasource_chosen_in_the_variable():
    dashboard = json.loads(DASHBOARD.read_text())

    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert panel["targets"] and all(
            t["datasource"] == panel["datasource"] for t in panel["targets"]
        )
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_metric_the_dashboard_queries_is_exported(db, settings):
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        name
        for panel in panels(dashboard)
        for target in panel["targets"]
        for name in re.findall(r"\btokentill_[a-z_]+", target["expr"])
    }
    exported = exported_names(settings)

    assert queried - exported == set()
    # and every figure of tokentill's has a panel, but the histogram's sum
    ours = {name for name in exported if name.startswith("tokentill_")}
    assert ours - queried == {"tokentill_http_request_duration_seconds_sum"}
