"""Word2vec losses as pure functions of tensors: sampled softmax (default), full softmax, NCE, negative sampling.

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
  """Candidates shared by a batch, as `tf.random.*_candidate_sampler` returns them.

  Attributes:
    sampled: [S] int64 candidate ids.
    true_expected_count: [B, C] float32 expected count of each label in the sample.
    sampled_expected_count: [S] float32 expected count of each candidate.
  """
  sampled: tf.Tensor
  true_expected_count: tf.Tensor
  sampled_expected_count: tf.Tensor


def _masked(losses: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
  return tf.where(mask, losses, tf.zeros_like(losses))


def grouped_sampled_softmax_loss(inputs, labels, mask, output_weights, output_bias,
                                 sampled_values: SampledValues, remove_accidental_hits=True):
  """Sampled softmax loss per (input, label) pair, candidates shared by the batch.

  Args:
    inputs: [B, d] float32.
    labels: [B, C] int target ids.
    mask: [B, C] bool.
    output_weights: [V, d] variable or tensor.
    output_bias: [V].
    sampled_values: the batch's candidates.
    remove_accidental_hits: as in `tf.nn.sampled_softmax_loss`.

  Returns:
    [B, C] float32 losses (0 where masked).
  """
  sampled = tf.cast(sampled_values.sampled, tf.int32)  # [S]
  labels = tf.cast(labels, tf.int32)
  true_weights = tf.gather(output_weights, labels)  # [B, C, d]
  true_logits = (tf.einsum("bd,bcd->bc", inputs, true_weights) + tf.gather(output_bias, labels)
                 - tf.math.log(sampled_values.true_expected_count))  # [B, C]
  sampled_logits = (tf.matmul(inputs, tf.gather(output_weights, sampled), transpose_b=True)
                    + tf.gather(output_bias, sampled)
                    - tf.math.log(sampled_values.sampled_expected_count))  # [B, S]
  sampled_normalizer = tf.reduce_logsumexp(sampled_logits, axis=-1, keepdims=True)  # [B, 1]
  # TF's loss is logsumexp([true, sampled with the label's own candidate removed]) - true.
  # A label that was also sampled (an accidental hit) has the same logit as its candidate (same
  # weights, bias and expected count), so the true logit just takes the candidate's place and
  # the normalizer is the sampled one; otherwise the true logit is added to it. No [B, C, S]
  # tensor is needed.
  if remove_accidental_hits:
    vocab_size = tf.shape(output_bias)[0]
    is_sampled = tf.scatter_nd(sampled[:, None], tf.ones_like(sampled, tf.bool), [vocab_size])
    hit = tf.gather(is_sampled, labels)  # [B, C]
  else:
    hit = tf.zeros_like(labels, tf.bool)
  normalizer = tf.where(hit, sampled_normalizer, tf.math.reduce_logsumexp(
      tf.stack([true_logits, tf.broadcast_to(sampled_normalizer, tf.shape(true_logits))]), 0))
  return _masked(normalizer - true_logits, mask)


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


def _flatten_pairs(inputs, labels):
  """[B, d], [B, C] -> per-pair inputs [B*C, d] and labels [B*C, 1] int64."""
  num_contexts = tf.shape(labels)[1]
  pair_inputs = tf.repeat(inputs, num_contexts, axis=0)
  return pair_inputs, tf.reshape(tf.cast(labels, tf.int64), [-1, 1])


def nce_loss(inputs, labels, mask, output_weights, output_bias, sampled_values: SampledValues,
             num_classes: int):
  """`tf.nn.nce_loss` per pair (Gutmann & Hyvärinen 2010; Mnih & Teh 2012), candidates shared.

  Returns:
    [B, C] losses (0 where masked).
  """
  pair_inputs, pair_labels = _flatten_pairs(inputs, labels)
  losses = tf.nn.nce_loss(
      weights=output_weights, biases=output_bias, labels=pair_labels, inputs=pair_inputs,
      num_sampled=tf.size(sampled_values.sampled), num_classes=num_classes,
      sampled_values=(sampled_values.sampled,
                      tf.reshape(sampled_values.true_expected_count, [-1, 1]),
                      sampled_values.sampled_expected_count))
  return _masked(tf.reshape(losses, tf.shape(labels)), mask)


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
