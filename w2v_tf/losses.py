"""Word2vec losses as pure functions of tensors: sampled softmax (default), full softmax, NCE,
negative sampling, hierarchical softmax.

All functions take a grouped batch: `inputs` [B, d] (a center's input embedding for skip-gram, the
masked mean of the context embeddings for CBOW), `labels` [B, C] target ids and `mask` [B, C]
(C = 2*window for skip-gram, 1 for CBOW), and return per-example losses [B, C] that are 0 where
`mask` is False. Summing them gives word2vec's objective: the learning rate then means what it
means in word2vec and gensim (a per-pair step size).

`grouped_sampled_softmax_loss` computes exactly what `tf.nn.sampled_softmax_loss` computes for
each (input, label) pair given the same `sampled_values` (Jean et al. 2015; subtract log Q,
accidental hits removed), but scores each center against the shared sampled candidates once
instead of once per pair and never builds TF's [pairs, 1 + S] logit matrix; tests/test_losses.py
checks losses and gradients against TF's function.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf


class SampledValues(NamedTuple):
  """Candidates shared by groups of centers, as `tf.random.*_candidate_sampler` returns them.

  The batch's B centers are split into G consecutive groups of B/G centers; every pair of a group
  is scored against that group's S candidates (G = 1: one set for the whole batch, exactly
  `tf.nn.sampled_softmax_loss` over the batch; G > 1: one such call per group).

  Attributes:
    sampled: [G, S] (or [S] for G = 1) int64 candidate ids, distinct within a group.
    true_expected_count: [B, C] float32 expected count of each label in its group's sample.
    sampled_expected_count: [G, S] (or [S]) float32 expected count of each candidate.
  """
  sampled: tf.Tensor
  true_expected_count: tf.Tensor
  sampled_expected_count: tf.Tensor


class TreePaths(NamedTuple):
  """The Huffman-tree paths of a batch's centers (`w2v_tf.huffman`), for hierarchical softmax.

  Attributes:
    points: [B, L] int32 inner-node ids (rows of the output table), root first.
    signs: [B, L] float32: +1 (code 0), -1 (code 1), 0 past the end of the path.
  """
  points: tf.Tensor
  signs: tf.Tensor


def _masked(losses: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
  return tf.where(mask, losses, tf.zeros_like(losses))


def _candidate_logits(inputs, labels, output_weights, output_bias, sampled_values):
  """Logits minus log Q: true [B, C], sampled [B, S], and which labels were sampled [B, C]."""
  sampled = tf.cast(sampled_values.sampled, tf.int32)
  sampled_expected = sampled_values.sampled_expected_count
  if sampled.shape.rank == 1:
    sampled, sampled_expected = sampled[None, :], sampled_expected[None, :]
  num_groups, num_sampled = tf.shape(sampled)[0], tf.shape(sampled)[1]
  labels = tf.cast(labels, tf.int32)
  true_logits = (tf.einsum("bd,bcd->bc", inputs, tf.gather(output_weights, labels))
                 + tf.gather(output_bias, labels)
                 - tf.math.log(sampled_values.true_expected_count))  # [B, C]
  grouped_inputs = tf.reshape(inputs, [num_groups, -1, tf.shape(inputs)[1]])  # [G, B/G, d]
  sampled_logits = (tf.einsum("gnd,gsd->gns", grouped_inputs, tf.gather(output_weights, sampled))
                    + (tf.gather(output_bias, sampled) - tf.math.log(sampled_expected))[:, None, :])
  sampled_logits = tf.reshape(sampled_logits, [-1, num_sampled])  # [B, S]
  grouped_labels = tf.reshape(labels, [num_groups, -1, tf.shape(labels)[1]])  # [G, B/G, C]
  hit = tf.reduce_any(tf.equal(grouped_labels[..., None], sampled[:, None, None, :]), -1)
  return true_logits, sampled_logits, tf.reshape(hit, tf.shape(labels))


def grouped_sampled_softmax_loss(inputs, labels, mask, output_weights, output_bias,
                                 sampled_values: SampledValues, remove_accidental_hits=True):
  """Sampled softmax loss per (input, label) pair, candidates shared by groups of centers.

  Args:
    inputs: [B, d] float32.
    labels: [B, C] int target ids.
    mask: [B, C] bool.
    output_weights: [V, d] variable or tensor.
    output_bias: [V].
    sampled_values: the groups' candidates (see `SampledValues`).
    remove_accidental_hits: as in `tf.nn.sampled_softmax_loss`.

  Returns:
    [B, C] float32 losses (0 where masked).
  """
  true_logits, sampled_logits, hit = _candidate_logits(inputs, labels, output_weights,
                                                       output_bias, sampled_values)
  sampled_normalizer = tf.reduce_logsumexp(sampled_logits, axis=-1, keepdims=True)  # [B, 1]
  # TF's loss is logsumexp([true, sampled with the label's own candidate removed]) - true.
  # A label that was also sampled (an accidental hit) has the same logit as its candidate (same
  # weights, bias and expected count), so the true logit just takes the candidate's place and
  # the normalizer is the sampled one; otherwise the true logit is added to it. No [B, C, S]
  # logit tensor is needed.
  if not remove_accidental_hits:
    hit = tf.zeros_like(hit)
  normalizer = tf.where(hit, sampled_normalizer, tf.math.reduce_logsumexp(
      tf.stack([true_logits, tf.broadcast_to(sampled_normalizer, tf.shape(true_logits))]), 0))
  return _masked(normalizer - true_logits, mask)


def nce_loss(inputs, labels, mask, output_weights, output_bias, sampled_values: SampledValues):
  """`tf.nn.nce_loss` per pair (Gutmann & Hyvärinen 2010; Mnih & Teh 2012), grouped candidates.

  Sigmoid cross-entropy of the true logit (label 1) and of every sampled logit (label 0), both
  minus log Q; accidental hits are kept, as `tf.nn.nce_loss` does by default.

  Returns:
    [B, C] losses (0 where masked).
  """
  true_logits, sampled_logits, _ = _candidate_logits(inputs, labels, output_weights,
                                                     output_bias, sampled_values)
  noise_term = tf.reduce_sum(tf.nn.softplus(sampled_logits), axis=-1, keepdims=True)  # [B, 1]
  return _masked(tf.nn.softplus(-true_logits) + noise_term, mask)


def full_softmax_loss(inputs, labels, mask, output_weights, output_bias):
  """Exact softmax cross-entropy over the whole vocabulary, per pair.

  Args:
    inputs: [B, d]; labels, mask: [B, C]; output_weights: [V, d]; output_bias: [V].

  Returns:
    [B, C] losses (0 where masked). One [B, V] logit matrix is shared by a center's contexts.
  """
  logits = tf.matmul(inputs, output_weights, transpose_b=True) + output_bias  # [B, V]
  log_normalizer = tf.reduce_logsumexp(logits, axis=-1, keepdims=True)  # [B, 1]
  label_logits = tf.gather(logits, tf.cast(labels, tf.int32), batch_dims=1)  # [B, C]
  return _masked(log_normalizer - label_logits, mask)


def negative_sampling_loss(inputs, labels, mask, output_weights, output_bias, negatives):
  """word2vec's negative sampling (SGNS): -log σ(u_o·h) - Σ_k log σ(-u_k·h), per pair.

  Args:
    inputs: [B, d]; labels, mask: [B, C]; output_weights: [V, d]; output_bias: [V] (word2vec
      has no output bias; it stays 0 unless trained, and is included for symmetry).
    negatives: [B, C, K] int ids drawn from the noise distribution for every pair.

  Returns:
    [B, C] losses (0 where masked).
  """
  labels = tf.cast(labels, tf.int32)
  negatives = tf.cast(negatives, tf.int32)
  true_logits = (tf.einsum("bd,bcd->bc", inputs, tf.gather(output_weights, labels))
                 + tf.gather(output_bias, labels))  # [B, C]
  negative_logits = (tf.einsum("bd,bckd->bck", inputs, tf.gather(output_weights, negatives))
                     + tf.gather(output_bias, negatives))  # [B, C, K]
  losses = tf.nn.softplus(-true_logits) + tf.reduce_sum(tf.nn.softplus(negative_logits), -1)
  return _masked(losses, mask)


def hierarchical_softmax_loss(inputs, labels, mask, output_weights, paths: TreePaths,
                              max_node_pairs: float | None = None):
  """-log P(center | h) under word2vec's tree: -sum_j log sigmoid(sign_j h . u_j), per pair.

  P is a normalised distribution over the vocabulary (the branch probabilities at every inner
  node sum to 1), so this is an exact cross-entropy, comparable with the full softmax's. As in
  word2vec.c and gensim, the tree predicts the center: in skip-gram from each context's vector
  (all of a center's pairs share its path, so the logits are one batched matmul [C, d] x [d, L]
  per center; predicting each context along its own path gathered [B, C, L, d] node rows and
  ran at 7k words/s on IMDB), in CBOW from the contexts' mean. The output table's first V - 1
  rows are the inner-node vectors u (word2vec's syn1); the gathers make their gradients
  `IndexedSlices` of the nodes the batch's paths touch.

  Args:
    inputs: [B, K, d] a vector per pair (skip-gram: the contexts', K = C) or [B, d] (CBOW).
    labels: unused (the paths encode the centers); mask: [B, K].
    output_weights: [V, d]. No bias, as in word2vec: a node's bias moves by the learning rate
      times the number of pairs on its path whatever the inputs, and with one (the other
      losses' output_bias) the held-out loss rose from 8.2 to 10.3 at step 1 on IMDB.
    paths: the centers' `TreePaths` ([B, L]).
    max_node_pairs: if set, an inner node on the paths of n > max_node_pairs pairs gets its
      summed gradient scaled by max_node_pairs / n (the loss and the inputs' gradients are
      unchanged). Why: the root is on every path, and word2vec applies its updates one pair
      at a time; summed over a batch of ~24k pairs, SGD at word2vec's rate diverged within
      40 steps on IMDB. A step on a node is stable while lr * n * |h|^2 / 4 < 2 (|h| ~ 1 once
      trained: n < 320 at lr 0.025); the sampled losses bound the same sum with their groups
      of ~380 pairs.

  Returns:
    [B, K] losses (0 where masked).
  """
  del labels
  if inputs.shape.rank == 2:
    inputs = inputs[:, None, :]
  node_rows = tf.gather(output_weights, paths.points)  # [B, L, d]
  on_path = tf.abs(paths.signs)  # [B, L]
  if max_node_pairs is not None:
    pairs = tf.math.unsorted_segment_sum(
        on_path * tf.reduce_sum(tf.cast(mask, tf.float32), 1, keepdims=True), paths.points,
        tf.shape(output_weights)[0])  # [V] pairs whose path holds each node
    scale = tf.gather(tf.minimum(1.0, max_node_pairs / tf.maximum(pairs, 1.0)),
                      paths.points)[..., None]  # [B, L, 1]
    node_rows = node_rows * scale + tf.stop_gradient(node_rows * (1.0 - scale))  # same value
  logits = tf.einsum("bkd,bld->bkl", inputs, node_rows)  # [B, K, L]
  per_node = on_path[:, None, :] * tf.nn.softplus(-paths.signs[:, None, :] * logits)
  return _masked(tf.reduce_sum(per_node, -1), mask)
