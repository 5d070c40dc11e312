"""Which device training would use: the GPU's name and memory, or the CPU's model and the system memory.
Pure Python; torch is imported only by :func:`detect`. The app asks its training process
(``engine.training.remote``), so that CUDA starts only where training runs (one CUDA context, not one
more in the window's process taking GPU memory from the runs)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceInfo:
    kind: str            # "cuda", "mps" or "cpu"
    name: str            # "NVIDIA H100 80GB HBM3", or the CPU model
    memory: int | None   # bytes: the GPU's memory, or the machine's RAM for the CPU
    detail: str = ""     # e.g. "torch 2.13.0, CUDA 12.8"

    @property
    def is_gpu(self) -> bool:
        return self.kind != "cpu"

    @property
    def short(self) -> str:
        return self.name if self.is_gpu else f"CPU ({self.name})" if self.name else "CPU"


def system_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def detect() -> DeviceInfo:
    """Ask torch (imported here, not before) what it would train on."""
    try:
        import torch
    except Exception as exc:  # no torch at all: the editor still works
        return DeviceInfo("cpu", cpu_name(), system_memory(), f"torch unavailable ({exc})")
    detail = f"torch {torch.__version__}"
    try:
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return DeviceInfo("cuda", props.name, int(props.total_memory),
                              f"{detail}, CUDA {torch.version.cuda}")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return DeviceInfo("mps", "Apple GPU (MPS)", system_memory(), detail)
    except Exception as exc:  # a broken driver is reported, not fatal
        detail += f"; GPU query failed: {exc}"
    return DeviceInfo("cpu", cpu_name(), system_memory(), detail)
