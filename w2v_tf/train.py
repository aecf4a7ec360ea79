"""Train word2vec on a review CSV: `python -m w2v_tf.train` (Mikolov et al. 2013; sampled softmax, Jean et al. 2015).

  python -m w2v_tf.train --train_csv data/IMDB_Dataset.csv --model_dir checkpoints/imdb \
      --analogies data/questions-words.txt

Writes to --model_dir: config.json, vocab.tsv, checkpoints (resumed when you run the same command
again; --epochs may be raised), TensorBoard events (`tensorboard --logdir checkpoints/imdb`), and at
the end vectors.bin / vectors.txt (word2vec formats) and projector/ files.
"""

from __future__ import annotations

import os
import sys

from absl import flags

from w2v_tf import distributed
from w2v_tf.config import DataConfig
from w2v_tf.errors import UsageError, run_main
from w2v_tf.model import ModelConfig
from w2v_tf.trainer import LOSSES, MODELS, STRATEGIES, TrainConfig

_DATA, _TRAIN = DataConfig(), TrainConfig()
_MODEL = ModelConfig(vocab_size=0)

# Data.
flags.DEFINE_string("train_csv", _DATA.train_csv, "Training CSV or CSV.gz with a header row.")
flags.DEFINE_string("text_column", _DATA.text_column, "Column holding the review text.")
flags.DEFINE_integer("max_reviews", _DATA.max_reviews, "Use only the first N reviews (0 = all).")
flags.DEFINE_string("stopwords", _DATA.stopwords,
                    "'nltk' (NLTK English list), 'none', or a file with one word per line.")
flags.DEFINE_integer("min_count", _DATA.min_count, "Drop words seen fewer times.")
flags.DEFINE_integer("max_vocab", _DATA.max_vocab, "Keep at most this many words (0 = no limit).")
flags.DEFINE_float("subsample", _DATA.subsample,
                   "Subsampling threshold t of frequent words (0 = off); word2vec's default 1e-3.")
flags.DEFINE_integer("window", _DATA.window,
                     "Maximum window; each center draws its effective window from 1..window.")
flags.DEFINE_integer("batch_size", _DATA.batch_size,
                     "Center words per step (each with up to 2*window contexts).")
flags.DEFINE_float("heldout_reviews", _DATA.heldout_reviews,
                   "Reviews held out of training for the held-out full-softmax loss: a fraction "
                   "if < 1, else a count.")
flags.DEFINE_string("cache_dir", _DATA.cache_dir, "Tokenized-corpus cache ('' = none).")
flags.DEFINE_integer("seed", _DATA.seed, "Seed of every random draw (reproducible runs).")
flags.DEFINE_bool("strict_utf8", _DATA.strict_utf8,
                  "Refuse a CSV with bytes that are not UTF-8 (default: replace them with U+FFFD, "
                  "which forms no token, and warn once with the count).")
# Model.
flags.DEFINE_enum("model", _MODEL.model, MODELS, "skipgram or cbow.")
flags.DEFINE_enum("loss", _MODEL.loss, LOSSES,
                  "Training loss; the exact full softmax is always measured alongside.")
flags.DEFINE_integer("embedding_dim", _MODEL.embedding_dim, "Vector size d.")
flags.DEFINE_integer("num_sampled", None,
                     "Candidates shared by each group of --sample_group_centers centers for "
                     "sampled_softmax / nce (default 64); negatives per pair for "
                     "negative_sampling (default 5).")
flags.DEFINE_integer("sample_group_centers", _MODEL.sample_group_centers,
                     "Centers sharing one set of sampled candidates (sampled_softmax, nce); "
                     "--batch_size must be a multiple of it.")
# Training.
flags.DEFINE_string("model_dir", _TRAIN.model_dir, "Checkpoints, events, config and vectors.")
flags.DEFINE_integer("epochs", _TRAIN.epochs, "Passes over the corpus.")
flags.DEFINE_float("learning_rate", None,
                   "Initial learning rate, decayed linearly to 1e-4 of it (default: 0.025 "
                   "skip-gram / 0.05 CBOW with sgd, 0.1 adagrad, 0.001 adam).")
flags.DEFINE_enum("optimizer", _TRAIN.optimizer, ["sgd", "adagrad", "adam"],
                  "sgd (word2vec's), adagrad or adam (lazy); all update only the rows used.")
flags.DEFINE_string("analogies", None,
                    "Analogy file (questions-words.txt) evaluated at each epoch end.")
flags.DEFINE_integer("checkpoint_every_steps", _TRAIN.checkpoint_every_steps,
                     "Checkpoint interval (also at each epoch end and on Ctrl-C / SIGTERM).")
flags.DEFINE_integer("keep_checkpoints", _TRAIN.keep_checkpoints, "Checkpoints to keep.")
flags.DEFINE_integer("eval_every_steps", _TRAIN.eval_every_steps,
                     "Interval of the full-softmax comparison (batch and held-out) and log line.")
flags.DEFINE_integer("heldout_centers", _TRAIN.heldout_centers,
                     "Center words in the fixed held-out set (with their contexts).")
flags.DEFINE_bool("overwrite", False, "Replace a model_dir that holds another run.")
flags.DEFINE_bool("jit_compile", _TRAIN.jit_compile, "Compile the loss and gradient with XLA.")
flags.DEFINE_bool("progress", True, "Show the per-epoch progress bar.")
flags.DEFINE_integer("steps_per_call", _TRAIN.steps_per_call,
                     "Steps run in one tf.function call between Python's checks of signals and "
                     "progress (calls also end at each loss comparison and checkpoint).")
# Scaling out (README, "Scaling out").
flags.DEFINE_enum("strategy", _TRAIN.strategy, STRATEGIES,
                  "default: one device. mirrored: tf.distribute.MirroredStrategy over the local "
                  "GPUs (or --cpu_devices logical CPUs). multi_worker: "
                  "MultiWorkerMirroredStrategy, cluster from TF_CONFIG; only the chief writes. "
                  "parameter_server: tables sharded across the TF_CONFIG \"ps\" tasks; the "
                  "\"chief\" task trains, \"worker\" and \"ps\" tasks serve.")
flags.DEFINE_integer("cpu_devices", _TRAIN.cpu_devices,
                     "With --strategy=mirrored: split the CPU into this many logical devices "
                     "(for testing without GPUs; 0 = don't).")

FLAGS = flags.FLAGS


def configs_from_flags() -> tuple[DataConfig, ModelConfig, TrainConfig]:
  """Builds the three configs from the parsed flags (flags are never mutated)."""
  num_sampled = FLAGS.num_sampled
  if num_sampled is None:
    num_sampled = 5 if FLAGS.loss == "negative_sampling" else 64
  data = DataConfig(
      train_csv=FLAGS.train_csv, text_column=FLAGS.text_column, max_reviews=FLAGS.max_reviews,
      stopwords=FLAGS.stopwords, min_count=FLAGS.min_count, max_vocab=FLAGS.max_vocab,
      subsample=FLAGS.subsample, window=FLAGS.window, batch_size=FLAGS.batch_size,
      heldout_reviews=FLAGS.heldout_reviews, cache_dir=FLAGS.cache_dir, seed=FLAGS.seed,
      strict_utf8=FLAGS.strict_utf8)
  model = ModelConfig(vocab_size=0, embedding_dim=FLAGS.embedding_dim, model=FLAGS.model,
                      loss=FLAGS.loss, num_sampled=num_sampled,
                      sample_group_centers=FLAGS.sample_group_centers)
  train = TrainConfig(
      model_dir=FLAGS.model_dir, epochs=FLAGS.epochs, learning_rate=FLAGS.learning_rate,
      optimizer=FLAGS.optimizer, checkpoint_every_steps=FLAGS.checkpoint_every_steps,
      keep_checkpoints=FLAGS.keep_checkpoints, eval_every_steps=FLAGS.eval_every_steps,
      heldout_centers=FLAGS.heldout_centers, analogies=FLAGS.analogies,
      overwrite=FLAGS.overwrite, jit_compile=FLAGS.jit_compile, progress=FLAGS.progress,
      strategy=FLAGS.strategy, cpu_devices=FLAGS.cpu_devices,
      steps_per_call=FLAGS.steps_per_call)
  return data, model, train


def main(argv):
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")
  if distributed.serve_if_server_task(FLAGS.strategy):  # a parameter-server cluster's server
    return
  if FLAGS.analogies and not os.path.isfile(FLAGS.analogies):
    raise UsageError(f"--analogies={FLAGS.analogies}: no such file (fetch it with "
                     "`python -m w2v_tf.get_data`)")
  summary = distributed.make_trainer(*configs_from_flags()).run()
  if summary["interrupted"]:
    sys.exit(0)
  print(f"done: {summary['step']} steps, {summary['words_per_sec'] / 1e3:,.0f}k words/s; "
        f"vectors in {FLAGS.model_dir}", file=sys.stderr)


if __name__ == "__main__":
  run_main(main)
