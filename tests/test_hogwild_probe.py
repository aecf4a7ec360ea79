"""benchmarks/hogwild_probe.py: each setting runs in its own process and its step trains."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_two_streams_of_each_mode_report_their_pairs(tmp_path):
  out = tmp_path / "probe.json"
  result = subprocess.run(
      [sys.executable, "-m", "benchmarks.hogwild_probe", "--vocab=200", "--dim=8", "--batch=32",
       "--steps_per_call=3", "--calls=2", "--settings=xla:2:1,eager_graph:1:1",
       f"--output_json={out}"],
      cwd=REPO, capture_output=True, text=True, timeout=300,
      env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
  assert result.returncode == 0, result.stderr
  rows = json.loads(out.read_text())["results"]
  assert [(r["mode"], r["streams"], r["intra_op_threads"]) for r in rows] == [
      ("xla", 2, 1), ("eager_graph", 1, 1)]
  # pairs = streams x calls x steps x batch over the timed seconds
  for row in rows:
    assert row["seconds"] > 0
    expected = row["streams"] * 2 * 3 * 32 / row["seconds"]
    assert abs(row["pairs_per_sec"] - expected) <= 1e-3 * expected + 1
  assert "xla:2:1" in result.stdout and "M pairs/s" in result.stdout
