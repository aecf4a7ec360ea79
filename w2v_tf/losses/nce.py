"""Noise-contrastive estimation (Gutmann & Hyvärinen 2010; Mnih & Teh 2012), grouped candidates."""

from __future__ import annotations

import tensorflow as tf

from w2v_tf.losses.base import SampledValues, masked
from w2v_tf.losses.candidates import CandidateLoss, candidate_logits


def nce_loss(inputs, labels, mask, output_weights, output_bias, sampled_values: SampledValues):
  """`tf.nn.nce_loss` per pair (Gutmann & Hyvärinen 2010; Mnih & Teh 2012), grouped candidates.

  Sigmoid cross-entropy of the true logit (label 1) and of every sampled logit (label 0), both
  minus log Q; accidental hits are kept, as `tf.nn.nce_loss` does by default.

  Returns:
    [B, C] losses (0 where masked).
  """
  true_logits, sampled_logits = candidate_logits(inputs, labels, output_weights, output_bias,
                                                  sampled_values)
  noise_term = tf.reduce_sum(tf.nn.softplus(sampled_logits), axis=-1, keepdims=True)  # [B, 1]
  return masked(tf.nn.softplus(-true_logits) + noise_term, mask)


class NCE(CandidateLoss):
  """`--loss=nce`: `tf.nn.nce_loss` per pair, 64 candidates per group by default."""
  name = "nce"

  def per_example(self, inputs, labels, mask, output_weights, output_bias, negatives):
    return nce_loss(inputs, labels, mask, output_weights, output_bias, negatives)


LOSS = NCE()
