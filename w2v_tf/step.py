"""One training step: the loss dispatch, gradients, the sparse update, and the exact full softmax.

Every strategy's runner steps through this module: the single device calls `TrainStep.update`
(with SGD and XLA the loss, its gradient and the row updates compile into one program), the
mirrored runners call `TrainStep.loss_and_gradients` per replica, and the parameter-server
workers call `touched_rows_step`, which computes the same update on the rows a batch touches.
What a loss does (its negatives, its per-example loss, its exact loss, the rows it touches) the
step asks the config's loss object (`w2v_tf.losses`); this module names no loss.
"""

from __future__ import annotations

import types

import numpy as np
import tensorflow as tf

from w2v_tf import losses, pipeline
from w2v_tf.config import ModelConfig
from w2v_tf.huffman import HuffmanTree
from w2v_tf.model import Word2Vec, per_context_inputs
from w2v_tf.sampling import CandidateSampler

# Centers per [centers, V] logit matrix of the exact loss and its gradient. IMDB (V = 42,254),
# one comparison round (batch, held-out, gradient cosine), AMD EPYC 2 cores: 256 centers peaked
# 124 MiB above the training loop and took 1.00 s; 64 centers 56 MiB and 0.76 s.
FULL_SOFTMAX_SLICE = 64
# Centers per draw of the training loss's negatives in `gradient_cosine` (whole groups): the
# draws, so the estimates, stay those of earlier runs whatever the exact loss's slices are.
COSINE_SLICE = 256
# Row slices of a compiled step's loss (see TrainStep.loss_and_gradients). AMD EPYC with AVX-512,
# 2 cores, profile_step, two alternating runs each (ms per step alone / with the live pipeline):
# 1 slice 5.67-6.44 / 7.63-7.80, 2 slices 5.08-5.63 / 6.56-6.64, 4 slices 5.01-6.00 / 6.92-6.97;
# XLA's compilation peaked at 891 / 941 / 1,001 MiB RSS: 2 is as fast as 4 and 60 MiB lighter.
_STEP_PARTS = 2
def labels_of(config: ModelConfig, batch: dict) -> tf.Tensor:
  """[B, C] target ids: the contexts (skip-gram) or the center (CBOW, and a loss that predicts
  the center from each context as word2vec.c's tree does; C = 1)."""
  if config.model == "cbow" or losses.get(config.loss).predicts_center_in(config):
    return batch["center"][:, None]
  return batch["contexts"]


class TrainStep:
  """The step of one batch for a model, an optimizer and a (resolved) model config.

  Attributes:
    loss: the config's loss object (`w2v_tf.losses.base.Loss`).
    tree: the Huffman tree's tables (a loss that needs the tree; None otherwise).
    fused: the compiled step completes the negatives (the labels' expected counts of the
      sampled losses) and applies the update itself (SGD under XLA).
    num_sample_groups: candidate groups per batch (losses whose candidates are shared).
    per_context_inputs: the model's inputs are [B, C, d], a row per context.
  """

  def __init__(self, model: Word2Vec, optimizer, config: ModelConfig, sampler: CandidateSampler,
               batch_size: int, jit_compile: bool, fuse: bool = True,
               tree: HuffmanTree | None = None):
    self.model, self.optimizer, self.config, self.sampler = model, optimizer, config, sampler
    self.loss = losses.get(config.loss)
    if self.loss.needs_tree != (tree is not None):
      raise ValueError(f"a Huffman tree is given with a loss that needs one, and only then "
                       f"(--loss={config.loss})")
    self.tree = self.loss.tree_tables(tree) if tree is not None else None
    self.tables = model.tables
    self.per_context_inputs = per_context_inputs(config)
    self.num_sample_groups = batch_size // config.sample_group_centers
    self.fused = fuse and jit_compile and optimizer.xla_compatible
    self.parts = _STEP_PARTS if self.fused and self.num_sample_groups % _STEP_PARTS == 0 and (
        batch_size >= 1024 * _STEP_PARTS) else 1
    # None of these functions branches or loops on tensors (only on the config and on static
    # shapes), so AutoGraph does not convert them: step 1 came at 19.0-20.2 s from process start
    # (3 runs), against 22.3 / 22.8 s converted (benchmarks/first_step.py, AMD EPYC, 2 cores).
    self._compute = tf.function(self.loss_and_gradients, jit_compile=jit_compile,
                                reduce_retracing=True, autograph=False)
    self._update = tf.function(self._loss_gradients_and_update, jit_compile=self.fused,
                               reduce_retracing=True, autograph=False)
    examples = {"center": tf.TensorSpec([None], tf.int32),
                "contexts": tf.TensorSpec([None, None], tf.int32),
                "mask": tf.TensorSpec([None, None], tf.bool)}
    self._full_softmax = tf.function(self._full_softmax_sum, input_signature=[examples],
                                     autograph=False)
    # Traced per slice shape (whole groups: at most two shapes per held-out set).
    self._train_gradient = tf.function(self._train_loss_gradient, autograph=False)
    self._exact_gradient = tf.function(self._exact_loss_gradient, input_signature=[examples],
                                       autograph=False)

  def negatives(self, batch: dict, seed: tf.Tensor, num_groups: int | None = None,
                fused: bool | None = None):
    """The batch's negatives, drawn statelessly from `seed` [2] (run seed, epoch/batch index).

    For the fused step the loss may leave part to the step (`Loss.complete_negatives`: the
    sampled losses' labels' expected counts), fused by XLA. `num_groups` and `fused` default to
    the training batch's (another batch, e.g. a held-out slice, passes its own).
    """
    return self.loss.negatives(
        self.sampler, self.tree, labels_of(self.config, batch), seed, self.config,
        self.num_sample_groups if num_groups is None else num_groups,
        self.fused if fused is None else fused)

  def loss_and_gradients(self, batch: dict, negative_info, parts: int = 1):
    """(summed loss, pairs, gradients of the tables) of a batch, summed over `parts` row slices.

    The slices (whole candidate groups each) give the same loss and gradients; compiled with
    XLA, slices of 1024-2048 centers run faster than one of 4096 (each slice's [rows, 2W, d]
    gathered output rows stay in cache; measurements at `_STEP_PARTS`).
    """
    whole = {**batch, "negatives": negative_info}
    pieces = [whole] if parts == 1 else [
        pipeline.take_part(whole, part, parts, batch["center"].shape[0], self.num_sample_groups)
        for part in range(parts)]
    model = self.model
    with tf.GradientTape() as tape:
      total = count = 0.0
      for piece in pieces:
        inputs, labels, mask = model.inputs(piece)
        total += tf.reduce_sum(self.loss.per_example(inputs, labels, mask, model.output_weights,
                                                     model.output_bias, piece["negatives"]))
        count += tf.reduce_sum(tf.cast(mask, tf.float32))
    return total, count, tape.gradient(total, self.tables)

  def _loss_gradients_and_update(self, batch, negative_info, learning_rate):
    negative_info = self.loss.complete_negatives(self.sampler, negative_info,
                                                 labels_of(self.config, batch))
    if self.fused:
      total, count, gradients = self.loss_and_gradients(batch, negative_info, self.parts)
    else:
      total, count, gradients = self._compute(batch, negative_info)
    self.optimizer.apply(gradients, self.tables, learning_rate, xla=self.fused)
    return total, count

  def update(self, batch: dict, learning_rate) -> tuple[tf.Tensor, tf.Tensor]:
    """Trains on one batch (with its "negatives"); (summed loss, pairs)."""
    examples = {key: batch[key] for key in ("center", "contexts", "mask")}
    return self._update(examples, batch["negatives"], learning_rate)

  def exact_loss(self, inputs, labels, mask, output_weights, output_bias) -> tf.Tensor:
    """[B, C] exact cross-entropy (`Loss.exact`: the full softmax, or a tree's own)."""
    return self.loss.exact(inputs, labels, mask, output_weights, output_bias, self.tree)

  def _full_softmax_sum(self, batch):
    """(sum of exact losses, number of pairs) of a grouped batch."""
    inputs, labels, mask = self.model.inputs(batch)
    per_example = self.exact_loss(inputs, labels, mask, self.model.output_weights,
                                  self.model.output_bias)
    return tf.reduce_sum(per_example), tf.reduce_sum(tf.cast(mask, tf.float32))

  def full_softmax_mean(self, examples: dict, max_centers: int | None = None) -> float:
    """Exact cross-entropy per pair (`exact_loss`), in `FULL_SOFTMAX_SLICE`-center slices."""
    total = count = 0.0
    rows = len(examples["center"]) if max_centers is None else min(
        max_centers, len(examples["center"]))
    for piece in _exact_slices(examples, rows, self.per_context_inputs):
      loss_sum, pairs = self._full_softmax(piece)
      total += float(loss_sum.numpy())
      count += float(pairs.numpy())
    return total / max(count, 1.0)


  def _input_gradient(self, batch, loss_of):
    """d(sum of `loss_of(inputs, labels, mask, weights, bias)`)/d(inputs): [B, d]."""
    # Whole tables as tensors: a parameter server's ShardedVariable gathers only 1-D indices.
    weights, bias = (tf.convert_to_tensor(self.model.output_weights),
                     tf.convert_to_tensor(self.model.output_bias))
    view = types.SimpleNamespace(config=self.config,
                                 input_embeddings=tf.convert_to_tensor(self.model.input_embeddings))
    inputs, labels, mask = Word2Vec.inputs(view, batch)
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      loss_sum = tf.reduce_sum(loss_of(inputs, labels, mask, weights, bias))
    # Dense: a tree loss gathers the inputs per node, so its gradient is IndexedSlices.
    return tf.convert_to_tensor(tape.gradient(loss_sum, inputs))

  def _train_loss_gradient(self, batch, seed):
    """The training loss's input gradient [B, d] over whole candidate groups, negatives drawn
    from `seed` as the pipeline draws a batch's."""
    rows = batch["center"].shape[0]  # static: the sampler's group count is a Python int
    negatives = self.negatives(batch, seed, rows // self.config.sample_group_centers,
                               fused=False)
    return self._input_gradient(batch, lambda *args: self.loss.per_example(*args, negatives))

  def _exact_loss_gradient(self, batch):
    """The exact loss's input gradient [B, d] (each center's depends on its own rows only)."""
    return self._input_gradient(batch, self.exact_loss)

  def _gradient_dots(self, batch, seed) -> np.ndarray:
    """(g_train . g_exact, |g_train|^2, |g_exact|^2) over a slice of whole candidate groups.

    g_train and g_exact are the gradients of the summed training loss and of the summed exact
    loss with respect to the slice's input vectors ([B, d]); the exact one is computed
    `FULL_SOFTMAX_SLICE` centers at a time (its [centers, V] logits bound the memory).
    """
    g_train = self._train_gradient(batch, seed).numpy().astype(np.float64)
    g_exact = np.concatenate([
        self._exact_gradient(piece).numpy()
        for piece in _exact_slices(batch, len(batch["center"]), self.per_context_inputs)]
    ).astype(np.float64)
    return np.array([np.sum(g_train * g_exact), np.sum(g_train ** 2), np.sum(g_exact ** 2)])

  def gradient_cosine(self, examples: dict, seed: int = 0, max_centers: int | None = None
                      ) -> float:
    """Cosine between the training loss's and the exact loss's gradients w.r.t. the inputs.

    Bengio & Senecal (2008): how far the approximation's direction is from the true one. 1 for
    the exact losses (the full softmax, and hierarchical softmax, which is its own exact loss).
    Computed over `examples` (e.g. the held-out set) in slices of whole candidate groups of at
    most `COSINE_SLICE` centers; padded to whole groups with masked rows.

    Args:
      examples: {"center" [H], "contexts" [H, C], "mask" [H, C]} as numpy.
      seed: seed of the training loss's negatives.
      max_centers: only the first this many centers (None: all).
    """
    group = self.config.sample_group_centers
    rows = len(examples["center"]) if max_centers is None else min(
        max_centers, len(examples["center"]))
    step_rows = max(group, COSINE_SLICE // group * group)
    products = np.zeros(3)
    for start in range(0, rows, step_rows):
      piece = {key: np.asarray(examples[key][start:min(start + step_rows, rows)])
               for key in ("center", "contexts", "mask")}
      pad = -len(piece["center"]) % group  # whole groups: masked rows add nothing
      if pad:
        piece = {key: np.concatenate([value, np.zeros((pad, *value.shape[1:]), value.dtype)])
                 for key, value in piece.items()}
      products += self._gradient_dots(piece, tf.constant([seed, start], tf.int64))
    return float(products[0] / max(np.sqrt(products[1] * products[2]), 1e-30))


def _exact_slices(examples: dict, rows: int, per_context: bool):
  """The first `rows` examples in slices of `FULL_SOFTMAX_SLICE` logit rows (the exact loss's):
  as many centers, or `FULL_SOFTMAX_SLICE // C` where each of the C contexts has its own row.

  Per-context slices of 64 centers gave [64, 10, V] logits: negative sampling per window peaked
  at 1,424 MiB against 971 per center (IMDB, 2 epochs, AMD EPYC AVX-512, `compare`).
  """
  per_slice = FULL_SOFTMAX_SLICE
  if per_context:
    per_slice = max(1, FULL_SOFTMAX_SLICE // max(1, examples["contexts"].shape[1]))
  for start in range(0, rows, per_slice):
    end = min(start + per_slice, rows)
    yield {key: examples[key][start:end] for key in ("center", "contexts", "mask")}


def touched_rows_step(model: Word2Vec, optimizer, examples: dict, learning_rate):
  """One SGD / Adagrad / Adam step that reads and writes only the rows a batch touches.

  The update equals `TrainStep.update`'s, but the tables are read with
  `tf.nn.embedding_lookup` (one gather per shard of a `ShardedVariable`, never the whole
  table) and the loss is computed on those rows; their gradients go back as `IndexedSlices`
  (`ShardedVariable.scatter_*` sends each shard its rows). A loss without negatives (the full
  softmax) reads the whole output table: it needs every row.

  Args:
    model: the tables (plain or sharded variables) and their config.
    optimizer: a `w2v_tf.optim` optimizer over `model.tables`.
    examples: {"center", "contexts", "mask", "negatives"} as `training_data.epoch_batches`
      yields them for an unfused step.
    learning_rate: scalar float32.

  Returns:
    (summed loss, number of pairs), float32 scalars.
  """
  loss = losses.get(model.config.loss)
  # CBOW, and a loss that predicts the center (word2vec.c's tree), read the contexts' input rows
  # and predict the center.
  from_contexts = model.config.model == "cbow" or loss.predicts_center_in(model.config)
  batch = {key: examples[key] for key in ("center", "contexts", "mask")}
  negatives = examples["negatives"]
  # The input rows the model gathers (centers for skip-gram, contexts for CBOW) and the output
  # rows the loss uses (labels and negatives), each renumbered 0..U-1 in a local batch.
  input_ids = batch["contexts"] if from_contexts else batch["center"]
  label_ids = labels_of(model.config, batch)  # [B, C]
  input_rows_ids, input_positions = tf.unique(tf.reshape(input_ids, [-1]))  # [U]
  local = dict(batch)
  local["contexts" if from_contexts else "center"] = tf.reshape(input_positions,
                                                               tf.shape(input_ids))
  output_rows_ids = None
  local_negatives = negatives
  negative_ids = negatives.output_ids()  # [G, S], [B, C, K], [B, L] or None: every row
  if negative_ids is not None:
    num_labels = tf.size(label_ids)
    output_rows_ids, output_positions = tf.unique(tf.concat(
        [tf.reshape(label_ids, [-1]), tf.reshape(tf.cast(negative_ids, tf.int32), [-1])], 0))
    local_labels = tf.reshape(output_positions[:num_labels], tf.shape(label_ids))
    local["center" if from_contexts else "contexts"] = (local_labels[:, 0] if from_contexts
                                                        else local_labels)
    local_negatives = negatives.with_output_ids(tf.cast(
        tf.reshape(output_positions[num_labels:], tf.shape(negative_ids)), negative_ids.dtype))
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
    total = tf.reduce_sum(loss.per_example(inputs, labels, mask, output_rows, bias_rows,
                                           local_negatives))
  # A loss without a bias (`Loss.has_bias`) gives it no gradient (None): the optimizer skips it.
  row_gradients = [None if gradient is None else tf.convert_to_tensor(gradient) for gradient in
                   tape.gradient(total, [input_rows, output_rows, bias_rows])]
  gradients = [tf.IndexedSlices(row_gradients[0], input_rows_ids)]
  gradients += [gradient if output_rows_ids is None or gradient is None
                else tf.IndexedSlices(gradient, output_rows_ids)
                for gradient in row_gradients[1:]]
  optimizer.apply(gradients, model.tables, learning_rate, xla=False)
  return total, tf.reduce_sum(tf.cast(mask, tf.float32))
