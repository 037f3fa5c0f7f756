"""``opsloop serve``'s app registers the alerts' gauges at the first /metrics scrape rather than
at start (their module is off the path to the first prediction): /metrics still lists them, as
``opsloop server``'s does. A fresh interpreter, so that no other test has imported them first."""

from __future__ import annotations

import subprocess
import sys

SCRAPE = """
import sys
from fastapi.testclient import TestClient
from opsloop.app.serving import create_serving_app
from opsloop.config import load_settings

with TestClient(create_serving_app(load_settings())) as http:
    before = "opsloop.monitoring.alerts" in sys.modules
    text = http.get("/metrics").text
names = ("alert_firing", "monitor_value")
print(before, *(f"# TYPE opsloop_{name} gauge" in text for name in names))
"""


def test_serve_metrics_lists_alert_gauges_registered_at_first_scrape() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRAPE], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "True", "True"]
