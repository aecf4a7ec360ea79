"""Do several step streams over shared tables run at once (Hogwild), compiled and not?

Each stream is a Python thread that calls one `tf.function` of `--steps_per_call` sparse SGD
steps (a negative-sampling step: gather [B, d] input rows and [B, 1 + K, d] output rows, the
logistic loss's gradient, scatter-subtract both) on its own random ids, over two tables all
streams share. Each setting runs in a fresh process (TensorFlow's thread pools are fixed at
start-up): `--streams` 1 or more, XLA on or off, `--intra_op_threads` per process. The figure is
pairs per second over all streams; if the streams overlap, 2 streams beat 1.

  python -m benchmarks.hogwild_probe --output_json out/hogwild_probe.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from absl import app, flags

from benchmarks import common

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_integer("vocab", 42_000, "Rows of each table (IMDB's vocabulary).")
  flags.DEFINE_integer("dim", 100, "Columns of each table.")
  flags.DEFINE_integer("batch", 4096, "Pairs per step.")
  flags.DEFINE_integer("negatives", 5, "Negatives per pair.")
  flags.DEFINE_integer("steps_per_call", 50, "Steps inside one call of the compiled loop.")
  flags.DEFINE_integer("calls", 20, "Timed calls per stream (after one warm-up call).")
  flags.DEFINE_list("settings", ["xla:1:1", "xla:2:1", "xla:1:2", "xla:2:2",
                                 "eager_graph:1:1", "eager_graph:2:1", "eager_graph:1:2",
                                 "eager_graph:2:2"],
                    "mode:streams:intra_op_threads, each in its own process "
                    "(mode xla = jit_compile, eager_graph = tf.function without XLA).")
  flags.DEFINE_string("output_json", None, "Write the results here.")
  flags.DEFINE_string("worker", None, "Internal: run one setting and print its JSON.")


def _run_setting(setting: str) -> dict:
  mode, streams, intra = setting.split(":")
  streams, intra = int(streams), int(intra)
  import tensorflow as tf  # after the thread pools are chosen
  tf.config.threading.set_intra_op_parallelism_threads(intra)
  tf.config.threading.set_inter_op_parallelism_threads(max(2, streams))
  vocab, dim, batch, k = FLAGS.vocab, FLAGS.dim, FLAGS.batch, FLAGS.negatives
  init = tf.random.stateless_uniform([vocab, dim], [1, 2], -0.5 / dim, 0.5 / dim)
  inputs = tf.Variable(init)
  outputs = tf.Variable(tf.zeros([vocab, dim]))

  def one_step(seed):
    centers = tf.random.stateless_uniform([batch], seed, 0, vocab, tf.int32)
    targets = tf.random.stateless_uniform([batch, 1 + k], seed + 1, 0, vocab, tf.int32)
    rows = tf.gather(inputs, centers)  # [B, d]
    columns = tf.gather(outputs, targets)  # [B, 1 + K, d]
    logits = tf.einsum("bd,bkd->bk", rows, columns)
    labels = tf.concat([tf.ones([batch, 1]), tf.zeros([batch, k])], axis=1)
    error = (tf.sigmoid(logits) - labels) * 0.025  # [B, 1 + K]
    inputs.scatter_sub(tf.IndexedSlices(tf.einsum("bk,bkd->bd", error, columns), centers))
    outputs.scatter_sub(tf.IndexedSlices(
        tf.reshape(error[:, :, None] * rows[:, None, :], [-1, dim]), tf.reshape(targets, [-1])))

  @tf.function(jit_compile=(mode == "xla"), autograph=False)
  def steps(seed):
    def body(i, s):
      one_step(s)
      return i + 1, s + 2
    tf.while_loop(lambda i, s: i < FLAGS.steps_per_call, body, [tf.constant(0), seed])
    return tf.constant(0)

  def stream(index, calls, out):
    for call in range(calls):
      steps(tf.constant([index, call * 1000], tf.int32)).numpy()
    out.append(index)

  stream(99, 1, [])  # compile
  finished, threads = [], []
  start = time.perf_counter()
  for index in range(streams):
    threads.append(threading.Thread(target=stream, args=(index, FLAGS.calls, finished)))
    threads[-1].start()
  for thread in threads:
    thread.join()
  seconds = time.perf_counter() - start
  pairs = streams * FLAGS.calls * FLAGS.steps_per_call * batch
  return {"setting": setting, "mode": mode, "streams": streams, "intra_op_threads": intra,
          "seconds": round(seconds, 6), "pairs_per_sec": round(pairs / seconds),
          "cpu_seconds": round(time.process_time(), 2)}


def main(argv):
  del argv
  if FLAGS.worker:
    print(json.dumps(_run_setting(FLAGS.worker)))
    return
  results = []
  for setting in FLAGS.settings:
    argv = [sys.executable, "-m", "benchmarks.hogwild_probe", f"--worker={setting}",
            *[f"--{name}={FLAGS[name].value}" for name in
              ("vocab", "dim", "batch", "negatives", "steps_per_call", "calls")]]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    line = subprocess.run(argv, check=True, capture_output=True, text=True, env=env,
                          cwd=common.REPO_ROOT).stdout.strip().splitlines()[-1]
    results.append(json.loads(line))
    row = results[-1]
    print(f"{row['setting']:>16}: {row['pairs_per_sec'] / 1e6:6.2f}M pairs/s, "
          f"{row['seconds']:.2f} s, CPU {row['cpu_seconds']:.1f} s", flush=True)
  if FLAGS.output_json:
    common.write_json(FLAGS.output_json, {"machine": common.machine(), "results": results})


if __name__ == "__main__":
  define_flags()
  app.run(main)
