"""Check sizeup's GPU figures (NVML) against independent readings on a real NVIDIA GPU.

Runs a short PyTorch workload (hold a known block of GPU memory, then bf16 matrix products) twice:

1. under `sizeup measure --json` — the CLI path a user checks against /usr/bin/time;
2. as an already-running process watched by a `Monitor` window — the path runs use for a model server —
   and once more with the Monitor's GPU readings off, to show what they cost the sampler thread.

Each time the workload reports what PyTorch reserved and what `nvidia-smi --query-compute-apps` said its
process held at the peak, and a background `nvidia-smi` samples board power every 100 ms, whose integral
over the window is an independent estimate of the energy that sizeup reads from NVML's cumulative counter.
Prints one JSON line. Needs torch with CUDA and nvidia-smi; exits 2 without them (not a CPU check).

    python benchmarks/gpu_check.py [--hold-gib 8] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))  # sizeup from this checkout, installed or not

WORKLOAD = r"""
import json, subprocess, sys, time
import torch
hold_gib, seconds = float(sys.argv[1]), float(sys.argv[2])
time.sleep(1.0)  # let the watcher open its window on an idle process first
block = torch.empty(int(hold_gib * 2**30), dtype=torch.uint8, device="cuda")
block.fill_(1)
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
torch.cuda.synchronize()
start, products = time.perf_counter(), 0
while time.perf_counter() - start < seconds:
    for _ in range(20):
        c = a @ b
    torch.cuda.synchronize()
    products += 20
busy = time.perf_counter() - start
smi = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                     capture_output=True, text=True).stdout.strip()
print(json.dumps({"pid": __import__("os").getpid(), "torch_reserved_mb": torch.cuda.memory_reserved() / 1e6,
                  "torch_max_allocated_mb": torch.cuda.max_memory_allocated() / 1e6,
                  "nvidia_smi_compute_apps_mib": smi, "busy_s": busy,
                  "tflops": products * 2 * 8192**3 / busy / 1e12}), flush=True)
"""


class PowerSampler:
    """nvidia-smi sampling board power every 100 ms, integrated (trapezoids) into joules."""

    def __init__(self):
        self._proc = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=power.draw", "--format=csv,noheader,nounits", "-lms", "100"],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.samples: list[tuple[float, float]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                self.samples.append((time.perf_counter(), float(line.split(",")[0])))
            except ValueError:
                pass

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait()

    def joules(self, start: float, end: float) -> float | None:
        inside = [(t, w) for t, w in self.samples if start <= t <= end]
        if len(inside) < 2:
            return None
        return sum((t2 - t1) * (w1 + w2) / 2 for (t1, w1), (t2, w2) in zip(inside, inside[1:], strict=False))


def workload_report(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith('{"pid"')]
    return json.loads(lines[-1]) if lines else {}


def via_measure(args, sampler: PowerSampler) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sizeup.cli",
            "measure",
            "--json",
            "--",
            sys.executable,
            "-c",
            WORKLOAD,
            str(args.hold_gib),
            str(args.seconds),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    end = time.perf_counter()
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-2000:]}
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "sizeup_measure": measured,
        "workload": workload_report(done.stdout),
        "nvidia_smi_power_integral_j": sampler.joules(start, end),
        "window_s": end - start,
    }


def via_monitor(args, sampler: PowerSampler, gpu: bool = True) -> dict:
    from sizeup.monitor import Monitor

    child = subprocess.Popen(
        [sys.executable, "-c", WORKLOAD, str(args.hold_gib), str(args.seconds)], stdout=subprocess.PIPE, text=True
    )
    time.sleep(0.3)  # the child is running (importing torch) before the window opens, as a server would be
    start = time.perf_counter()
    with Monitor([child.pid], gpu=gpu) as monitor:
        out, _ = child.communicate()
    end = time.perf_counter()
    summary = monitor.summary
    figures = {
        name: getattr(summary, name)
        for name in ("wall_s", "cpu_s", "peak_rss_mb", "gpu_mem_mb", "gpu_total_mem_mb", "gpu_util_pct", "gpu_energy_j")
    }
    figures["method"] = {name: how.value for name, how in summary.method.items()}
    figures["sampler_cpu_s"] = monitor.sampler_cpu_s
    figures["sampler_pct_of_a_core"] = 100 * monitor.sampler_cpu_s / summary.wall_s
    return {
        "monitor": figures,
        "workload": workload_report(out),
        "nvidia_smi_power_integral_j": sampler.joules(start, end),
        "window_s": end - start,
    }


def nvml_call_costs(rounds: int = 50) -> dict:
    """CPU ms per call of each NVML query a reading makes: what sampling the GPU costs the host."""
    from sizeup.monitor.gpu import Nvml

    nvml = Nvml.get()
    if nvml is None:
        return {"error": "NVML did not open"}
    lib, handle = nvml._nvml, nvml._handles[0]
    costs = {}
    for name in (
        "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetUtilizationRates",
        "nvmlDeviceGetComputeRunningProcesses",
    ):
        call = getattr(lib, name)
        start = time.process_time()
        for _ in range(rounds):
            call(handle)
        costs[name] = 1000 * (time.process_time() - start) / rounds
    for label, kwargs in (
        ("whole_reading", {}),  # at a window's two ends
        ("sample_reading", {"energy_too": False, "util_too": False}),
    ):  # at 20 Hz between
        start = time.process_time()
        for _ in range(rounds):
            nvml.read(**kwargs)
        costs[label] = 1000 * (time.process_time() - start) / rounds
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold-gib", type=float, default=8.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    if shutil.which("nvidia-smi") is None:
        print("gpu_check: no nvidia-smi here; this check needs an NVIDIA GPU", file=sys.stderr)
        return 2
    gpu = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    sampler = PowerSampler()
    try:
        result = {
            "gpu": gpu,
            "nvml_cpu_ms_per_call": nvml_call_costs(),
            "measure": via_measure(args, sampler),
            "monitor": via_monitor(args, sampler),
            # the same window without NVML: what the GPU readings add to the sampler's cost
            "monitor_without_gpu": via_monitor(args, sampler, gpu=False),
        }
    finally:
        sampler.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
