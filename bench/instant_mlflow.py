"""A stand-in MLflow server that answers at once: the ceiling of ``bench/mlflow_compat.py``.

    .venv/bin/python bench/instant_mlflow.py PORT SEARCH_ANSWER_FILE

Why: the ``mlflow`` client's own cost (building each request, ``requests``, parsing each answer
into its entities) counts on both sides of a ratio. Timing the same client against a server
that does no work says how far any server could go: ``mlflow_compat.py`` prints MLflow's time
over this one as the ceiling next to each ratio. The calls the benchmark makes are answered
with the smallest answer the client accepts; ``runs/search`` with the bytes in
``SEARCH_ANSWER_FILE`` (opsloop's own answer to the same search, written there by the
benchmark before it searches), so the client parses the same 1,000 runs it parses elsewhere.
Raw ASGI on uvicorn, one worker: no framework, no store.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import uvicorn

RUN_ID = "0" * 32
EXPERIMENT = {"experiment_id": "1", "name": "search", "lifecycle_stage": "active"}
RUN = {
    "info": {"run_id": RUN_ID, "run_uuid": RUN_ID, "experiment_id": "1", "status": "RUNNING",
             "lifecycle_stage": "active", "start_time": 0, "artifact_uri": "mlflow-artifacts:/"},
    "data": {},
}  # fmt: skip
ANSWERS = {
    "/health": b"OK",
    "/api/2.0/mlflow/experiments/create": json.dumps({"experiment_id": "1"}).encode(),
    "/api/2.0/mlflow/experiments/get-by-name": json.dumps({"experiment": EXPERIMENT}).encode(),
    "/api/2.0/mlflow/runs/create": json.dumps({"run": RUN}).encode(),
}
SEARCH = "/api/2.0/mlflow/runs/search"


class Instant:
    def __init__(self, search_answer: Path) -> None:
        self.search_answer = search_answer
        self.search: bytes | None = None  # read at the first search: written just before it

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        more = True
        while more:  # the body is read, as a server would, and dropped
            more = (await receive()).get("more_body", False)
        path = scope["path"]
        if path == SEARCH:
            if self.search is None:
                self.search = self.search_answer.read_bytes()
            body = self.search
        else:
            body = ANSWERS.get(path, b"{}")  # log-metric, log-batch: MLflow's empty answer
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    port, answer = int(sys.argv[1]), Path(sys.argv[2])
    uvicorn.run(Instant(answer), host="127.0.0.1", port=port, log_level="warning", access_log=False)
