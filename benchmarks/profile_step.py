"""Where a training step's time goes, with tf.profiler: the step alone, with the live pipeline, per XLA op.

  python -m benchmarks.profile_step --train_csv ../shared/data/imdb/IMDB_Dataset.csv.gz \
      --output_json out/profile.json --trace_dir out/profile

With the trainer's defaults (sampled softmax, 4,096 centers per step) it measures, in one
process, `--repeats` times each (medians):

- the compiled step alone: the runner's `run_steps` over `--steps` batches cached in memory
  (no input pipeline running);
- the step with the live input pipeline (what training does): the same over a fresh epoch;
- the input pipeline alone: its wall time and process CPU time per batch, negatives included;

then records a tf.profiler trace of `--trace_steps` live steps into `--trace_dir` (open it
with TensorBoard's profile plugin) and summarises it: milliseconds per step of every XLA
operation of the compiled step (summed over threads), how many of the two cores the step
keeps busy (summed op time / time with any op running), and the busiest ops of the tf.data
threads. See benchmarks/README.md for what the numbers showed.
"""

from __future__ import annotations

import collections
import glob
import os
import resource
import sys
import tempfile
import time

from absl import flags
import tensorflow as tf

from benchmarks import common
from w2v_tf import config_flags
from w2v_tf.build import build_trainer
from w2v_tf.errors import UsageError, UserError, run_main
from w2v_tf.trainer import Trainer

# The trainer's own flags for what this benchmark varies (same defaults and help).
_TRAINER_FIELDS = ("train_csv", "max_reviews", "stopwords", "cache_dir", "batch_size", "model", "loss",
                   "num_sampled", "negatives_per")


def define_flags() -> None:
  config_flags.define_flags(flags.FLAGS, names=_TRAINER_FIELDS)
  flags.DEFINE_integer("steps", 300, "Steps per timed run.")
  flags.DEFINE_integer("repeats", 3, "Timed runs of each kind (medians are reported).")
  flags.DEFINE_integer("trace_steps", 40, "Live steps recorded by tf.profiler.")
  flags.DEFINE_string("trace_dir", None, "Keep the trace here (default: a temporary folder).")
  flags.DEFINE_integer("top", 15, "Operations listed per summary.")
  flags.DEFINE_string("output_json", None, "Write the results here.")


FLAGS = flags.FLAGS

# Events of the XLA runtime and of TF's executor that wrap the operations (not operations).
_WRAPPERS = ("ExecutorState", "CpuExecutable", "BlockUntilReady", "ThunkExecutor", "Executor",
             "SlinkyThreadPool", "ThreadpoolListener")


def _cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def _ms_per_step(trainer: Trainer, dataset: tf.data.Dataset, steps: int) -> float:
  iterator = iter(dataset)
  started = time.perf_counter()
  taken = trainer.runner.run_steps(iterator, steps)
  if taken == 0:
    raise UserError("the corpus gave no batches: use more reviews")
  return (time.perf_counter() - started) / taken * 1e3


def summarize_trace(xplane_path: str, steps: int, top: int = 15) -> dict:
  """Per-operation time of a tf.profiler trace (an .xplane.pb file) of `steps` training steps.

  Returns {"xla_ops": [(name, ms per step)], "xla_ms_per_step", "xla_cores_busy",
  "tfdata_ops": [(name, ms per step)], "tfdata_ms_per_step"}: XLA operations are the events
  on the XLA CPU runtime's threads (tf_Compute*, *Eigen*), tf.data ones the "name:OpType"
  events on the tf.data threads.
  """
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=import-outside-toplevel
  space = xplane_pb2.XSpace()
  with open(xplane_path, "rb") as f:
    space.ParseFromString(f.read())
  xla, tfdata = collections.Counter(), collections.Counter()
  intervals = []
  for plane in space.planes:
    names = {key: value.name for key, value in plane.event_metadata.items()}
    for line in plane.lines:
      on_xla = "tf_Compute" in line.name or "Eigen" in line.name
      on_tfdata = "tf_data" in line.name
      for event in line.events:
        name = names.get(event.metadata_id, "?")
        if on_xla and not name.startswith(_WRAPPERS):
          xla[name] += event.duration_ps
          start = line.timestamp_ns * 1000 + event.offset_ps
          intervals.append((start, start + event.duration_ps))
        elif on_tfdata and ":" in name and not name.startswith(("Iterator", "ExecutorState")):
          tfdata[name] += event.duration_ps
  busy = 0  # picoseconds with at least one XLA op running: the union of the intervals
  first = end = None
  for start, stop in sorted(intervals):
    if end is not None and start <= end:
      end = max(end, stop)
      continue
    if end is not None:
      busy += end - first
    first, end = start, stop
  if end is not None:
    busy += end - first
  per_step = lambda ps: ps / 1e9 / steps  # ps -> ms per step
  return {"xla_ops": [(name, per_step(ps)) for name, ps in xla.most_common(top)],
          "xla_ms_per_step": per_step(sum(xla.values())),
          "xla_cores_busy": sum(xla.values()) / busy if busy else 0.0,
          "tfdata_ops": [(name, per_step(ps)) for name, ps in tfdata.most_common(top)],
          "tfdata_ms_per_step": per_step(sum(tfdata.values()))}


def _table(rows) -> str:
  return "\n".join(f"  {ms:7.3f} ms  {name[:90]}" for name, ms in rows)


def main(argv):
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  for name in ("steps", "repeats", "trace_steps"):
    if getattr(FLAGS, name) <= 0:
      raise UsageError(f"--{name} must be positive (got {getattr(FLAGS, name)})")
  log = lambda message: print(message, file=sys.stderr, flush=True)
  with tempfile.TemporaryDirectory() as scratch:
    experiment = config_flags.from_flags(FLAGS, names=_TRAINER_FIELDS).replace(
        model_dir=os.path.join(scratch, "model"), progress=False)
    trainer = build_trainer(experiment, log=log)
    cached = trainer.epoch_batches(0).take(FLAGS.steps).cache()
    for _ in cached:  # fill the cache
      pass
    trainer.runner.run_steps(iter(cached), 1)  # trace and compile
    alone, live, pipeline_wall, pipeline_cpu = [], [], [], []
    for repeat in range(FLAGS.repeats):
      alone.append(_ms_per_step(trainer, cached, FLAGS.steps))
      live.append(_ms_per_step(trainer, trainer.epoch_batches(1 + repeat).take(FLAGS.steps),
                               FLAGS.steps))
      batches, wall, cpu = 0, time.perf_counter(), _cpu_seconds()
      for _ in trainer.epoch_batches(100 + repeat).take(FLAGS.steps):
        batches += 1
      pipeline_wall.append((time.perf_counter() - wall) / batches * 1e3)
      pipeline_cpu.append((_cpu_seconds() - cpu) / batches * 1e3)
      log(f"run {repeat + 1}: step alone {alone[-1]:.2f} ms, with the live pipeline "
          f"{live[-1]:.2f} ms; pipeline alone {pipeline_wall[-1]:.2f} ms wall, "
          f"{pipeline_cpu[-1]:.2f} ms CPU per batch")
    trace_dir = FLAGS.trace_dir or os.path.join(scratch, "trace")
    iterator = iter(trainer.epoch_batches(200))
    trainer.runner.run_steps(iterator, 5)  # the pipeline up to speed before recording
    tf.profiler.experimental.start(trace_dir)
    traced = trainer.runner.run_steps(iterator, FLAGS.trace_steps)
    tf.profiler.experimental.stop()
    traces = sorted(glob.glob(os.path.join(trace_dir, "plugins", "profile", "*",
                                           "*.xplane.pb")))
    if not traces:
      raise UserError(f"tf.profiler wrote no trace under {trace_dir}")
    profile = summarize_trace(traces[-1], traced, FLAGS.top)
  result = {
      "train_csv": FLAGS.train_csv, "batch_size": FLAGS.batch_size, "steps": FLAGS.steps,
      "repeats": FLAGS.repeats, "cores": os.cpu_count(),
      "step_alone_ms": common.median(alone), "step_live_ms": common.median(live),
      "pipeline_wall_ms_per_batch": common.median(pipeline_wall),
      "pipeline_cpu_ms_per_batch": common.median(pipeline_cpu),
      "runs": {"step_alone_ms": alone, "step_live_ms": live,
               "pipeline_wall_ms_per_batch": pipeline_wall,
               "pipeline_cpu_ms_per_batch": pipeline_cpu},
      "trace_dir": trace_dir if FLAGS.trace_dir else None, "traced_steps": traced, **profile}
  log(f"XLA step: {profile['xla_ms_per_step']:.2f} ms of operations per step on "
      f"{profile['xla_cores_busy']:.2f} cores on average; busiest operations:\n"
      + _table(profile["xla_ops"]))
  log(f"tf.data: {profile['tfdata_ms_per_step']:.2f} ms of operations per batch; busiest:\n"
      + _table(profile["tfdata_ops"]))
  common.write_json(FLAGS.output_json, result)


if __name__ == "__main__":
  define_flags()
  run_main(main)
