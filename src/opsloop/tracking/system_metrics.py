"""Background sampling of CPU, memory and (NVIDIA) GPU use into ``system/*`` metrics."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from opsloop.client import Client

__all__ = ["SystemMetricsSampler", "sample_system_metrics"]


def _gpu_metrics() -> dict[str, float]:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver / no GPU: nothing to sample
        return {}
    out: dict[str, float] = {}
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        util = pynvml.nvmlDeviceGetUtilizationRates(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        out[f"system/gpu_{index}_utilization_percentage"] = float(util.gpu)
        out[f"system/gpu_{index}_memory_used_mb"] = memory.used / 2**20
    return out


def sample_system_metrics() -> dict[str, float]:
    """One sample: CPU %, memory used and %, process RSS, and per-GPU use when present."""
    import psutil

    memory = psutil.virtual_memory()
    sample = {
        "system/cpu_utilization_percentage": psutil.cpu_percent(interval=None),
        "system/memory_used_mb": (memory.total - memory.available) / 2**20,
        "system/memory_utilization_percentage": memory.percent,
        "system/process_rss_mb": psutil.Process().memory_info().rss / 2**20,
    }
    sample.update(_gpu_metrics())
    return sample


class SystemMetricsSampler:
    """Logs :func:`sample_system_metrics` to a run every ``interval`` seconds until stopped."""

    def __init__(self, client: Client, run_id: str, *, interval: float = 10.0) -> None:
        self.client = client
        self.run_id = run_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="opsloop-system-metrics", daemon=True
        )
        self._step = 0

    def start(self) -> None:
        import psutil

        psutil.cpu_percent(interval=None)  # prime: the first reading is relative to this call
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._log()

    def _log(self) -> None:
        sample: dict[str, Any] = sample_system_metrics()
        self.client.log_metrics(self.run_id, sample, step=self._step)
        self._step += 1

    def stop(self) -> None:
        """Take a last sample and stop."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self._log()
