"""Train word2vec on a review CSV or a plain-text corpus: `python -m w2v_tf.train` (Mikolov et al. 2013; sampled softmax, Jean et al. 2015).

  python -m w2v_tf.train --train_csv data/IMDB_Dataset.csv --model_dir checkpoints/imdb \
      --analogies data/questions-words.txt

Writes to --model_dir: config.json, vocab.tsv, checkpoints (resumed when you run the same command
again; --epochs may be raised), TensorBoard events (`tensorboard --logdir checkpoints/imdb`), and at
the end vectors.bin / vectors.txt (word2vec formats) and projector/ files.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from w2v_tf import cluster, config_flags, data_home, monitor, strategies
from w2v_tf.build import build_trainer
from w2v_tf.errors import UsageError, run_main

# What `python -m w2v_tf.get_data` fetches; scored at each epoch end unless --analogies says.
ANALOGIES_NAME = "questions-words.txt"


def analogy_callback(path: str, log) -> monitor.AnalogyEvaluation:
  """Scores each epoch's vectors on the analogy file `path` (eval.analogy's 3CosAdd)."""
  # The wheel installs the repository's eval/ as w2v_tf.eval (one namespace); a checkout runs
  # the top-level eval/.
  package = "w2v_tf.eval" if importlib.util.find_spec("w2v_tf.eval") else "eval"
  evaluate_analogies = importlib.import_module(f"{package}.analogy").evaluate_analogies
  return monitor.AnalogyEvaluation(
      lambda vectors: evaluate_analogies(vectors.vectors, list(vectors.words), path), log)


def main(argv):
  from absl import flags  # pylint: disable=import-outside-toplevel
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")
  experiment = config_flags.from_flags(flags.FLAGS)
  if cluster.serve_if_server_task(experiment.runtime.strategy):  # a parameter-server server
    return
  analogies = experiment.train.analogies
  default_analogies = data_home.path(ANALOGIES_NAME)
  # Said once the run is built (its input and model dir checked), so a refused run stays one
  # line; then it is the first line of the run.
  note = None
  if analogies is None and os.path.isfile(default_analogies):
    analogies = default_analogies
    note = f"analogies: {analogies} at each epoch end (--analogies=none to skip)"
  elif analogies is None:
    note = (f"analogies: none scored (no {default_analogies}: `python -m w2v_tf.get_data "
            "--skip_imdb` fetches it, --analogies=PATH names another)")
  elif analogies in ("none", ""):
    analogies = None
  experiment = experiment.replace(analogies=analogies)
  if analogies and not os.path.isfile(analogies):
    raise UsageError(f"--analogies={analogies}: no such file (fetch it with "
                     "`python -m w2v_tf.get_data`)")
  log = lambda message: print(message, file=sys.stderr, flush=True)  # pylint: disable=unnecessary-lambda-assignment
  experiment.validate()  # before a strategy starts TensorFlow's runtime
  runner = strategies.make_runner(experiment.runtime, log)
  # Only the chief evaluates and writes.
  extra = [analogy_callback(analogies, log)] if analogies and runner.is_chief else []
  trainer = build_trainer(experiment, extra, log, runner)
  if note and runner.is_chief:
    log(note)
  summary = trainer.run()
  if summary.interrupted:
    sys.exit(0)
  print(f"done: {summary.step} steps, {summary.words_per_sec / 1e3:,.0f}k words/s; "
        f"vectors in {experiment.train.model_dir}", file=sys.stderr)


def run() -> None:
  """The `w2v-train` command (and `python -m w2v_tf.train`)."""
  from absl import flags as absl_flags  # pylint: disable=import-outside-toplevel
  config_flags.define_flags()
  absl_flags.adopt_module_key_flags(config_flags)  # --helpshort lists them as this binary's
  run_main(main)


if __name__ == "__main__":
  run()
