"""How steps run: one device, mirrored / multi-worker (tf.distribute), parameter server.

The trainer talks to one interface, `Runner`: build the state under `scope()`, `attach` the
step, `run_steps(iterator, n)`, `wait()`, `is_chief`. Batches, and the negatives drawn for them
in the input pipeline, are the same under every strategy, so a step updates the tables as one
device would. What each does with the sparse gradients (`tf.IndexedSlices` of gathered rows):

* default (`Runner`): the steps run inside one `tf.function` loop, up to `steps_per_call` per
  call; with SGD under XLA the loss, gradient and row updates are one compiled program.
* mirrored (`MirroredStrategy`, local GPUs or `cpu_devices` logical CPUs) and multi_worker
  (`MultiWorkerMirroredStrategy`, cluster from TF_CONFIG), `MirroredRunner`: the R replicas each
  take B/R consecutive centers of a batch with their groups' candidates and compute their loss
  and gradients. The cross-device op all-gathers an `IndexedSlices` (values and indices); dense
  gradients (the full-softmax output table) are all-reduced. The summed slices are applied by
  the sparse optimizer to every replica's copy (`extended.update`), so the copies stay
  identical. Each multi_worker worker feeds only its share of every batch (the pipeline is
  deterministic, so every worker derives the same batches: TF's `AutoShardPolicy.DATA`); only
  the chief writes, the other workers write to a scratch dir removed at the end and resume from
  the chief's checkpoints (`model_dir` must be shared).
* parameter_server (`ParameterServerRunner`): the tables (and optimizer slots) are
  `ShardedVariable`s split by rows across the parameter servers. The chief runs the input
  pipeline and a `ClusterCoordinator` sends each batch to a free worker (each batch is trained
  once, asynchronously, as word2vec's Hogwild threads do); a worker reads and writes only the
  rows its batch touches (`step.touched_rows_step`).

Checkpoints hold the same keys under every strategy (a `ShardedVariable` is saved as one
variable), so a run trained under one strategy resumes, exports and evaluates under another.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
import tempfile
from typing import Callable

import tensorflow as tf

from w2v_tf import allocator, cluster
from w2v_tf.config import ExperimentConfig, RuntimeConfig
from w2v_tf.errors import UsageError, UserError
from w2v_tf.pipeline import take_part
from w2v_tf.step import TrainStep, touched_rows_step

_EXAMPLE_KEYS = ("center", "contexts", "mask", "negatives")
_TABLE_NAMES = ("input_embeddings", "output_weights", "output_bias")


class Runner:
  """Runs steps on one device; the base of the strategies' runners.

  Attributes:
    task: this process's `cluster.TaskInfo`.
    fuses_updates: whether the step may apply its update inside the compiled program.
  """

  fuses_updates = True

  def __init__(self, runtime: RuntimeConfig, log: Callable[[str], None]):
    self.runtime, self.log = runtime, log
    self.task = cluster.task_info(None)
    self.step = self.state = self.learning_rate = None

  @property
  def is_chief(self) -> bool:
    return self.task.is_chief

  def adapt(self, experiment: ExperimentConfig) -> ExperimentConfig:
    """The experiment as this process runs it (checks; non-chief workers write elsewhere)."""
    return experiment

  def scope(self):
    """Where the model, optimizer and run state are created."""
    return contextlib.nullcontext()

  def attach(self, step: TrainStep, state, learning_rate: Callable[[], tf.Tensor]) -> None:
    """Gives the runner its step, the run state and the learning-rate schedule (no args)."""
    self.step, self.state, self.learning_rate = step, state, learning_rate
    self._loop = tf.function(self._steps_in_graph)

  def _train(self, batch) -> None:
    total, count = self.step.update(batch, self.learning_rate())
    self.state.add_loss(total, count)
    self.state.advance(batch["words"])

  def _steps_in_graph(self, iterator, max_steps):
    """Up to `max_steps` steps from `iterator` in one call (no Python between steps)."""
    taken = tf.constant(0)
    for _ in tf.range(max_steps):
      element = iterator.get_next_as_optional()
      if not element.has_value():
        break
      self._train(element.get_value())
      taken += 1
    return taken

  def run_steps(self, iterator, max_steps: int) -> int:
    """Runs up to `max_steps` steps; the number taken (fewer at the end of the epoch)."""
    return int(self._loop(iterator, tf.constant(max_steps)).numpy())

  def run_one(self, batch) -> None:
    """One step on a batch held in Python (the steps whose batch the loss comparison uses).

    It goes through the same compiled loop as the other steps (an iterator over just this
    batch has the epoch iterator's type), so nothing is traced or compiled twice.
    """
    self.run_steps(iter(tf.data.Dataset.from_tensors(batch)), 1)

  def batches(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
    """This process's part of each batch."""
    return dataset

  def wait(self) -> None:
    """Returns when every step scheduled so far has been applied."""

  def restore(self, state, overwrite: bool) -> bool:
    del overwrite  # the model dir was cleared already
    return state.restore()

  def check_agreement(self, facts: dict[str, int]) -> None:
    """Raises if the processes of a cluster disagree on `facts` (one process: nothing to do)."""

  def all_finite(self) -> bool:
    self.wait()
    return self.state.is_finite()

  def describe(self) -> str | None:
    return None

  def lost_task_error(self, error: Exception, step: int) -> UserError | None:
    """The error to raise when `error` means a peer of the cluster is gone (None: not that)."""
    del error, step
    return None

  def close(self) -> None:
    """Removes what only this process needed."""


class MirroredRunner(Runner):
  """Synchronous replicas: `MirroredStrategy` or `MultiWorkerMirroredStrategy`."""

  fuses_updates = False  # the replicas split and read the negatives as SampledValues

  def __init__(self, runtime: RuntimeConfig, log: Callable[[str], None]):
    super().__init__(runtime, log)
    # The strategy first: MultiWorkerMirroredStrategy must set up TensorFlow's runtime before
    # it runs anything (the corpus is read with TensorFlow ops).
    self.strategy, self.task = cluster.make_strategy(runtime)
    self.replicas = self.strategy.num_replicas_in_sync
    self.local_replicas = self.replicas // self.task.num_workers
    self.scratch_dir = self.chief_model_dir = None
    self._reported = False

  def adapt(self, experiment: ExperimentConfig) -> ExperimentConfig:
    data, model = experiment.data, experiment.model
    if data.batch_size % (model.sample_group_centers * self.replicas):
      raise UsageError(
          f"--batch_size ({data.batch_size}) must be a multiple of --sample_group_centers "
          f"({model.sample_group_centers}) times the {self.replicas} replicas of "
          f"--strategy={self.runtime.strategy}")
    self.chief_model_dir = experiment.train.model_dir
    if self.is_chief:
      return experiment
    # The standard pattern: other workers train in step but write only to a scratch dir.
    self.scratch_dir = tempfile.mkdtemp(prefix=f"w2v_tf_worker{self.task.worker_index}_")
    return experiment.replace(model_dir=self.scratch_dir, analogies=None)

  def scope(self):
    return self.strategy.scope()

  def attach(self, step, state, learning_rate) -> None:
    super().attach(step, state, learning_rate)
    self._step = tf.function(self._synchronous_step, reduce_retracing=True)
    self.rows, self.groups = step.num_sample_groups * step.config.sample_group_centers, (
        step.num_sample_groups)

  def batches(self, dataset):
    workers = self.task.num_workers
    if workers <= 1:
      return dataset
    index = self.task.worker_index
    return dataset.map(lambda batch: take_part(batch, index, workers, self.rows, self.groups))

  def run_one(self, batch) -> None:
    self._step({key: batch[key] for key in _EXAMPLE_KEYS}, self.learning_rate())
    self.state.advance(batch["words"])

  def run_steps(self, iterator, max_steps: int) -> int:
    """One Python call per step: the strategies' steps are not run inside a graph loop."""
    taken = 0
    for batch in itertools.islice(iterator, max_steps):
      self.run_one(batch)
      taken += 1
    return taken

  def _replica_loss_and_gradients(self, examples):
    context = tf.distribute.get_replica_context()
    parts = self.local_replicas
    part = tf.math.floormod(context.replica_id_in_sync_group, parts)
    rows = self.rows // self.task.num_workers  # this worker's rows
    groups = self.groups // self.task.num_workers
    mine = take_part(examples, part, parts, rows, groups)
    negatives = mine.pop("negatives")
    return self.step.loss_and_gradients(mine, negatives)

  def _synchronous_step(self, examples, learning_rate):
    """Per-replica gradients, summed across replicas, applied to each copy of the tables."""
    total, count, gradients = self.strategy.run(self._replica_loss_and_gradients,
                                                args=(examples,))
    tables = self.step.tables
    anchor = tables[0]  # reduce onto the tables' devices
    present = [index for index, gradient in enumerate(gradients) if gradient is not None]
    reduced = self.strategy.extended.batch_reduce_to(
        tf.distribute.ReduceOp.SUM,
        [(total, anchor), (count, anchor)] + [(gradients[i], tables[i]) for i in present])
    reduced_gradients = [None] * len(tables)
    for index, value in zip(present, reduced[2:]):
      reduced_gradients[index] = value
    if not self._reported:  # at trace time: say what the all-reduce carried
      self._reported = True
      kinds = [f"{name} {_table_kind(self.strategy.experimental_local_results(value)[0])}"
               for name, value in zip(_TABLE_NAMES, reduced_gradients) if value is not None]
      self.log(f"gradients all-reduced across {self.replicas} replicas: {', '.join(kinds)} "
               "(IndexedSlices are all-gathered, values and indices)")
    self.strategy.extended.update(anchor, self._apply_on_copy,
                                  args=(reduced[0], reduced[1], reduced_gradients, learning_rate))

  def _apply_on_copy(self, unused_copy, total, count, gradients, learning_rate):
    """Runs once per copy of the state (`extended.update` resolves every variable to it)."""
    self.step.optimizer.apply(gradients, self.step.tables, learning_rate, xla=False)
    self.state.add_loss(total, count)
    return tf.constant(0)

  def restore(self, state, overwrite: bool) -> bool:
    """Workers other than the chief restore the chief's newest checkpoint."""
    if self.is_chief:
      return state.restore()
    if overwrite:
      return False
    return state.restore(self.chief_model_dir, strict=False)

  def check_agreement(self, facts: dict[str, int]) -> None:
    """Every worker must resume at the same step with the same data (a collective)."""
    if self.task.num_workers <= 1:
      return
    local = tf.constant([list(facts.values())], tf.int64)  # [1, facts]

    @tf.function
    def gather_all():  # [replicas, facts], on every worker
      return self.strategy.gather(self.strategy.run(lambda: tf.identity(local)), axis=0)

    everyone = gather_all().numpy()
    differ = [f"{name} {low}..{high}" for name, low, high in
              zip(facts, everyone.min(axis=0), everyone.max(axis=0)) if low != high]
    if differ:
      raise UserError(f"the workers disagree ({'; '.join(differ)}): start every worker with "
                      "the same flags and data, and a --model_dir they all can read")

  def describe(self) -> str:
    if self.runtime.strategy == "mirrored":
      return f"{self.replicas} replicas on {', '.join(self.strategy.extended.worker_devices)}"
    task = self.task
    role = "chief" if task.is_chief else f"worker (writes to scratch {self.scratch_dir})"
    return (f"worker {task.worker_index} of {task.num_workers}, {role}; "
            f"{self.replicas} replicas in sync")

  def lost_task_error(self, error, step):
    if self.runtime.strategy == "mirrored":
      return None
    return _lost_task(error, step, "the workers", self.chief_model_dir)

  def close(self) -> None:
    if self.scratch_dir:
      shutil.rmtree(self.scratch_dir, ignore_errors=True)


class ParameterServerRunner(Runner):
  """Asynchronous workers over tables sharded across parameter servers."""

  fuses_updates = False

  def __init__(self, runtime: RuntimeConfig, log: Callable[[str], None]):
    super().__init__(runtime, log)
    self.strategy, self.task = cluster.make_strategy(runtime)
    self.coordinator = None
    self.chief_model_dir = None
    self._reported = False

  def adapt(self, experiment):
    self.chief_model_dir = experiment.train.model_dir
    return experiment

  def scope(self):
    return self.strategy.scope()

  def attach(self, step, state, learning_rate) -> None:
    super().attach(step, state, learning_rate)
    self.coordinator = tf.distribute.coordinator.ClusterCoordinator(self.strategy)
    self._worker_step = tf.function(self._remote_step)

  def run_one(self, batch) -> None:
    """Queues the batch for the next free worker (returns at once)."""
    examples = {key: batch[key] for key in _EXAMPLE_KEYS}
    self.coordinator.schedule(self._worker_step, args=(examples, self.learning_rate()))
    self.state.advance(batch["words"])

  run_steps = MirroredRunner.run_steps

  def _remote_step(self, examples, learning_rate):
    return self.strategy.run(self._replica_step, args=(examples, learning_rate))

  def _replica_step(self, examples, learning_rate):
    total, count = touched_rows_step(self.step.model, self.step.optimizer, examples,
                                     learning_rate)
    if not self._reported:  # at trace time
      self._reported = True
      self.log("each worker reads the rows its batch touches with embedding_lookup (one gather "
               "per shard) and applies IndexedSlices with per-shard scatter updates"
               + ("; the full softmax reads and updates the whole output table"
                  if self.step.loss.reads_whole_output_table else ""))
    self.state.add_loss(total, count)
    return total

  def wait(self) -> None:
    if self.coordinator is not None:
      self.coordinator.join()  # every queued step is applied (raises a worker's error)

  def all_finite(self) -> bool:
    """Checks each shard where it lives; the whole table is fetched only to report a problem."""
    self.wait()
    for shard in cluster.shards_of(self.step.model.input_embeddings):
      with tf.device(shard.device):
        if not bool(tf.reduce_all(tf.math.is_finite(shard)).numpy()):
          return False
    return bool(tf.math.is_finite(self.state.loss_sum).numpy())

  def describe(self) -> str:
    task, model = self.task, self.step.model
    return (f"chief of {task.num_workers} workers and {task.num_ps} parameter servers; "
            + "; ".join(f"{name} {cluster.describe_shards(getattr(model, name))}"
                        for name in _TABLE_NAMES))

  def lost_task_error(self, error, step):
    return _lost_task(error, step, "the chief", self.chief_model_dir)


def _table_kind(value) -> str:
  return "IndexedSlices" if isinstance(value, tf.IndexedSlices) else "dense"


def _lost_task(error, step: int, restart: str, model_dir: str) -> UserError | None:
  if not isinstance(error, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError)):
    return None
  message = " ".join(str(error).split())
  reason = re.split(r" (?:The tasks have|The error could be)", message.rsplit(
      "aborted by: ", 1)[-1])[0][:240]
  return UserError(
      f"the cluster lost a task near step {step} ({reason}): start the stopped task(s) again, "
      f"then {restart} with the same command; training resumes from the newest checkpoint in "
      f"{model_dir}")


def make_runner(runtime: RuntimeConfig, log: Callable[[str], None]) -> Runner:
  """The runner for `runtime.strategy` (creates the strategy: call before other TF work)."""
  allocator.prepare_process()  # before TensorFlow's threads first allocate
  if runtime.strategy == "default":
    return Runner(runtime, log)
  if runtime.strategy == "parameter_server":
    return ParameterServerRunner(runtime, log)
  return MirroredRunner(runtime, log)
