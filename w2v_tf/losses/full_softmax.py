"""The exact softmax over the whole vocabulary: a loss to train with, and every loss's reference."""

from __future__ import annotations

import tensorflow as tf

from w2v_tf.losses.base import Loss, masked


def full_softmax_loss(inputs, labels, mask, output_weights, output_bias):
  """Exact softmax cross-entropy over the whole vocabulary, per pair.

  Args:
    inputs: [B, d]; labels, mask: [B, C]; output_weights: [V, d]; output_bias: [V]. Or, for a
      loss in which each context predicts the center, inputs [B, C, d] and labels [B, 1].

  Returns:
    [B, C] losses (0 where masked). One [B, V] logit matrix is shared by a center's contexts
    ([B, C, V] when each context predicts the center).
  """
  if inputs.shape.rank == 3:
    logits = tf.einsum("bcd,vd->bcv", inputs, output_weights) + output_bias  # [B, C, V]
    centers = tf.broadcast_to(tf.cast(labels, tf.int32), tf.shape(mask))  # [B, C]
    label_logits = tf.gather(logits, centers[..., None], batch_dims=2)[..., 0]  # [B, C]
    return masked(tf.reduce_logsumexp(logits, axis=-1) - label_logits, mask)
  logits = tf.matmul(inputs, output_weights, transpose_b=True) + output_bias  # [B, V]
  log_normalizer = tf.reduce_logsumexp(logits, axis=-1, keepdims=True)  # [B, 1]
  label_logits = tf.gather(logits, tf.cast(labels, tf.int32), batch_dims=1)  # [B, C]
  return masked(log_normalizer - label_logits, mask)


class FullSoftmax(Loss):
  """`--loss=full_softmax`: no negatives; reads (and updates) the whole output table."""
  name = "full_softmax"
  reads_whole_output_table = True

  def per_example(self, inputs, labels, mask, output_weights, output_bias, negatives):
    del negatives
    return full_softmax_loss(inputs, labels, mask, output_weights, output_bias)


LOSS = FullSoftmax()
