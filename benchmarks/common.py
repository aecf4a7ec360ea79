"""Small helpers shared by the benchmark scripts (timing, peak memory, JSON output)."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys

from w2v_tf.fileio import atomic_write_json


def peak_rss_mb() -> float:
  """Peak resident set size of this process so far, in MiB (Linux ru_maxrss is KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median(values):
  return statistics.median(values)


def write_json(path: str | None, payload: dict) -> None:
  """Prints the payload and writes it to `path` (atomically) when given."""
  print(json.dumps(payload, indent=2, sort_keys=True))
  if path:
    atomic_write_json(path, payload, sort_keys=True)
    print(f"wrote {path}", file=sys.stderr)


def cpu_model() -> str:
  """lscpu's "Model name" (else /proc/cpuinfo's, else platform's)."""
  try:
    output = subprocess.run(["lscpu"], capture_output=True, text=True, check=False,
                            env=dict(os.environ, LC_ALL="C")).stdout
    for line in output.splitlines():
      if line.startswith("Model name:"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


# Instruction sets that change what a figure means here (oneDNN's and XLA's kernels, OpenBLAS's).
CPU_ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_isa(cpuinfo: str = "/proc/cpuinfo") -> list[str]:
  """Which of `CPU_ISA_FLAGS` the first CPU's flags in `cpuinfo` list (empty if unreadable)."""
  try:
    with open(cpuinfo, encoding="utf-8") as f:
      flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
  except OSError:
    return []
  return [flag for flag in CPU_ISA_FLAGS if flag in flags]
