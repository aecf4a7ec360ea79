"""Assembles a training run from an `ExperimentConfig`: runner, data, model dir, state, step, callbacks."""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from w2v_tf import huffman, losses, monitor, run_state, strategies, training_data
from w2v_tf.config import ExperimentConfig
from w2v_tf.model import Word2Vec
from w2v_tf.model_dir import prepare_model_dir
from w2v_tf.optim import make_optimizer
from w2v_tf.sampling import make_sampler
from w2v_tf.step import TrainStep
from w2v_tf.trainer import Trainer


def build_trainer(experiment: ExperimentConfig, extra_callbacks: Sequence[monitor.Callback] = (),
                  log: Callable[[str], None] | None = None,
                  runner: strategies.Runner | None = None) -> Trainer:
  """Assembles a `Trainer` from a config: runner, data, model dir, state, step, callbacks.

  Args:
    experiment: the run's config (defaults are resolved and values validated here).
    extra_callbacks: placed between the console log and TensorBoard (e.g. analogies).
    log: prints one line (default: stderr).
    runner: how steps run (default: the one `experiment.runtime.strategy` names).
  """
  log = log or (lambda message: print(message, file=sys.stderr, flush=True))
  experiment = experiment.resolved()
  experiment.validate()
  runner = runner or strategies.make_runner(experiment.runtime, log)
  model_dir = None
  try:
    experiment = runner.adapt(experiment)
    data_config, model_config, train = experiment.data, experiment.model, experiment.train
    loss = losses.get(model_config.loss)
    data = training_data.prepare_data(
        data_config, model_config.num_sampled if loss.shares_candidates else None,
        experiment.runtime.progress, train.heldout_centers)
    fingerprint = data.fingerprint
    # Reads only: the model dir is written once the checkpoint is restored (below).
    model_dir = prepare_model_dir(experiment, len(data.vocab), fingerprint, log)
    with runner.scope():
      model = Word2Vec(len(data.vocab), model_config, data_config.seed)
      optimizer = make_optimizer(train.optimizer, model.tables)
      state = run_state.RunState(model, optimizer, train.model_dir, train.keep_checkpoints, log)
    sampler = make_sampler(model_config.sampler, data.vocab.counts, model_config.sampler_power)
    tree = huffman.build_huffman_tree(data.vocab.counts) if loss.needs_tree else None
    step = TrainStep(model, optimizer, model_config, sampler, data_config.batch_size,
                     experiment.runtime.jit_compile, fuse=runner.fuses_updates, tree=tree)
    callbacks = monitor.default_callbacks(train.model_dir, experiment.runtime.progress, log,
                                          extra_callbacks)
    trainer = Trainer(experiment, data, runner, model_dir, state, step, callbacks, log)
    runner.restore(state, train.overwrite)  # a checkpoint that does not fit: nothing written
    model_dir.write(data.vocab)
    state.reopen_manager()
  except BaseException:
    if model_dir is not None:
      model_dir.release()
    runner.close()
    raise
  description = runner.describe()
  if description:
    log(f"strategy {experiment.runtime.strategy}: {description}")
  return trainer

