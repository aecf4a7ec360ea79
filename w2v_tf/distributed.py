"""Scaling out with tf.distribute: MirroredStrategy, MultiWorkerMirroredStrategy, ParameterServerStrategy.

`make_trainer` returns the single-device `Trainer` for `strategy="default"` and a
`DistributedTrainer` otherwise. The distributed trainer keeps the Trainer's loop (epochs, the
learning-rate schedule, checkpoints, summaries, resume, export) and changes only where the state
lives and how a step runs. Batches, and the negatives drawn for them in the input pipeline, are
the same under every strategy, so a step updates the tables as one device would.

What each strategy does with the sparse gradients (`tf.IndexedSlices` of the gathered rows):

* mirrored (`tf.distribute.MirroredStrategy`, local GPUs or `cpu_devices` logical CPUs): the R
  replicas each take B/R consecutive centers of a batch with their groups' candidates, and
  compute their loss and gradients. The strategy's cross-device op (`CollectiveAllReduce`: RING
  on CPUs, NCCL on GPUs) all-gathers an `IndexedSlices` (values and indices), it does not
  densify it; dense gradients (the full-softmax output table) are all-reduced. The summed
  slices are then applied by the sparse optimizer to every replica's copy of each table
  (`strategy.extended.update`), so the copies stay identical.
* multi_worker (`tf.distribute.MultiWorkerMirroredStrategy`, cluster from `TF_CONFIG`): the same,
  across processes. Each worker feeds only its share of every batch (the input pipeline is
  deterministic, so every worker derives the same batches and keeps its rows: TF's
  `AutoShardPolicy.DATA`); the all-gather runs over gRPC. Only the chief writes checkpoints,
  summaries and exported vectors; the other workers write to a temporary directory that is
  removed at the end, and resume from the chief's checkpoints (`model_dir` must be shared).
* parameter_server (`tf.distribute.ParameterServerStrategy`): the tables (and the optimizer's
  slot tables) are `ShardedVariable`s split by rows across the parameter servers
  (`MinSizePartitioner`). The chief runs the input pipeline and a `ClusterCoordinator` sends each
  batch to a free worker (each batch is trained exactly once, asynchronously, as word2vec's own
  Hogwild threads do). A worker reads only the rows its batch touches
  (`tf.nn.embedding_lookup`, one gather per shard), computes the loss on those rows, and
  applies the gradients as `IndexedSlices` with `ShardedVariable.scatter_*`, which sends each
  shard its rows. The full-softmax loss reads the whole output table (it needs every row).

Checkpoints hold the same keys under every strategy (a `ShardedVariable` is saved as one
variable), so a run trained under one strategy resumes, exports and evaluates under another.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import shutil
import tempfile
import types
from typing import Callable

import tensorflow as tf

from w2v_tf import checkpoints, losses
from w2v_tf.config import DataConfig
from w2v_tf.errors import UsageError, UserError
from w2v_tf.model import ModelConfig, Word2Vec
from w2v_tf.pipeline import take_part
from w2v_tf.trainer import TrainConfig, Trainer

# ParameterServerStrategy splits a table into shards of at least this many bytes, at most one
# per parameter server: every embedding table of a real vocabulary is split across all of them,
# while tiny variables (counters) stay whole.
PS_MIN_SHARD_BYTES = 4 << 10
_EXAMPLE_KEYS = ("center", "contexts", "mask", "negatives")


def make_trainer(data: DataConfig, model: ModelConfig, train: TrainConfig,
                 log: Callable[[str], None] | None = None) -> Trainer:
  """The trainer for `train.strategy`: `Trainer` for "default", else `DistributedTrainer`."""
  if train.strategy == "default":
    return Trainer(data, model, train, log)
  return DistributedTrainer(data, model, train, log)


def configure_cpu_devices(count: int) -> None:
  """Splits the CPU into `count` logical devices (for `MirroredStrategy` tests); 0: no change.

  Must run before TensorFlow runs any op; raises UserError if the devices are already fixed
  with another count.
  """
  if count <= 0:
    return
  cpu = tf.config.list_physical_devices("CPU")[0]
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
  except RuntimeError as e:
    have = len(tf.config.list_logical_devices("CPU"))
    if have != count:
      raise UserError(f"--cpu_devices={count}: TensorFlow already runs with {have} CPU "
                      "device(s); set it in a fresh process, before anything else uses "
                      "TensorFlow") from e


@dataclasses.dataclass(frozen=True)
class TaskInfo:
  """This process's place in the cluster.

  Attributes:
    task_type: "chief", "worker", "ps" or None (no TF_CONFIG: a single process).
    task_id: index within its job.
    is_chief: writes checkpoints, summaries and exports.
    worker_index: index among the training workers ("chief" job first, then "worker").
    num_workers: training workers in the cluster (1 without TF_CONFIG).
    num_ps: parameter servers.
  """
  task_type: str | None
  task_id: int
  is_chief: bool
  worker_index: int
  num_workers: int
  num_ps: int


def _cluster_jobs(resolver) -> dict:
  spec = resolver.cluster_spec().as_dict()
  return {job: (len(tasks) if isinstance(tasks, (list, dict)) else 0)
          for job, tasks in spec.items()}


def task_info(resolver: tf.distribute.cluster_resolver.ClusterResolver | None) -> TaskInfo:
  """Reads the task type, index and job sizes from a cluster resolver (None: one process)."""
  if resolver is None or not resolver.cluster_spec().as_dict():
    return TaskInfo(None, 0, True, 0, 1, 0)
  jobs = _cluster_jobs(resolver)
  task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
  chiefs, workers = jobs.get("chief", 0), jobs.get("worker", 0)
  is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not chiefs)
  worker_index = task_id if task_type == "chief" else chiefs + task_id
  return TaskInfo(task_type, task_id, is_chief, worker_index, chiefs + workers, jobs.get("ps", 0))


def _tf_config_resolver(strategy_name: str):
  if not os.environ.get("TF_CONFIG"):
    return None
  try:
    json.loads(os.environ["TF_CONFIG"])
  except json.JSONDecodeError as e:
    raise UsageError(f"TF_CONFIG is not valid JSON ({e}); see the README's \"Scaling out\" "
                     f"section for --strategy={strategy_name}") from e
  return tf.distribute.cluster_resolver.TFConfigClusterResolver()


def serve_if_server_task(strategy_name: str) -> bool:
  """Under --strategy=parameter_server, a "worker" or "ps" task serves until it is killed.

  TF_CONFIG names the task. The chief (and every task of the other strategies) returns False
  at once and goes on to train.
  """
  if strategy_name != "parameter_server":
    return False
  resolver = _tf_config_resolver(strategy_name)
  if resolver is None or resolver.task_type not in ("worker", "ps"):
    return False
  os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")  # notice lost peers quickly (TF's advice)
  server = tf.distribute.Server(resolver.cluster_spec(), job_name=resolver.task_type,
                                task_index=resolver.task_id,
                                protocol=resolver.rpc_layer or "grpc", start=True)
  server.join()
  return True


_made = {}  # (strategy, cpu_devices, TF_CONFIG) -> (strategy, TaskInfo)


def make_strategy(train: TrainConfig) -> tuple[tf.distribute.Strategy, TaskInfo]:
  """The strategy named by `train.strategy` (not "default") and this task's role.

  One strategy per setting and process, reused by later trainers: TF numbers its collective
  ops per strategy object, so two MirroredStrategy objects in one process would mix up their
  all-reduces, and a process joins a cluster only once.
  """
  key = (train.strategy, train.cpu_devices, os.environ.get("TF_CONFIG"))
  if key not in _made:
    _made[key] = _new_strategy(train)
  return _made[key]


def _new_strategy(train: TrainConfig) -> tuple[tf.distribute.Strategy, TaskInfo]:
  name = train.strategy
  if name == "mirrored":
    configure_cpu_devices(train.cpu_devices)
    devices = None  # all local GPUs, or the CPU
    if train.cpu_devices:
      devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices), task_info(None)
  resolver = _tf_config_resolver(name)
  if name == "multi_worker":
    # Without TF_CONFIG: one worker (its local GPUs, or the CPU).
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver), task_info(
        resolver)
  if name == "parameter_server":
    info = task_info(resolver)
    if resolver is None or info.task_type != "chief" or not info.num_ps or not info.num_workers:
      raise UsageError(
          "--strategy=parameter_server needs TF_CONFIG naming a cluster with \"chief\", "
          "\"worker\" and \"ps\" jobs; run this binary with task type \"chief\" to train and "
          "with types \"worker\" and \"ps\" to serve (see the README's \"Scaling out\")")
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=PS_MIN_SHARD_BYTES, max_shards=info.num_ps)
    strategy = tf.distribute.ParameterServerStrategy(resolver, variable_partitioner=partitioner)
    num_workers = _cluster_jobs(resolver).get("worker", 0)
    return strategy, dataclasses.replace(info, num_workers=num_workers)
  raise UsageError(f"unknown strategy {name!r}")


def shards_of(variable) -> list:
  """The variables holding a table: a `ShardedVariable`'s shards, else the variable itself."""
  return list(getattr(variable, "variables", None) or [variable])


def describe_shards(variable) -> str:
  """E.g. "2 shards: 66 rows on /job:ps/replica:0/task:0, 66 rows on /job:ps/replica:0/task:1"."""
  shards = shards_of(variable)
  parts = [f"{shard.shape[0]} rows on {shard.device.rsplit('/device:', 1)[0]}" for shard in shards]
  return f"{len(shards)} shard{'s' if len(shards) > 1 else ''}: {', '.join(parts)}"


def _table_kind(value) -> str:
  return "IndexedSlices" if isinstance(value, tf.IndexedSlices) else "dense"


class DistributedTrainer(Trainer):
  """`Trainer` under a `tf.distribute` strategy (see the module docstring).

  Attributes:
    strategy: the `tf.distribute.Strategy`.
    task: this process's `TaskInfo`.
    coordinator: the `ClusterCoordinator` (parameter_server only, else None).
  """

  def __init__(self, data: DataConfig, model: ModelConfig, train: TrainConfig,
               log: Callable[[str], None] | None = None):
    if train.strategy == "default":
      raise UsageError("DistributedTrainer needs a strategy other than \"default\"")
    # The strategy first: MultiWorkerMirroredStrategy and ParameterServerStrategy must set up
    # TensorFlow's runtime before it runs anything (the corpus is read with TensorFlow ops).
    self.strategy, self.task = make_strategy(train)
    self.chief_model_dir = train.model_dir
    self._scratch_dir = None
    if not self.task.is_chief:
      # The standard pattern: other workers train in step but write only to a scratch dir.
      self._scratch_dir = tempfile.mkdtemp(prefix=f"w2v_tf_worker{self.task.worker_index}_")
      train = dataclasses.replace(train, model_dir=self._scratch_dir, analogies=None)
    self.coordinator = None
    if train.strategy == "parameter_server":
      self.replicas = self.local_replicas = 1  # each step runs on one worker
    else:  # R replicas in sync, R / workers of them in this process
      self.replicas = self.strategy.num_replicas_in_sync
      self.local_replicas = self.replicas // self.task.num_workers
    if data.batch_size % (model.sample_group_centers * self.replicas):
      raise UsageError(
          f"--batch_size ({data.batch_size}) must be a multiple of --sample_group_centers "
          f"({model.sample_group_centers}) times the {self.replicas} replicas of "
          f"--strategy={train.strategy}")
    self._reported = False
    try:
      super().__init__(data, model, train, log)
    except BaseException:
      self._remove_scratch()
      raise
    self.log(f"strategy {train.strategy}: {self._describe()}")
    if train.strategy == "parameter_server":
      self.coordinator = tf.distribute.coordinator.ClusterCoordinator(self.strategy)
      self._worker_step = tf.function(self._parameter_server_worker_step)
      self._train_step = self._schedule_step

  def _describe(self) -> str:
    task = self.task
    if self.train_config.strategy == "mirrored":
      return f"{self.replicas} replicas on {', '.join(self.strategy.extended.worker_devices)}"
    if self.train_config.strategy == "multi_worker":
      role = "chief" if task.is_chief else f"worker (writes to scratch {self._scratch_dir})"
      return (f"worker {task.worker_index} of {task.num_workers}, {role}; "
              f"{self.replicas} replicas in sync")
    return (f"chief of {task.num_workers} workers and {task.num_ps} parameter servers; "
            + "; ".join(f"{name} {describe_shards(variable)}" for name, variable in (
                ("input_embeddings", self.model.input_embeddings),
                ("output_weights", self.model.output_weights),
                ("output_bias", self.model.output_bias))))

  # --- state -----------------------------------------------------------------------------

  def _build_state(self) -> None:
    with self.strategy.scope():
      super()._build_state()

  def restore(self) -> bool:
    """Restores as `Trainer.restore`; multi_worker workers restore the chief's checkpoint.

    Every multi_worker worker then checks that all of them resumed at the same step with the
    same data (a collective; a mismatch would otherwise deadlock or train garbage).
    """
    if self.task.is_chief or self.train_config.strategy != "multi_worker":
      restored = super().restore()
    else:
      restored = False
      self.restored_checkpoint = None
      if not self.train_config.overwrite:
        candidates, _ = checkpoints.candidates(self.chief_model_dir)
        self.restored_checkpoint = checkpoints.restore_newest_readable(
            checkpoints.make_restore(self.checkpoint), candidates, self.log)
        restored = self.restored_checkpoint is not None
    if self.train_config.strategy == "multi_worker" and self.task.num_workers > 1:
      self._check_workers_agree()
    return restored

  def _check_workers_agree(self) -> None:
    facts = {"step": int(self.step.numpy()), "epoch": int(self.epoch.numpy()),
             "batch_in_epoch": int(self.batch_in_epoch.numpy()),
             "vocabulary size": len(self.prepared.vocab),
             "training tokens": self.prepared.tokens.num_tokens,
             "batch_size": self.data_config.batch_size,
             "embedding_dim": self.model_config.embedding_dim,
             "epochs": self.train_config.epochs}
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

  # --- input ---------------------------------------------------------------------------------

  def epoch_batches(self, epoch: int, skip: int = 0) -> tf.data.Dataset:
    """multi_worker: this worker's rows of every batch (every worker derives the same batches)."""
    dataset = super().epoch_batches(epoch, skip)
    workers = self.task.num_workers
    if self.train_config.strategy != "multi_worker" or workers <= 1:
      return dataset
    rows, groups = self.data_config.batch_size, self.num_sample_groups
    index = self.task.worker_index
    return dataset.map(lambda batch: take_part(batch, index, workers, rows, groups))

  def _expected_counts_in_step(self) -> bool:
    return False  # the strategies' steps split and read the negatives as SampledValues

  def _train_one(self, batch) -> None:
    self._train_step(batch, self._learning_rate())
    self._advance(batch)

  def train_steps(self, iterator, max_steps: int) -> int:
    """One Python call per step: the strategies' steps are not run inside a graph loop."""
    taken = 0
    for batch in itertools.islice(iterator, max_steps):
      self._train_one(batch)
      taken += 1
    return taken

  # --- mirrored / multi_worker step ----------------------------------------------------------

  def _replica_loss_and_gradients(self, examples):
    context = tf.distribute.get_replica_context()
    parts = self.local_replicas
    part = tf.math.floormod(context.replica_id_in_sync_group, parts)
    rows = self.data_config.batch_size * parts // self.replicas  # this worker's rows
    groups = self.num_sample_groups * parts // self.replicas
    mine = take_part(examples, part, parts, rows, groups)
    negatives = mine.pop("negatives")
    return self._loss_and_gradients(mine, negatives)

  def _step(self, batch, learning_rate):
    """One synchronous step: per-replica gradients, summed across replicas, applied to each copy."""
    examples = {key: batch[key] for key in _EXAMPLE_KEYS}
    total, count, gradients = self.strategy.run(self._replica_loss_and_gradients,
                                                args=(examples,))
    anchor = self.variables[0]  # reduce onto the tables' devices
    present = [index for index, gradient in enumerate(gradients) if gradient is not None]
    reduced = self.strategy.extended.batch_reduce_to(
        tf.distribute.ReduceOp.SUM,
        [(total, anchor), (count, anchor)] + [(gradients[i], self.variables[i]) for i in present])
    reduced_gradients = [None] * len(self.variables)
    for index, value in zip(present, reduced[2:]):
      reduced_gradients[index] = value
    if not self._reported:  # at trace time: say what the all-reduce carried
      self._reported = True
      names = ("input_embeddings", "output_weights", "output_bias")
      kinds = [f"{name} {_table_kind(self.strategy.experimental_local_results(value)[0])}"
               for name, value in zip(names, reduced_gradients) if value is not None]
      self.log(f"gradients all-reduced across {self.replicas} replicas: {', '.join(kinds)} "
               "(IndexedSlices are all-gathered, values and indices)")
    self.strategy.extended.update(anchor, self._apply_on_copy,
                                  args=(reduced[0], reduced[1], reduced_gradients, learning_rate))

  def _apply_on_copy(self, unused_copy, total, count, gradients, learning_rate):
    """Runs once per copy of the state (`extended.update` resolves every variable to it)."""
    self.optimizer.apply(gradients, self.variables, learning_rate, xla=False)
    self.loss_sum.assign_add(tf.cast(total, tf.float64))
    self.loss_count.assign_add(tf.cast(count, tf.float64))
    return tf.constant(0)

  # --- parameter_server step -----------------------------------------------------------------

  def _schedule_step(self, batch, learning_rate):
    """Queues the batch for the next free worker (returns at once)."""
    examples = {key: batch[key] for key in _EXAMPLE_KEYS}
    self.coordinator.schedule(self._worker_step, args=(examples, learning_rate))

  def _parameter_server_worker_step(self, examples, learning_rate):
    return self.strategy.run(self._parameter_server_replica_step, args=(examples, learning_rate))

  def _parameter_server_replica_step(self, examples, learning_rate):
    total, count = touched_rows_step(self.model, self.model_config.loss, self.optimizer,
                                     examples, learning_rate)
    if not self._reported:  # at trace time
      self._reported = True
      self.log("each worker reads the rows its batch touches with embedding_lookup (one gather "
               "per shard) and applies IndexedSlices with per-shard scatter updates"
               + ("; the full softmax reads and updates the whole output table"
                  if self.model_config.loss == "full_softmax" else ""))
    self.loss_sum.assign_add(tf.cast(total, tf.float64))
    self.loss_count.assign_add(tf.cast(count, tf.float64))
    return total

  def _join(self) -> None:
    if self.coordinator is not None:
      self.coordinator.join()  # every queued step is applied (raises a worker's error)

  def save(self) -> str:
    self._join()
    return super().save()

  def _evaluate_losses(self, *args, **kwargs):
    self._join()
    return super()._evaluate_losses(*args, **kwargs)

  def _check_finite(self, step: int, learning_rate: float) -> None:
    self._join()
    if self.coordinator is not None:
      # Check each shard where it lives; fetch the whole table only to report a problem.
      finite = True
      for shard in shards_of(self.model.input_embeddings):
        with tf.device(shard.device):
          finite = finite and bool(tf.reduce_all(tf.math.is_finite(shard)).numpy())
      if finite and tf.math.is_finite(self.loss_sum).numpy():
        return
    super()._check_finite(step, learning_rate)

  # --- output --------------------------------------------------------------------------------

  def export(self) -> dict:
    """The chief exports; other workers write nothing."""
    self._join()
    if not self.task.is_chief:
      return {}
    return super().export()

  def run(self) -> dict:
    """`Trainer.run`; a lost peer (a worker or parameter server gone) becomes a UserError."""
    try:
      return super().run()
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as e:
      if self.train_config.strategy == "mirrored":
        raise
      message = " ".join(str(e).split())
      reason = re.split(r" (?:The tasks have|The error could be)", message.rsplit(
          "aborted by: ", 1)[-1])[0][:240]
      restart = "the workers" if self.train_config.strategy == "multi_worker" else "the chief"
      raise UserError(
          f"the cluster lost a task near step {int(self.step.numpy())} ({reason}): start the "
          f"stopped task(s) again, then {restart} with the same command; training resumes from "
          f"the newest checkpoint in {self.chief_model_dir}") from e
    finally:
      self._remove_scratch()

  def _remove_scratch(self) -> None:
    if self._scratch_dir:
      shutil.rmtree(self._scratch_dir, ignore_errors=True)


def touched_rows_step(model: Word2Vec, loss: str, optimizer, examples: dict, learning_rate):
  """One SGD / Adagrad / Adam step that reads and writes only the rows a batch touches.

  The update equals the single-device step's (`Trainer._step`), but the tables are read with
  `tf.nn.embedding_lookup` (one gather per shard of a `ShardedVariable`, never the whole
  table) and the loss is computed on those rows; their gradients go back as `IndexedSlices`
  (`ShardedVariable.scatter_*` sends each shard its rows). The full softmax reads the whole
  output table: it needs every row.

  Args:
    model: the tables (plain or sharded variables).
    loss: the loss name (`ModelConfig.loss`).
    optimizer: a `w2v_tf.optim` optimizer over [input_embeddings, output_weights, output_bias].
    examples: {"center", "contexts", "mask", "negatives"} as `Trainer.epoch_batches` yields.
    learning_rate: scalar float32.

  Returns:
    (summed loss, number of pairs), float32 scalars.
  """
  cbow = model.config.model == "cbow"
  batch = {key: examples[key] for key in ("center", "contexts", "mask")}
  negatives = examples["negatives"]
  # The input rows the model gathers (centers for skip-gram, contexts for CBOW) and the output
  # rows the loss uses (labels and candidates), each renumbered 0..U-1 in a local batch.
  input_ids = batch["contexts"] if cbow else batch["center"]
  label_ids = batch["center"][:, None] if cbow else batch["contexts"]  # [B, C]
  input_rows_ids, input_positions = tf.unique(tf.reshape(input_ids, [-1]))  # [U]
  local = dict(batch)
  local["contexts" if cbow else "center"] = tf.reshape(input_positions, tf.shape(input_ids))
  output_rows_ids = None
  local_negatives = negatives
  if loss != "full_softmax":
    sampled = isinstance(negatives, losses.SampledValues)
    negative_ids = negatives.sampled if sampled else negatives  # [G, S] or [B, C, K]
    num_labels = tf.size(label_ids)
    output_rows_ids, output_positions = tf.unique(tf.concat(
        [tf.reshape(label_ids, [-1]), tf.reshape(tf.cast(negative_ids, tf.int32), [-1])], 0))
    local_labels = tf.reshape(output_positions[:num_labels], tf.shape(label_ids))
    local["center" if cbow else "contexts"] = local_labels[:, 0] if cbow else local_labels
    local_negative_ids = tf.cast(tf.reshape(output_positions[num_labels:],
                                            tf.shape(negative_ids)), negative_ids.dtype)
    local_negatives = (negatives._replace(sampled=local_negative_ids) if sampled
                       else local_negative_ids)
  input_rows = tf.nn.embedding_lookup(model.input_embeddings, input_rows_ids)  # [U, d]
  if output_rows_ids is None:
    output_rows = tf.convert_to_tensor(model.output_weights)  # [V, d]
    bias_rows = tf.convert_to_tensor(model.output_bias)  # [V]
  else:
    output_rows = tf.nn.embedding_lookup(model.output_weights, output_rows_ids)  # [U', d]
    bias_rows = tf.nn.embedding_lookup(model.output_bias, output_rows_ids)  # [U']
  with tf.GradientTape() as tape:
    tape.watch([input_rows, output_rows, bias_rows])
    # The model's own `inputs`, reading the local rows instead of the whole table.
    view = types.SimpleNamespace(config=model.config, input_embeddings=input_rows)
    inputs, labels, mask = Word2Vec.inputs(view, local)
    per_example = _loss_on_tables(loss, inputs, labels, mask, output_rows, bias_rows,
                                  local_negatives)
    total = tf.reduce_sum(per_example)
  row_gradients = [tf.convert_to_tensor(gradient) for gradient in
                   tape.gradient(total, [input_rows, output_rows, bias_rows])]
  gradients = [tf.IndexedSlices(row_gradients[0], input_rows_ids)]
  gradients += [gradient if output_rows_ids is None else tf.IndexedSlices(gradient,
                                                                          output_rows_ids)
                for gradient in row_gradients[1:]]
  optimizer.apply(gradients, [model.input_embeddings, model.output_weights, model.output_bias],
                  learning_rate, xla=False)
  return total, tf.reduce_sum(tf.cast(mask, tf.float32))


def _loss_on_tables(loss, inputs, labels, mask, output_weights, output_bias, negative_info):
  """`Trainer._per_example_loss` with the output table (or its rows) passed in."""
  if loss == "sampled_softmax":
    return losses.grouped_sampled_softmax_loss(inputs, labels, mask, output_weights, output_bias,
                                               negative_info)
  if loss == "nce":
    return losses.nce_loss(inputs, labels, mask, output_weights, output_bias, negative_info)
  if loss == "negative_sampling":
    return losses.negative_sampling_loss(inputs, labels, mask, output_weights, output_bias,
                                         negative_info)
  return losses.full_softmax_loss(inputs, labels, mask, output_weights, output_bias)
