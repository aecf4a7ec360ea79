"""benchmarks/profile_step.py: a short run records a tf.profiler trace and finds the XLA step's ops in it."""

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_profile_reports_step_times_and_the_compiled_steps_operations(planted, tmp_path):
  csv_path, _ = planted
  output, trace_dir = tmp_path / "profile.json", tmp_path / "trace"
  process = subprocess.run(
      [sys.executable, "-m", "benchmarks.profile_step", f"--train_csv={csv_path}",
       "--stopwords=none", "--cache_dir=", "--batch_size=256", "--steps=20", "--repeats=1",
       "--trace_steps=10", f"--trace_dir={trace_dir}", f"--output_json={output}"],
      cwd=REPO_ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True,
      text=True, timeout=300, check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  result = json.loads(output.read_text(encoding="utf-8"))
  for key in ("step_alone_ms", "step_live_ms", "pipeline_wall_ms_per_batch",
              "pipeline_cpu_ms_per_batch", "xla_ms_per_step"):
    assert result[key] > 0, (key, result)
  assert result["traced_steps"] == 10
  names = [name for name, _ in result["xla_ops"]]
  # The compiled step's row updates and the sampled logits' matmul are XLA operations.
  assert any("scatter" in name for name in names), names
  assert any(name.startswith("Einsum") for name in names), names
  assert 0.5 < result["xla_cores_busy"] <= os.cpu_count() + 0.5
  assert result["tfdata_ops"], result  # the pipeline's ops ran on tf.data's threads
  assert list(trace_dir.glob("plugins/profile/*/*.xplane.pb"))  # TensorBoard can open it
  assert "XLA step:" in process.stderr
