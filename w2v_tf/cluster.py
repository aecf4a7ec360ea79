"""The cluster side of tf.distribute: TF_CONFIG, servers, creating the strategy, logical CPUs.

`make_strategy` creates the `tf.distribute.Strategy` a `RuntimeConfig` names, once per process
and setting; `task_info` reads this process's role from TF_CONFIG; `serve_if_server_task` turns
a parameter-server cluster's "worker" and "ps" tasks into servers. How steps run under each
strategy is `w2v_tf.strategies`.
"""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf

from w2v_tf.config import RuntimeConfig
from w2v_tf.errors import UsageError, UserError

# ParameterServerStrategy splits a table into shards of at least this many bytes, at most one
# per parameter server: every embedding table of a real vocabulary is split across all of them,
# while tiny variables (counters) stay whole.
PS_MIN_SHARD_BYTES = 4 << 10


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


def tf_config_resolver(strategy_name: str):
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
  resolver = tf_config_resolver(strategy_name)
  if resolver is None or resolver.task_type not in ("worker", "ps"):
    return False
  os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")  # notice lost peers quickly (TF's advice)
  server = tf.distribute.Server(resolver.cluster_spec(), job_name=resolver.task_type,
                                task_index=resolver.task_id,
                                protocol=resolver.rpc_layer or "grpc", start=True)
  server.join()
  return True


_made = {}  # (strategy, cpu_devices, TF_CONFIG) -> (strategy, TaskInfo)


def make_strategy(runtime: RuntimeConfig) -> tuple[tf.distribute.Strategy, TaskInfo]:
  """The strategy named by `runtime.strategy` (not "default") and this task's role.

  One strategy per setting and process, reused by later trainers: TF numbers its collective
  ops per strategy object, so two MirroredStrategy objects in one process would mix up their
  all-reduces, and a process joins a cluster only once.
  """
  key = (runtime.strategy, runtime.cpu_devices, os.environ.get("TF_CONFIG"))
  if key not in _made:
    _made[key] = _new_strategy(runtime)
  return _made[key]


def _new_strategy(runtime: RuntimeConfig) -> tuple[tf.distribute.Strategy, TaskInfo]:
  name = runtime.strategy
  if name == "mirrored":
    configure_cpu_devices(runtime.cpu_devices)
    devices = None  # all local GPUs, or the CPU
    if runtime.cpu_devices:
      devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices), task_info(None)
  resolver = tf_config_resolver(name)
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
