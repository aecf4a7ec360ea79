"""The training loop: epochs of steps, the exact loss alongside, checkpoints, and word2vec's schedule.

The learning rate decays linearly with the corpus words processed, from `learning_rate` down to
1e-4 of it at the end of the last epoch (word2vec's schedule). Every `eval_every_steps` steps
(and at the first step) the exact full-softmax cross-entropy is measured on the current training
batch and on a fixed held-out set, next to the running training loss. Checkpoints go to
`model_dir` every `checkpoint_every_steps`, at each epoch end and on SIGINT / SIGTERM; a run
started again on the same `model_dir` resumes exactly where the last checkpoint was taken.

The loop is given its parts (`w2v_tf.build.build_trainer` assembles them from an `ExperimentConfig`):

  PreparedData (training_data) -> Runner (strategies) runs TrainStep (step) on RunState
  (run_state) -> callbacks (monitor: progress, console, TensorBoard, analogies) -> export;
  the ModelDir (model_dir) is held from the build to the end of `run`.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from typing import Callable, Sequence

import tensorflow as tf

from w2v_tf import allocator, export, losses, monitor, run_state, strategies, training_data
from w2v_tf.config import ExperimentConfig
from w2v_tf.errors import UserError
from w2v_tf.model_dir import ModelDir
from w2v_tf.step import TrainStep
from w2v_tf.word_vectors import WordVectors

MIN_LEARNING_RATE_FRACTION = 1e-4
FULL_SOFTMAX_BATCH_CENTERS = 1024  # centers of the training batch the exact loss is taken on
GRADIENT_COSINE_CENTERS = 256  # held-out centers of the gradient cosine: 0.15 s (512: 0.55 s)


@dataclasses.dataclass
class TrainSummary:
  """What a run did.

  `curve`: one dict per exact comparison (step, seconds, train, full_softmax_batch,
  full_softmax_heldout, grad_cosine); `train_curve`: every training-loss point (step, train);
  `epochs`: each epoch end's logs ("seconds" of training, as the curve's).
  """
  step: int = 0
  epoch: int = 0
  interrupted: bool = False
  train_seconds: float = 0.0
  words_per_sec: float = 0.0
  eval_seconds: float = 0.0
  curve: list = dataclasses.field(default_factory=list)
  train_curve: list = dataclasses.field(default_factory=list)
  epochs: list = dataclasses.field(default_factory=list)
  exported: dict = dataclasses.field(default_factory=dict)

  @property
  def analogy(self) -> list[dict]:
    """[{"epoch", "total", "semantic", "syntactic"}] of the epochs scored on analogies."""
    return [{"epoch": e["epoch"], **e["analogy"]} for e in self.epochs if "analogy" in e]


class Trainer:
  """Trains one model in `experiment.train.model_dir`; `run()` returns a `TrainSummary`.

  `model_dir` is held (locked) by this trainer: `run` releases it when it ends.
  """

  def __init__(self, experiment: ExperimentConfig, data: training_data.PreparedData,
               runner: strategies.Runner, model_dir: ModelDir, state: run_state.RunState,
               step: TrainStep, callbacks: Sequence[monitor.Callback], log: Callable[[str], None]):
    self.experiment, self.data, self.runner, self.model_dir = experiment, data, runner, model_dir
    self.state, self.step, self.log = state, step, log
    self.callbacks = monitor.CallbackList(callbacks)
    self._total_words = float(max(experiment.train.epochs * data.tokens.num_tokens, 1))
    runner.attach(step, state, self.learning_rate)
    self._mid_first_epoch = max(2, data.estimated_steps_per_epoch // 2)
    self._last_batch = None  # the latest batch held in Python (its comparisons reuse it)
    self._last_point = (-1, False)  # (step, exact) of the latest loss point
    self._last_train_loss, self._learning_rate = float("nan"), (0, 0.0)
    # words/s over the latest window of steps; NaN until one step after the run's first (which
    # compiles: the first point of a run was ~694 words/s against 190k after it).
    self._words_per_sec = float("nan")
    self._rate_windows = 0  # windows measured so far (0: the rate is provisional)
    self._warm = False  # the run's first call (which compiles) is done

  def learning_rate(self) -> tf.Tensor:
    """The rate for the next step (float32), from the words processed so far (linear decay)."""
    remaining = tf.maximum(tf.constant(MIN_LEARNING_RATE_FRACTION, tf.float64),
                           1.0 - self.state.words_done / self._total_words)
    return tf.cast(self.experiment.train.learning_rate * remaining, tf.float32)

  def epoch_batches(self, epoch: int, skip: int = 0) -> tf.data.Dataset:
    """The batches this process trains on in `epoch`, from batch `skip` on."""
    return self.runner.batches(training_data.epoch_batches(
        self.data, self.experiment.data, epoch, skip, self.step.negatives))

  def run(self) -> TrainSummary:
    """Trains up to `epochs`, resuming from the latest checkpoint; exports the vectors."""
    try:
      return self._run()
    except Exception as e:  # a lost peer of a cluster becomes one clear error
      lost = self.runner.lost_task_error(e, int(self.state.step.numpy()))
      if lost is None:
        raise
      raise lost from e
    finally:
      self.runner.close()
      self.model_dir.release()

  def _run(self) -> TrainSummary:
    experiment, state, data = self.experiment, self.state, self.data
    if state.restored_checkpoint:  # restored by build_trainer, before the model dir is written
      self.log(f"resumed from {state.restored_checkpoint}: step {int(state.step.numpy())}, "
               f"epoch {int(state.epoch.numpy()) + 1}, learning rate "
               f"{float(self.learning_rate().numpy()):.6g}")
      if self.model_dir.resume_warning:
        self.log(self.model_dir.resume_warning)
    self.runner.check_agreement({
        "step": int(state.step.numpy()), "epoch": int(state.epoch.numpy()),
        "batch_in_epoch": int(state.batch_in_epoch.numpy()), "vocabulary size": len(data.vocab),
        "training tokens": data.tokens.num_tokens, "batch_size": experiment.data.batch_size,
        "embedding_dim": experiment.model.embedding_dim, "epochs": experiment.train.epochs})
    if self.runner.is_chief:  # before this run's first checkpoint, which the projector shows
      self._label_checkpoint_tables()
    model, train, source = experiment.model, experiment.train, experiment.data
    phrases = f", {source.phrases} phrase pass(es)" if source.phrases else ""
    self.callbacks.on_run_begin({"message": (
        f"{source.train_text or source.train_csv} (cleaning {source.resolved_cleaning}"
        f"{phrases}): vocabulary {len(data.vocab):,} words, "
        f"{data.tokens.num_tokens:,} training tokens, "
        f"{len(data.heldout.get('center', [])):,} held-out centers; {model.model} / "
        f"{model.loss} / {train.optimizer}, learning rate {train.learning_rate:g}, model_dir "
        f"{train.model_dir}")})
    summary = TrainSummary()
    # Curve "seconds": wall-clock less the exact comparisons and the epoch-end callbacks.
    started = self._run_started = time.time()
    self._untimed_seconds = 0.0
    words_at_start = float(state.words_done.numpy())
    with run_state.SignalCatcher() as signals:
      while int(state.epoch.numpy()) < train.epochs:
        if not self._run_epoch(signals, summary):
          summary.interrupted = True
          break
    seconds = time.time() - started
    summary.step, summary.epoch = int(state.step.numpy()), int(state.epoch.numpy())
    summary.train_seconds = seconds
    summary.words_per_sec = (float(state.words_done.numpy()) - words_at_start) / max(seconds,
                                                                                     1e-9)
    self.callbacks.on_run_end(dataclasses.asdict(summary))
    if not summary.interrupted and self.runner.is_chief:
      summary.exported = self.export()
    return summary

  def _run_epoch(self, signals: run_state.SignalCatcher, summary: TrainSummary) -> bool:
    """One epoch from the saved position. False if a signal stopped it.

    Steps run in calls of up to `steps_per_call` inside one tf.function (the Python loop
    would otherwise cost about a millisecond per step); a call ends early at the next loss
    point, comparison or checkpoint. A comparison's step runs on its own, so its batch is at
    hand; so does the first step of every run, whose batch the epoch-end comparisons reuse.
    """
    train, state = self.experiment.train, self.state
    epoch = int(state.epoch.numpy())
    skip = int(state.batch_in_epoch.numpy())
    iterator = iter(self.epoch_batches(epoch, skip=skip))
    epoch_words = self.data.tokens.num_tokens
    words_before = float(state.words_done.numpy()) - epoch * epoch_words
    self.callbacks.on_epoch_begin(epoch, {"epochs": train.epochs, "epoch_words": epoch_words})
    window_start, window_words = time.time(), 0.0
    step = int(state.step.numpy())
    release_free_memory = allocator.PeriodicRelease()
    while True:
      batch = None
      if self._last_batch is None or self._evaluates_at(step + 1):
        batch = next(iterator, None)
        if batch is None:
          break
        self._learning_rate = (step + 1, float(self.learning_rate().numpy()))  # the step's rate
        self.runner.run_one(batch)
        self._last_batch, taken = batch, 1
      else:
        taken = self.runner.run_steps(iterator, min(
            self.experiment.runtime.steps_per_call, self._next_evaluation(step) - 1 - step,
            _next_multiple(step, train.log_every_steps) - step,
            _next_multiple(step, train.checkpoint_every_steps) - step))
        if not taken:
          break
      release_free_memory()  # at most every 30 s: 1,250-1,280 -> ~1,130 MiB peak (2 epochs)
      step += taken
      words_now = float(state.words_done.numpy()) - epoch * epoch_words
      window_words += words_now - words_before
      words_before = words_now
      elapsed = time.time() - window_start
      measured = elapsed > 0.5  # a shorter window's rate is noise; it stays open until then
      # Until a window has been measured, the open one's rate stands in (a short epoch's ETA).
      if self._warm and window_words > 0 and (measured or not self._rate_windows):
        self._words_per_sec = window_words / elapsed
        self._rate_windows += measured
      if batch is not None or step % train.log_every_steps == 0:
        self._point(step, summary, exact=batch is not None)
        if measured:
          window_start, window_words = time.time(), 0.0
      if not self._warm:  # the window starts after the compiling call and its comparison
        self._warm = True
        window_start, window_words = time.time(), 0.0
      if step % train.checkpoint_every_steps == 0:
        self._save(step)
      if signals.received is not None:
        self._point(step, summary, exact=True)  # the last step of the run
        path = self._save(step)
        self.callbacks.on_interrupt(step, {"signal": signal.Signals(signals.received).name,
                                           "checkpoint": path})
        return False
      self.callbacks.on_progress({"epoch_words_done": words_before,
                                  "words_per_sec": self._words_per_sec})
    # Free the epoch's tf.data iterator now: its buffers (a chunk built ahead, prefetched
    # batches) otherwise sat beside the epoch end's comparisons, checkpoint and vectors.
    # 5 epochs of IMDB, two runs each: peak RSS 1,017 / 1,018 MiB against 1,040 / 1,041.
    del iterator
    if self._last_batch is None and not skip:
      # No batch at all: a tiny corpus whose subsampling kept no pair. The loss over no pair is
      # NaN, which read as "non-finite loss at step 0 ...: lower --learning_rate".
      subsample = self.experiment.data.subsample
      why = (f"subsampling (--subsample={subsample:g}) kept none with a context word in its "
             "window; lower --subsample (0 = off) or use a larger corpus" if subsample else
             "none has a context word in its document; use a larger corpus")
      raise UserError(f"epoch {epoch + 1} gave no training pair: of the corpus's "
                      f"{self.data.tokens.num_tokens:,} tokens, {why}")
    state.epoch.assign_add(1)
    state.batch_in_epoch.assign(0)
    step = int(state.step.numpy())
    self._point(step, summary, exact=True)
    path = self._save(step)
    logs = {"step": step, "checkpoint": path, **self._rate_logs(),
            "seconds": time.time() - self._run_started - self._untimed_seconds,
            "vectors": self.word_vectors()}
    started = time.time()
    self.callbacks.on_epoch_end(epoch, logs)
    self._untimed_seconds += time.time() - started
    summary.epochs.append({"epoch": epoch + 1, **{key: value for key, value in logs.items()
                                                  if key not in ("vectors", "checkpoint")}})
    return True

  def _rate_logs(self) -> dict:
    """{"words_per_sec"} once a rate is known, else {} (nothing is logged or drawn for it)."""
    return {"words_per_sec": self._words_per_sec} if math.isfinite(self._words_per_sec) else {}

  def _evaluates_at(self, step: int) -> bool:
    """The exact comparison runs at step 1, every `eval_every_steps`, and mid first epoch."""
    return step == 1 or step % self.experiment.train.eval_every_steps == 0 or (
        step == self._mid_first_epoch)

  def _next_evaluation(self, step: int) -> int:
    regular = _next_multiple(step, self.experiment.train.eval_every_steps)
    return self._mid_first_epoch if step < self._mid_first_epoch < regular else regular

  def _save(self, step: int) -> str:
    """Checks that training is still finite, then writes a checkpoint."""
    self._check_finite(step)
    return self.state.save()

  def _check_finite(self, step: int, loss: float | None = None) -> None:
    """Raises if `loss` (given) or else the tables and the loss sums are not finite."""
    if not (self.runner.all_finite() if loss is None else math.isfinite(loss)):
      learning_rate = float(self.learning_rate().numpy())
      raise UserError(
          f"non-finite loss at step {step} (learning rate {learning_rate:.6g}): training "
          f"stopped and nothing was saved; {self.state.last_good()}: lower --learning_rate and "
          "run again (with --overwrite to start afresh)")

  def _point(self, step: int, summary: TrainSummary, exact: bool) -> None:
    """A training-loss point; with `exact`, the exact losses and the gradient cosine too.

    Each step gets at most one point (an epoch end right after a comparison adds none).
    """
    if step == self._last_point[0] and (self._last_point[1] or not exact):
      return
    self.runner.wait()
    train_loss = self.state.take_mean_loss() if self.state.loss_count.numpy() else (
        self._last_train_loss)
    self._last_train_loss = train_loss
    self._check_finite(step, train_loss)
    learning_rate = (self._learning_rate[1] if self._learning_rate[0] == step
                     else float(self.learning_rate().numpy()))
    logs = {"loss_name": self.experiment.model.loss.replace("_", " "), "loss/train": train_loss,
            "learning_rate": learning_rate, **self._rate_logs()}
    self._last_point = (step, exact)
    if not exact:
      self.callbacks.on_log(step, logs)
      summary.train_curve.append({"step": step, "train": train_loss})
      return
    started = time.time()
    clock = started - self._run_started - self._untimed_seconds
    # The batch's first 1024 centers (rows are shuffled): the exact loss costs a [centers, V]
    # logit matrix, so a sample keeps it cheap; the held-out set is fixed.
    heldout = self.data.heldout
    logs["loss/full_softmax_batch"] = self.step.full_softmax_mean(
        self._last_batch, max_centers=FULL_SOFTMAX_BATCH_CENTERS)
    logs["loss/full_softmax_heldout"] = (self.step.full_softmax_mean(heldout) if heldout
                                         else float("nan"))
    logs["grad_cosine/heldout"] = (self.step.gradient_cosine(
        heldout, self.experiment.data.seed, max_centers=GRADIENT_COSINE_CENTERS) if heldout
                                   else float("nan"))
    # At step 1 too (a NaN there used to be logged, and 86 more steps ran).
    self._check_finite(step, logs["loss/full_softmax_batch"])
    summary.eval_seconds += time.time() - started
    self._untimed_seconds += time.time() - started
    self.callbacks.on_evaluation(step, logs)
    summary.curve.append({"step": step, "seconds": clock, "train": train_loss, **{
        key: logs[f"loss/{key}"] for key in ("full_softmax_batch", "full_softmax_heldout")},
                          "grad_cosine": logs["grad_cosine/heldout"]})
    summary.train_curve.append({"step": step, "train": train_loss})

  def word_vectors(self) -> WordVectors:
    """The current input embeddings with the vocabulary."""
    vocab = self.data.vocab
    return WordVectors(vocab.words, self.step.model.input_embeddings.numpy(), vocab.counts)

  def _label_checkpoint_tables(self) -> None:
    """The projector of `tensorboard --logdir model_dir`: the input table first, then the
    output one, both with the vocabulary (the output rows of hierarchical softmax are the
    tree's inner nodes: no words)."""
    vocab = self.data.vocab
    words_out = not losses.get(self.experiment.model.loss).needs_tree
    export.write_checkpoint_projector(self.model_dir.path, vocab.words, vocab.counts, [
        (run_state.model_key("input_embeddings"), True),
        (run_state.model_key("output_weights"), words_out)])

  def export(self) -> dict:
    """Writes vectors.txt, vectors.bin and projector files into model_dir (vocab.tsv is there)."""
    self.runner.wait()
    vectors = self.word_vectors()
    paths = export.export_vectors(self.model_dir.path, vectors,
                                  table=self.step.model.input_embeddings)
    self.log(f"exported {len(vectors.words):,} x {vectors.vectors.shape[1]} vectors to "
             f"{paths.get('binary')} and {paths.get('text')}")
    return paths


def _next_multiple(step: int, interval: int) -> int:
  """The first multiple of `interval` after `step`."""
  return (step // interval + 1) * interval
