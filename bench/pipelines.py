"""Pipeline overhead: opsloop vs Kedro, Metaflow and ZenML on chains of trivial steps.

    ./dev bench bench/pipelines.py

Each tool runs a chain of 1 and of 10 steps that add one to an integer, in its own fresh process
and temp folder (the peers in their own venvs: ``.venv-kedro``, ``.venv-metaflow``,
``.venv-zenml``, made by ``./dev bench``). The figure compared is the *overhead per step*:
(time of the 10-step chain - time of the short chain) / the steps between them, so start-up
cost is left out; each chain runs cold (new inputs, nothing cached), then again unchanged
(fully cached where the tool caches), and each figure is the best of several runs (10
in-process, 3 for a process per run), since single runs on a small VM vary by 2x. How each
runs, as its users run it:

- opsloop: ``Pipeline.run`` in-process on the embedded store (every step a tracked run with its
  output stored), the cached re-run also without a client (recorded straight from the cache,
  :mod:`opsloop.pipelines.cached_run`) and as a whole ``opsloop pipelines run`` process;
- Kedro 1.7: ``SequentialRunner`` in-process over a ``DataCatalog`` of ``MemoryDataset``s (no
  persistence, no caching), with its default logging and with logging off;
- Metaflow: ``python flow.py run`` (a process per task; the shortest flow is start -> end);
- ZenML: the pipeline called in-process on its default local stack (SQLite, local artifacts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = {
    "kedro": ROOT / ".venv-kedro/bin/python",
    "metaflow": ROOT / ".venv-metaflow/bin/python",
    "zenml": ROOT / ".venv-zenml/bin/python",
}
STEPS = 10
REPEATS = 10  # each figure is the best of this many runs (the VM is noisy)
PROCESS_REPEATS = 3  # for a whole process per run (Metaflow)

OURS = """
import json, sys, time
REPEATS = %d
import opsloop
from opsloop.pipelines import pipeline, step

@step
def first(n: int) -> int:
    return n + 1

@step
def inc(x: int) -> int:
    return x + 1

@pipeline
def chain1(n: int = 0) -> None:
    first(n)

@pipeline
def chain10(n: int = 0) -> None:
    x = first(n)
    for _ in range(9):
        x = inc(x)

def timed(chain, n, label):
    t = time.perf_counter()
    if label == "cached, no client":  # recorded straight from the cache, no ORM
        chain.run(n=n)
    else:
        chain.run(client=client, n=n)
    return time.perf_counter() - t

if __name__ == "__main__":
    client = opsloop.Client()
    chain1.run(client=client, n=-1); chain10.run(client=client, n=-1)  # warm store and imports
    runs = {"cold": ([], []), "cached": ([], []), "cached, no client": ([], [])}
    for n in range(REPEATS):  # new inputs each time: cold, then the same again: cached
        for label in runs:
            runs[label][0].append(timed(chain1, n, label))
            runs[label][1].append(timed(chain10, n, label))
    print(json.dumps({k: [min(a), min(b)] for k, (a, b) in runs.items()}))
"""

KEDRO = """
import json, logging, sys, time
REPEATS = %d
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner

def inc(x):
    return x + 1

def chain(n):
    return Pipeline([node(inc, f"x{i}", f"x{i + 1}", name=f"s{i}") for i in range(n)])

def timed(n):
    t = time.perf_counter()
    SequentialRunner().run(chain(n), DataCatalog({"x0": MemoryDataset(0)}))
    return time.perf_counter() - t

def best(n):
    return min(timed(n) for _ in range(REPEATS))

timed(1)  # warm
out = {"cold": [best(1), best(10)]}
logging.disable(logging.CRITICAL)
out["logging off"] = [best(1), best(10)]
print(json.dumps(out))
"""

METAFLOW = """
from metaflow import FlowSpec, step

class Chain(FlowSpec):
    @step
    def start(self):
        self.x = 0
        self.next(self.{first})
{middle}
    @step
    def end(self):
        self.x += 1

if __name__ == "__main__":
    Chain()
"""

ZENML = """
import json, time
REPEATS = %d
from zenml import pipeline, step

@step
def inc(x: int) -> int:
    return x + 1

@pipeline
def chain1(n: int = 0):
    inc(n)

@pipeline
def chain10(n: int = 0):
    x = inc(n)
    for _ in range(9):
        x = inc(x)

chain1(n=-1)  # warm: stack, database, imports
runs = {"cold": ([], []), "cached": ([], [])}
for n in range(REPEATS):  # new inputs each time: cold, then the same again: cached
    for label in ("cold", "cached"):
        t = time.perf_counter(); chain1(n=n); runs[label][0].append(time.perf_counter() - t)
        t = time.perf_counter(); chain10(n=n); runs[label][1].append(time.perf_counter() - t)
print(json.dumps({k: [min(a), min(b)] for k, (a, b) in runs.items()}))
"""


def _metaflow_flow(steps: int) -> str:
    """A linear flow of ``steps`` steps (start, steps - 2 middles, end)."""
    middles = [f"s{i}" for i in range(steps - 2)]
    chain = [*middles, "end"]
    body = "".join(
        textwrap.indent(
            f"@step\ndef {name}(self):\n    self.x += 1\n    self.next(self.{chain[i + 1]})\n",
            "    ",
        )
        for i, name in enumerate(middles)
    )
    return METAFLOW.format(first=chain[0], middle=body)


def _json(done: subprocess.CompletedProcess[str], tool: str) -> dict[str, list[float]]:
    if done.returncode != 0:
        raise SystemExit(f"{tool} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_ours(folder: Path) -> dict[str, list[float]]:
    script = folder / "ours_chain.py"
    script.write_text(OURS % REPEATS)
    env = {**os.environ, "OPSLOOP_HOME": str(folder / "ours-home"), "OPSLOOP_CAPTURE_ENV": "1"}
    result = _json(subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                                  env=env, cwd=folder), "opsloop")  # fmt: skip
    cli = str(Path(sys.executable).with_name("opsloop"))
    args = [cli, "pipelines", "run", "ours_chain.py:chain10", "--param", "n=7"]
    subprocess.run(args, capture_output=True, env=env, cwd=folder, check=True)
    best = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(args, capture_output=True, env=env, cwd=folder, check=True)
        best.append(time.perf_counter() - t)
    result["cli cached"] = [min(best)]
    return result


def run_kedro(folder: Path) -> dict[str, list[float]]:
    script = folder / "kedro_chain.py"
    script.write_text(KEDRO % REPEATS)
    return _json(subprocess.run([str(PEERS["kedro"]), str(script)], capture_output=True,
                                text=True, cwd=folder), "kedro")  # fmt: skip


def run_metaflow(folder: Path) -> dict[str, list[float]]:
    env = {**os.environ, "USERNAME": "bench", "METAFLOW_DEFAULT_DATASTORE": "local"}
    times = []
    for steps in (2, STEPS):
        flow = folder / f"flow{steps}.py"
        flow.write_text(_metaflow_flow(steps))
        args = [str(PEERS["metaflow"]), str(flow), "--quiet", "run"]
        subprocess.run(args, capture_output=True, env=env, cwd=folder)  # warm: datastore
        best = []
        for _ in range(PROCESS_REPEATS):
            t = time.perf_counter()
            done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=folder)
            best.append(time.perf_counter() - t)
            if done.returncode != 0:
                raise SystemExit(f"metaflow failed:\n{done.stderr[-3000:]}")
        times.append(min(best))
    return {"cold": times}


def run_zenml(folder: Path) -> dict[str, list[float]]:
    script = folder / "zenml_chain.py"
    script.write_text(ZENML % PROCESS_REPEATS)  # about 2 s a run
    env = {**os.environ, "ZENML_CONFIG_PATH": str(folder / "zenml-config"),
           "ZENML_ANALYTICS_OPT_IN": "false", "ZENML_LOGGING_VERBOSITY": "ERROR",
           "AUTO_OPEN_DASHBOARD": "false"}  # fmt: skip
    python = str(PEERS["zenml"])
    zenml = str(Path(python).with_name("zenml"))
    subprocess.run([zenml, "init"], capture_output=True, env=env, cwd=folder)
    return _json(subprocess.run([python, str(script)], capture_output=True, text=True,
                                env=env, cwd=folder), "zenml")  # fmt: skip


def per_step(times: list[float], short: int = 1) -> float:
    return (times[1] - times[0]) / (STEPS - short)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="opsloop-bench-pipelines-"))
    results = {"opsloop": run_ours(folder)}
    runners = {"kedro": run_kedro, "metaflow": run_metaflow, "zenml": run_zenml}
    for tool, fn in runners.items():
        if PEERS[tool].exists():
            results[tool] = fn(folder)
        else:
            print(f"({tool} is not installed at {PEERS[tool]}: ./dev bench bench/pipelines.py)")
    ours = {label: per_step(times) * 1000 for label, times in results["opsloop"].items()
            if len(times) == 2}  # fmt: skip
    print(f"{'tool':<26} {'1 step':>9} {'10 steps':>9} {'per step':>10}  ratio to opsloop")
    for tool, res in results.items():
        for label, times in res.items():
            if len(times) != 2:
                continue
            short = 2 if tool == "metaflow" else 1
            step_ms = per_step(times, short) * 1000
            first = f"{times[0]:.3f}s" if short == 1 else f"{times[0]:.2f}s*"
            ratio = step_ms / ours.get(label, ours["cold"])  # cached against our cached
            print(f"{tool + ' ' + label:<26} {first:>9} {times[1]:>8.3f}s {step_ms:>8.2f}ms  "
                  f"{ratio:.2f}x")  # fmt: skip
    print("* Metaflow's shortest flow has 2 steps (start, end)")
    print(
        f"opsloop fully cached 10-step run as a whole CLI process: "
        f"{results['opsloop']['cli cached'][0]:.3f} s (best of 3)"
    )


if __name__ == "__main__":
    main()
