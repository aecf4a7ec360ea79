"""Small helpers shared by the benchmark scripts (timing, peak memory, JSON output)."""

from __future__ import annotations

import json
import resource
import statistics
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
