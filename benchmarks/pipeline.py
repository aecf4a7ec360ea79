"""Input-pipeline throughput: iterate the training dataset alone (no model) and count pairs.

  python -m benchmarks.pipeline --train_csv ../shared/data/imdb/IMDB_Dataset.csv.gz --epochs 1 \
      --output_json out/pipeline.json

Reports the cold first pass (read + clean, cache bypassed) once, then the warm per-epoch
throughput over --repeats runs (median): skip-gram center-context pairs/s and corpus tokens/s.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time

from absl import flags
import tensorflow as tf

from benchmarks import common
from w2v_tf import config_flags
from w2v_tf import corpus as corpus_lib
from w2v_tf import pipeline, text, vocab as vocab_lib
from w2v_tf.errors import UsageError, run_main

# The trainer's own flags for the settings shared with it (same names, defaults and help).
_TRAINER_FIELDS = ("train_csv", "max_reviews", "window", "batch_size", "subsample",
                   "min_count", "stopwords")


def define_flags() -> None:
  config_flags.define_flags(flags.FLAGS, names=_TRAINER_FIELDS)
  flags.DEFINE_integer("epochs", 1, "Epochs per timed run.")
  flags.DEFINE_integer("repeats", 3, "Timed runs (the median is reported).")
  flags.DEFINE_bool("cold", True, "Also time one cold pass (read + clean without the cache).")
  flags.DEFINE_string("output_json", None, "Write the results here.")


FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  stopwords = text.load_stopwords(FLAGS.stopwords)
  result = {"train_csv": FLAGS.train_csv, "window": FLAGS.window, "batch_size": FLAGS.batch_size,
            "subsample": FLAGS.subsample, "epochs": FLAGS.epochs, "cores": os.cpu_count()}
  if FLAGS.cold:
    started = time.perf_counter()
    corpus = corpus_lib.tokenize_csv(FLAGS.train_csv, "review", FLAGS.max_reviews, stopwords)
    result["cold_pass_seconds"] = time.perf_counter() - started
  # Warm the cache, then time a cache hit; the epochs read the cache (it is on disk now).
  cache = tempfile.mkdtemp(prefix="w2v_pipeline-")
  atexit.register(shutil.rmtree, cache, True)
  corpus_lib.load_corpus(FLAGS.train_csv, "review", FLAGS.max_reviews, stopwords, cache)
  started = time.perf_counter()
  corpus = corpus_lib.load_corpus(FLAGS.train_csv, "review", FLAGS.max_reviews, stopwords, cache)
  result["cache_hit_seconds"] = time.perf_counter() - started
  vocab = vocab_lib.build_vocab(corpus.types, corpus.type_counts, FLAGS.min_count)
  tokens = pipeline.training_tokens(corpus, len(vocab))
  keep = vocab.keep_probabilities(FLAGS.subsample)
  runs = []
  for repeat in range(FLAGS.repeats):
    pairs = centers = 0
    started = time.perf_counter()
    for epoch in range(FLAGS.epochs):
      dataset = pipeline.epoch_dataset(tokens, keep, FLAGS.window, FLAGS.batch_size, 0,
                                       repeat * FLAGS.epochs + epoch)
      # Count inside the pipeline so the Python loop does not dominate.
      counts = dataset.map(lambda b: tf.stack([
          tf.reduce_sum(tf.cast(pipeline.real_centers(b), tf.int64)),
          tf.reduce_sum(tf.cast(b["mask"], tf.int64))])).reduce(
              tf.zeros([2], tf.int64), lambda total, x: total + x).numpy()
      centers += int(counts[0])
      pairs += int(counts[1])
    seconds = time.perf_counter() - started
    runs.append({"seconds": seconds, "pairs": pairs, "centers": centers,
                 "pairs_per_sec": pairs / seconds,
                 "tokens_per_sec": tokens.num_tokens * FLAGS.epochs / seconds})
    print(f"run {repeat + 1}: {pairs:,} pairs in {seconds:.2f}s = "
          f"{pairs / seconds / 1e6:.2f}M pairs/s", file=sys.stderr)
  result.update({
      "reviews": corpus.num_reviews, "corpus_tokens": corpus.num_tokens,
      "vocab_size": len(vocab), "train_tokens": tokens.num_tokens, "runs": runs,
      "pairs_per_sec": common.median([r["pairs_per_sec"] for r in runs]),
      "tokens_per_sec": common.median([r["tokens_per_sec"] for r in runs]),
      "peak_rss_mb": common.peak_rss_mb()})
  common.write_json(FLAGS.output_json, result)


if __name__ == "__main__":
  define_flags()
  run_main(main)
