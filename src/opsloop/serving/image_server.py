"""The server inside a model image: one model version, answered over HTTP.

An image built by ``opsloop models build-image`` carries its model package and no store, so
this server needs nothing but the package reader and the request shapes of ``opsloop serve``
(:mod:`opsloop.serving.payload`), on the standard library's threaded HTTP server: its
dependencies are the model's lock and pydantic, and the image stays near the floor.

Endpoints, as ``opsloop serve`` and ``mlflow models serve`` name them: ``POST /invocations``
and ``POST /predict`` (records, columns, dataframe_split, instances or inputs; answered
``{"predictions": [...]}``), ``GET /ping`` (the process answers), ``GET /healthz`` (the model
is loaded and answered its own example). ``python -m opsloop.serving.image_server --check`` is
the image's health check. Called as ``opsloop serve`` (what the Kubernetes manifests run), it
reads the port and address from ``OPSLOOP_SERVE_PORT`` / ``OPSLOOP_SERVE_HOST``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.errors import OpsloopError
from opsloop.errors import PayloadTooLarge
from opsloop.registry.package import LoadedModel
from opsloop.registry.package import load_package
from opsloop.serving.payload import MAX_ROWS
from opsloop.serving.payload import predict_method
from opsloop.serving.payload import read_rows

__all__ = ["MODEL_ENV", "REF_ENV", "check", "main", "make_server"]

MODEL_ENV = "OPSLOOP_IMAGE_MODEL"  # the package folder in the image
REF_ENV = "OPSLOOP_IMAGE_REF"  # NAME@N it was built from
_MAX_BODY = 10 * 1024 * 1024  # as opsloop serve's inference endpoints
# opsloop's error codes as MLflow's scoring server names them (opsloop.serving.scoring's, which
# imports FastAPI, as this server does not).
_MLFLOW_CODES = {"INVALID_INPUT": "BAD_REQUEST", "TOO_LARGE": "BAD_REQUEST",
                 "NOT_FOUND": "RESOURCE_DOES_NOT_EXIST"}  # fmt: skip


def _json(value: Any) -> Any:
    """NumPy and pandas values as JSON's own."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


class _Handler(BaseHTTPRequestHandler):
    model: LoadedModel
    ref: str
    server_version = "opsloop-image"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a container's log is for errors (the base class writes every request)."""

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body, default=_json).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fail(self, exc: OpsloopError) -> None:
        """MLflow's error shape at ``/invocations`` (bad input a 400, as its scoring server
        answers), opsloop's elsewhere (bad input a 422, as ``opsloop serve`` answers)."""
        if self.path == "/invocations":
            status = 400 if isinstance(exc, InvalidInput) else exc.http_status
            code = _MLFLOW_CODES.get(exc.code, "INTERNAL_ERROR")
            self._send(status, {"error_code": code, "message": exc.message})
        else:
            self._send(422 if isinstance(exc, InvalidInput) else exc.http_status, exc.to_dict())

    def do_GET(self) -> None:
        if self.path == "/ping":
            self._send(200, "ok")
        elif self.path in ("/healthz", "/health"):
            self._send(200, {"status": "ok", "model": self.ref})
        elif self.path == "/version":
            self._send(200, {"model": self.ref, "requirements": self.model.meta.requirements})
        else:
            self._fail(NotFound(f"no route GET {self.path}"))

    def do_POST(self) -> None:
        if self.path not in ("/invocations", "/predict"):
            self._fail(NotFound(f"no route POST {self.path}"))
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._fail(PayloadTooLarge(f"a body of {length} bytes; at most {_MAX_BODY}"))
            return
        try:
            body = json.loads(self.rfile.read(length) or b"null")
            rows, _ = read_rows(body)
            method = predict_method(body)
            inputs = self.model.prepare(rows)
            if method == "predict_proba":
                outputs = self.model.predict_proba_prepared(inputs)
            else:
                outputs = self.model.predict_prepared(inputs)
        except json.JSONDecodeError as exc:
            self._fail(InvalidInput(f"the body is not valid JSON: {exc}"))
        except OpsloopError as exc:
            self._fail(exc)
        except Exception as exc:  # the model's own fault: answered, and the server goes on
            self._fail(OpsloopError(f"the model failed: {type(exc).__name__}: {exc}"))
        else:
            self._send(200, {"predictions": outputs})


def make_server(package: Path, ref: str, host: str, port: int) -> ThreadingHTTPServer:
    """The server for the package in ``package`` (loaded now: a broken model fails the start)."""
    model = load_package(package, ref=ref)
    handler = type("Handler", (_Handler,), {"model": model, "ref": ref})
    return ThreadingHTTPServer((host, port), handler)


def check(port: int) -> int:
    """The health check's exit status: 0 when ``/healthz`` answers 200 within 2 s."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return 0 if answer.status == 200 else 1
    except OSError:
        return 1


def main(argv: list[str]) -> int:
    """``[serve] [--check]``: serve the image's model, or check that it is served."""
    port = int(os.environ.get("OPSLOOP_SERVE_PORT", "8080"))
    if "--check" in argv:
        return check(port)
    host = os.environ.get("OPSLOOP_SERVE_HOST", "0.0.0.0")  # a container's own address
    server = make_server(Path(os.environ[MODEL_ENV]), os.environ[REF_ENV], host, port)
    print(f"serving {os.environ[REF_ENV]} on http://{host}:{port} (at most {MAX_ROWS} rows)")
    sys.stdout.flush()
    # As PID 1 of a container, SIGTERM does nothing unless handled: stop taking requests, let
    # those in flight finish (shutdown waits for serve_forever, so from another thread).
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
