"""The model dir: its files, its owner (the lock), whether a run may continue it, its vectors.

What a training run's `--model_dir` holds, and who writes it:

  .lock                    the owner while a run trains (`model_dir_lock`): pid, host, start time
  config.json              the resolved config, the vocabulary size, the data fingerprint
  vocab.tsv                the vocabulary, most frequent first, with counts (`Vocab.save_tsv`)
  checkpoint, ckpt-N.*     the checkpoints (`run_state.RunState`, `w2v_tf.checkpoints`)
  vectors.bin, vectors.txt, projector/   the exported vectors (`w2v_tf.export`)
  projector_config.pbtxt, projector_metadata.tsv   what TensorBoard's projector shows of the
                           checkpoints, labelled (`export.write_checkpoint_projector`)

A model dir belongs to one run at a time. `prepare_model_dir` takes the lock and checks, reading
only, that this run may continue what the dir holds: its config.json must agree on everything
that changes shapes or data, including the data's fingerprint (the corpus cache key: the CSV's
content and the cleaning options), and its checkpoints on the shapes and on the epochs done. It
returns a `ModelDir`, which holds the lock until `release`; the builder restores the checkpoint,
and only then does `ModelDir.write` write anything.

Readers: `load_exported_vectors` (vectors.bin or .txt with vocab.tsv: the eval binaries) and
`load_checkpoint_vectors` (the newest readable checkpoint: `python -m w2v_tf.export`). This
module imports no TensorFlow (the eval binaries import it); the checkpoint reader does, when called.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Callable

import numpy as np

from w2v_tf import checkpoints, sources, vector_files
from w2v_tf.config import DataConfig, ExperimentConfig, flat_fields
from w2v_tf.errors import UserError
from w2v_tf.fileio import atomic_write_text, disk_errors
from w2v_tf.model_dir_lock import ModelDirLock
from w2v_tf.vocab import Vocab
from w2v_tf.word_vectors import WordVectors, finite_rows

CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.tsv"
BINARY_FILE = "vectors.bin"  # the exported vectors (w2v_tf.export)
TEXT_FILE = "vectors.txt"
PROJECTOR_DIR = "projector"
# `tensorboard --logdir model_dir` reads these beside the checkpoints (`w2v_tf.export`).
CHECKPOINT_PROJECTOR_CONFIG = "projector_config.pbtxt"
CHECKPOINT_PROJECTOR_METADATA = "projector_metadata.tsv"
FINGERPRINT_KEY = "data_fingerprint"  # in config.json: `PreparedData.fingerprint`
# Config keys that change shapes or data: a model_dir trained with other values is refused.
# The data's: each input format's own fields (`sources.config_fields`) and these, in the order
# of the config.
_DATA_KEYS = ("max_documents", "cleaning", "lowercase", "max_document_tokens", "phrases",
              "phrase_min_count", "phrase_threshold", "phrase_scoring", "stopwords", "min_count",
              "max_vocab", "subsample", "window", "batch_size", "heldout_documents", "seed")
_INCOMPATIBLE_KEYS = {
    "data": tuple(field.name for field in dataclasses.fields(DataConfig)
                  if field.name in _DATA_KEYS or field.name in sources.config_fields()),
    "model": ("embedding_dim", "model"),
    "train": ("optimizer",),
}
_EMBEDDINGS_KEY = "model/input_embeddings/.ATTRIBUTES/VARIABLE_VALUE"
_COUNTER_KEYS = tuple(f"{name}/.ATTRIBUTES/VARIABLE_VALUE" for name in ("epoch", "step"))


def config_payload(experiment: ExperimentConfig, vocab_size: int,
                   fingerprint: str | None = None) -> dict:
  """What config.json holds: the resolved config, the vocabulary size, the data fingerprint."""
  payload = {**experiment.to_dict(), "vocab_size": vocab_size}
  if fingerprint is not None:
    payload[FINGERPRINT_KEY] = fingerprint
  return payload


def read_config(model_dir: str) -> tuple[ExperimentConfig, int]:
  """(experiment config, vocabulary size) from `model_dir/config.json`; UserError if unusable."""
  path = os.path.join(model_dir, CONFIG_FILE)
  try:
    with open(path, encoding="utf-8") as f:
      payload = json.load(f)
    # Earlier versions kept the vocabulary size under "model".
    vocab_size = payload.get("vocab_size", payload.get("model", {}).get("vocab_size"))
    return ExperimentConfig.from_dict(payload, ignore=("vocab_size",)), int(vocab_size)
  except FileNotFoundError as e:
    raise UserError(f"{model_dir} has no {CONFIG_FILE}: not a model dir written by "
                    "`python -m w2v_tf.train`") from e
  except (OSError, ValueError, KeyError, TypeError, AttributeError, UserError) as e:
    raise UserError(f"{path} is unreadable ({type(e).__name__}: {e}); re-run training to "
                    "rewrite it") from e


class ModelDir:
  """A model dir this process holds (its lock), from `prepare_model_dir` until `release`.

  Attributes:
    path: the directory (`--model_dir`).
    resume_warning: what to say once the run has resumed (None: nothing).
  """

  def __init__(self, experiment: ExperimentConfig, fingerprint: str | None, lock: ModelDirLock,
               log: Callable[[str], None], resume_warning: str | None = None):
    self.path = experiment.train.model_dir
    # Said after "resumed from ...", so that a run refused later (its restore) stays one line.
    self.resume_warning = resume_warning
    self._experiment, self._fingerprint = experiment, fingerprint
    self._lock, self._log = lock, log

  def write(self, vocab: Vocab) -> None:
    """Once the run is known to fit the dir: repairs what a crash left, writes config + vocab.

    An unreadable checkpoint state file is rebuilt and partial checkpoint writes are removed, so
    that resuming (and rotation) sees every good checkpoint.
    """
    model_dir, fingerprint, log = self.path, self._fingerprint, self._log
    config_path = os.path.join(model_dir, CONFIG_FILE)
    checkpoints.repair_state(model_dir, log)  # an unreadable state file would lose the run
    checkpoints.remove_partial_writes(model_dir, log)  # safe: the lock is ours
    if fingerprint is None and os.path.exists(config_path):
      try:  # a fingerprint this run cannot compute (not a regular file): keep the recorded one
        with open(config_path, encoding="utf-8") as f:
          fingerprint = json.load(f).get(FINGERPRINT_KEY)
      except (OSError, ValueError, AttributeError):
        pass
    payload = config_payload(self._experiment, len(vocab), fingerprint)
    with disk_errors(config_path):
      atomic_write_text(config_path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    vocab.save_tsv(os.path.join(model_dir, VOCAB_FILE))

  def release(self) -> None:
    """Releases the lock (the run is over, or failed; idempotent)."""
    self._lock.release()


def prepare_model_dir(experiment: ExperimentConfig, vocab_size: int, fingerprint: str | None,
                      log: Callable[[str], None]) -> ModelDir:
  """Takes the model dir's lock and checks that this run may continue what it holds.

  Reads only (an existing dir gets nothing but the lock file, removed again on refusal):
  config.json must agree on the shapes and the data (`fingerprint`, the corpus cache key;
  None: not known, not checked), the checkpoints on the shapes and the epochs done. With
  `overwrite` this project's files are cleared instead (once the lock is ours).

  Returns:
    The model dir, its lock held; the caller releases it (`ModelDir.release`).
  """
  train = experiment.train
  model_dir = train.model_dir
  if os.path.exists(model_dir) and not os.path.isdir(model_dir):
    raise UserError(f"--model_dir={model_dir} is a file, not a directory: choose another "
                    "--model_dir")
  with disk_errors(model_dir):
    os.makedirs(model_dir, exist_ok=True)
  lock = ModelDirLock(model_dir, log, train.overwrite)
  resume_warning = None
  try:
    if train.overwrite:
      clear_model_dir(model_dir)
    else:
      resume_warning = _check_model_dir(experiment, vocab_size, fingerprint, log)
  except BaseException:
    lock.release()
    raise
  return ModelDir(experiment, fingerprint, lock, log, resume_warning)


def _check_model_dir(experiment: ExperimentConfig, vocab_size: int, fingerprint: str | None,
                     log: Callable[[str], None]) -> str | None:
  """Refuses a model dir whose config or checkpoints this run cannot continue (reads only).

  Returns:
    The warning to give once the run has resumed (None: nothing to say).
  """
  model_dir = experiment.train.model_dir
  config_path = os.path.join(model_dir, CONFIG_FILE)
  if not checkpoints.has_checkpoint(model_dir):
    return None  # nothing trained yet: config.json and vocab.tsv are rewritten
  has_config = os.path.exists(config_path)
  if has_config:
    try:
      with open(config_path, encoding="utf-8") as f:
        previous = json.load(f)
      differences = _differences(previous, config_payload(experiment, vocab_size))
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as e:
      raise UserError(f"{config_path} is unreadable ({type(e).__name__}: {e}): put back a good "
                      "copy, or move it away to resume from the checkpoints alone (their "
                      "shapes are checked), or choose another --model_dir") from e
    recorded = previous.get(FINGERPRINT_KEY)
    if recorded is None:  # written before fingerprints: accepted, and recorded from now on
      log(f"warning: {config_path} records no data fingerprint (an earlier version wrote it): "
          "cannot check that the data is what it was trained on; recording this run's")
    elif fingerprint is not None and recorded != fingerprint:
      also = f"; also {'; '.join(differences)}" if differences else ""
      raise UserError(
          f"the training data changed since {model_dir} was trained (data fingerprint "
          f"{recorded} -> {fingerprint}: the content of "
          f"{experiment.data.train_text or experiment.data.train_csv}, the options that "
          f"clean it or the chunk size of this version differ{also}): resume with the data "
          "and the version it was trained with, or choose another --model_dir")
    if differences:
      raise UserError(f"{model_dir} holds a run with another configuration "
                      f"({'; '.join(differences)}): pass --overwrite to replace it or "
                      "choose another --model_dir")
  _check_checkpoints(experiment, vocab_size, has_config)
  if not has_config:
    return (f"warning: {model_dir} has checkpoints but no {CONFIG_FILE}: resumed from the "
            "checkpoints alone (their shapes were checked, not the other flags or the data)")
  return None


def _check_checkpoints(experiment: ExperimentConfig, vocab_size: int, has_config: bool) -> None:
  """Refuses checkpoints of other shapes, or with more epochs done than --epochs asks for.

  Looks at the newest checkpoint whose files read (the one a restore would take); damaged ones
  are left to the restore, which falls back or says so.
  """
  model_dir = experiment.train.model_dir
  for path in checkpoints.candidates(model_dir)[0]:
    try:
      shapes, counters = checkpoints.peek(path, _COUNTER_KEYS)
      break
    except Exception:  # pylint: disable=broad-except  # damaged: the restore reports it
      continue
  else:
    return
  saved, dim = shapes.get(_EMBEDDINGS_KEY), experiment.model.embedding_dim
  if saved is not None and list(saved) != [vocab_size, dim]:
    held = []
    if saved[1] != dim:
      held.append(f"embedding_dim {saved[1]}, this run asks for {dim}")
    if saved[0] != vocab_size:
      held.append(f"a vocabulary of {saved[0]:,} words, this run's has {vocab_size:,} (other "
                  "data, --min_count or --max_vocab)")
    missing = "" if has_config else f" ({model_dir} has no {CONFIG_FILE} to compare the flags)"
    raise UserError(f"the checkpoints in {model_dir} hold {'; and '.join(held)}{missing}: run "
                    "with the flags they were trained with, or choose another --model_dir")
  # Epochs done = completed epochs: --epochs equal to them ends at once (a part-way epoch
  # beyond them is left as it is); fewer would resume "epoch 3 of 1".
  epoch, step = (int(counters[key]) for key in _COUNTER_KEYS)
  epochs = experiment.train.epochs
  if epochs < epoch:
    raise UserError(f"{model_dir} has trained {epoch} epochs (step {step}), more than "
                    f"--epochs={epochs}: pass --epochs={epoch} or more to resume it (--epochs "
                    "can only be raised), or choose another --model_dir")


def _differences(previous: dict, current: dict) -> list[str]:
  """"section.key: old -> new" for every incompatible key that differs."""
  # A key that an earlier version did not write had its default then (new options default to
  # the old behaviour).
  flat_previous = {**flat_fields(ExperimentConfig().to_dict()), **flat_fields(previous)}
  flat_previous["vocab_size"] = previous.get("vocab_size", flat_previous.get("vocab_size"))
  pairs = [(f"{section}.{key}", flat_previous.get(key), current[section][key])
           for section, keys in _INCOMPATIBLE_KEYS.items() for key in keys]
  pairs.append(("vocab_size", flat_previous["vocab_size"], current["vocab_size"]))
  return [f"{name}: {old!r} -> {new!r}" for name, old, new in pairs if old != new]


def clear_model_dir(model_dir: str) -> None:
  """Removes what a previous run wrote (only this project's files)."""
  for name in os.listdir(model_dir):
    path = os.path.join(model_dir, name)
    if (name.startswith(("ckpt-", "events.out.tfevents.", "vectors.")) or name in (
        checkpoints.STATE_FILE, CONFIG_FILE, VOCAB_FILE, CHECKPOINT_PROJECTOR_CONFIG,
        CHECKPOINT_PROJECTOR_METADATA)):
      if os.path.isdir(path):  # ckpt-N_temp/ left by a save that was killed
        shutil.rmtree(path)
      else:
        os.remove(path)
    elif name == PROJECTOR_DIR and os.path.isdir(path):
      shutil.rmtree(path)


# --- reading a model dir's vectors ---------------------------------------------------------------


def load_exported_vectors(model_dir: str | os.PathLike, drop_nonfinite: bool = False
                          ) -> WordVectors:
  """The vectors a trainer exported into its model dir (`WordVectors.from_model_dir`).

  Reads `vectors.bin` when present, else `vectors.txt`; when `vocab.tsv` is there too, checks
  that it lists the same words in the same order and takes the counts from it.

  Args:
    model_dir: the trainer's `--model_dir`.
    drop_nonfinite: leave out rows holding NaN or infinity (one warning) instead of refusing.

  Raises:
    UserError: no exported vectors in the directory, vectors and vocab.tsv disagree, or a row
      is not finite (unless `drop_nonfinite`).
  """
  model_dir = os.fspath(model_dir)
  if not os.path.isdir(model_dir):
    raise UserError(f"model_dir {model_dir} not found: pass the trainer's --model_dir, or "
                    "--vectors with a vectors file")
  binary = os.path.join(model_dir, BINARY_FILE)
  text = os.path.join(model_dir, TEXT_FILE)
  if os.path.exists(binary):
    path = binary
  elif os.path.exists(text):
    path = text
  else:
    raise UserError(f"{model_dir} has no {BINARY_FILE} or {TEXT_FILE}: train to "
                    "the end (vectors are exported then) or pass --vectors with a vectors file")
  words, vectors = vector_files.read_vectors(path)
  vocab_path = os.path.join(model_dir, VOCAB_FILE)
  if not os.path.exists(vocab_path):
    return WordVectors(*finite_rows(path, words, vectors, None, drop_nonfinite)[:2])
  vocab = Vocab.load_tsv(vocab_path)
  if list(vocab.words) != words:
    mismatch = next((i for i, (a, b) in enumerate(zip(vocab.words, words)) if a != b),
                    min(len(vocab), len(words)))
    raise UserError(f"{vocab_path} and {path} disagree at row {mismatch + 1} "
                    f"({len(vocab)} vs {len(words)} words): the model_dir mixes two exports; "
                    "re-export the model")
  return WordVectors(*finite_rows(path, words, vectors, vocab.counts, drop_nonfinite))


def load_checkpoint_vectors(model_dir: str, log: Callable[[str], None] | None = None
                            ) -> tuple[list[str], np.ndarray, np.ndarray, str]:
  """The input embeddings of a model dir's newest readable checkpoint, with its vocabulary.

  Rebuilds the `Word2Vec` variables with the shapes in `model_dir/config.json` and restores only
  the model from the checkpoint (falling back to older checkpoints when the newest is damaged,
  with a warning line).

  Args:
    model_dir: a directory written by `python -m w2v_tf.train`.
    log: prints one line (warnings); default stderr.

  Returns:
    (words, counts, vectors [V, d], checkpoint path).

  Raises:
    UserError: not a model dir, vocabulary and config disagree, or no readable checkpoint.
  """
  import sys  # pylint: disable=import-outside-toplevel

  import tensorflow as tf  # pylint: disable=import-outside-toplevel  # heavy; only needed here

  from w2v_tf.model import Word2Vec  # pylint: disable=import-outside-toplevel

  log = log or (lambda message: print(message, file=sys.stderr, flush=True))
  if not os.path.isdir(model_dir):
    raise UserError(f"--model_dir={model_dir}: no such directory: give the --model_dir of a "
                    "training run")
  experiment, vocab_size = read_config(model_dir)
  vocab = Vocab.load_tsv(os.path.join(model_dir, VOCAB_FILE))
  words, counts = list(vocab.words), vocab.counts
  if len(words) != vocab_size:
    raise UserError(f"{model_dir}: {VOCAB_FILE} has {len(words)} words but {CONFIG_FILE} says "
                    f"vocab_size {vocab_size}: the files come from different runs")
  model = Word2Vec(vocab_size, experiment.model)
  failures = []
  # A live run deletes its oldest checkpoint as it saves a new one; the shared lock keeps the
  # one read here (chosen from the state file read under it) on disk until it is read.
  with checkpoints.rotation_lock(model_dir, False, log):
    paths, warning = checkpoints.candidates(model_dir)
    if warning:
      log(f"warning: {warning}")
    if not paths:
      raise UserError(f"no checkpoint in {model_dir}: train first (`python -m w2v_tf.train "
                      f"--model_dir {model_dir}`)")
    restored = checkpoints.restore_newest_readable(
        checkpoints.make_restore(tf.train.Checkpoint(model=model), partial=True), paths, log,
        failures)
  if restored is None:
    mismatched = [failure for failure in failures if not failure.damaged]
    if mismatched:  # the files read: they are not damaged, and --overwrite would delete them
      raise UserError(f"the checkpoints in {model_dir} do not fit its {CONFIG_FILE} "
                      f"(newest: {mismatched[0]}): the files come from different runs")
    raise UserError(f"no readable checkpoint in {model_dir} ({len(paths)} tried, all damaged; "
                    f"newest: {failures[0]}): train again with --overwrite")
  return words, counts, model.input_embeddings.numpy(), restored
