"""Sampled softmax (Jean et al. 2015), the default loss: candidates shared per group of centers.

`grouped_sampled_softmax_loss` computes exactly what `tf.nn.sampled_softmax_loss` computes for
each (input, label) pair given the same `sampled_values` (subtract log Q, accidental hits
removed), but scores each center against the shared sampled candidates once instead of once per
pair and never builds TF's [pairs, 1 + S] logit matrix; tests/test_losses.py checks losses and
gradients against TF's function.
"""

from __future__ import annotations

import tensorflow as tf

from w2v_tf.losses.base import SampledValues, masked
from w2v_tf.losses.candidates import CandidateLoss, candidate_logits, sampled_hits


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
  true_logits, sampled_logits = candidate_logits(inputs, labels, output_weights, output_bias,
                                                  sampled_values)
  sampled_normalizer = tf.reduce_logsumexp(sampled_logits, axis=-1, keepdims=True)  # [B, 1]
  # TF's loss is logsumexp([true, sampled with the label's own candidate removed]) - true.
  # A label that was also sampled (an accidental hit) has the same logit as its candidate (same
  # weights, bias and expected count), so the true logit just takes the candidate's place and
  # the normalizer is the sampled one; otherwise the true logit is added to it. No [B, C, S]
  # logit tensor is needed.
  hit = (sampled_hits(labels, sampled_values.sampled, tf.shape(output_weights)[0])
         if remove_accidental_hits else tf.zeros(tf.shape(true_logits), tf.bool))
  normalizer = tf.where(hit, sampled_normalizer, tf.math.reduce_logsumexp(
      tf.stack([true_logits, tf.broadcast_to(sampled_normalizer, tf.shape(true_logits))]), 0))
  return masked(normalizer - true_logits, mask)


class SampledSoftmax(CandidateLoss):
  """`--loss=sampled_softmax`: 64 candidates per group by default."""
  name = "sampled_softmax"

  def per_example(self, inputs, labels, mask, output_weights, output_bias, negatives):
    return grouped_sampled_softmax_loss(inputs, labels, mask, output_weights, output_bias,
                                        negatives)


LOSS = SampledSoftmax()
