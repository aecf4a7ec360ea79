"""Seconds from process start to the first training step (target: at most 10 s, warm cache).

  python -m benchmarks.first_step --train_csv ../shared/data/imdb/IMDB_Dataset.csv.gz \
      --repeats 3 --output_json out/first_step.json

Each repeat starts `python -m w2v_tf.train` afresh (after one run that fills the corpus cache, not
counted) and timestamps its console lines as they arrive: "import" is a bare `python -c "import
tensorflow"` measured the same way, "built" is the trainer's first line (corpus, vocabulary,
tables and chunk files ready), "first step" its `step 1 |` line (the step's and the exact
comparisons' XLA compilation included). The run is stopped there. Medians of the repeats.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Sequence

from absl import flags

from benchmarks.common import cpu_isa, cpu_model, write_json
from w2v_tf.errors import UsageError, run_main

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("train_csv", None, "The IMDB CSV.")
  flags.DEFINE_integer("repeats", 3, "Timed runs (after one that fills the cache).",
                       lower_bound=1)
  flags.DEFINE_string("output_json", None, "Write the results as JSON here.")


def timed_lines(command: list[str], stop_at: str | None, timeout: float = 600) -> dict:
  """{first line's text prefix: seconds since start} for the lines before `stop_at` (included)."""
  started = time.perf_counter()
  process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  times = {}
  try:
    for line in process.stderr:
      elapsed = time.perf_counter() - started
      times.setdefault("first line", elapsed)
      if stop_at and line.startswith(stop_at):
        times["stop"] = elapsed
        break
      if elapsed > timeout:
        break
  finally:
    process.kill()
    process.wait()
  times["exit"] = time.perf_counter() - started
  return times


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.train_csv or not os.path.isfile(FLAGS.train_csv):
    raise UsageError("--train_csv must name the IMDB CSV")
  with tempfile.TemporaryDirectory(prefix="w2v_first_step-") as work:
    train = [sys.executable, "-m", "w2v_tf.train", f"--train_csv={FLAGS.train_csv}",
             f"--model_dir={os.path.join(work, 'model')}", "--overwrite", "--epochs=1",
             "--analogies=none", "--noprogress", f"--cache_dir={os.path.join(work, 'cache')}"]
    timed_lines(train, "step 1 |")  # fills the corpus cache and the chunk files
    runs = []
    for _ in range(FLAGS.repeats):
      imported = timed_lines([sys.executable, "-c", "import sys, tensorflow; "
                              "print('imported', file=sys.stderr, flush=True)"], "imported")
      trained = timed_lines(train, "step 1 |")
      if "stop" not in trained:
        raise RuntimeError("the trainer printed no `step 1 |` line")
      runs.append({"import_tensorflow_s": imported["stop"], "built_s": trained["first line"],
                   "first_step_s": trained["stop"]})
      print(f"import {runs[-1]['import_tensorflow_s']:.1f} s, built {runs[-1]['built_s']:.1f} s, "
            f"first step {runs[-1]['first_step_s']:.1f} s", file=sys.stderr, flush=True)
  medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
  write_json(FLAGS.output_json, {"runs": runs, "median": medians, "cpu": cpu_model(),
                                 "cpu_isa": cpu_isa(),
                                 "cores": os.cpu_count(),
                                 "target_first_step_le_10s": medians["first_step_s"] <= 10})


if __name__ == "__main__":
  define_flags()
  run_main(main)
