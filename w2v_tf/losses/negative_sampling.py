"""word2vec's negative sampling (SGNS; Mikolov et al. 2013b): K noise words against each pair.

Two ways to draw the K negatives (`--negatives_per`):
* center (default): one set of K per center, shared by its up to 2W contexts, as pWord2Vec's
  HogBatch shares them per window (Ji et al. 2019). Each center is scored against its K
  negatives once ([B, K] logits from [B, K, d] rows), and each pair's loss adds that term.
* pair: K drawn for every pair, as word2vec.c and gensim draw them: [B, 2W, K, d] rows gathered
  and scored, 2W times the work for the same number of noise terms.
Both give every pair K noise terms from the same distribution; they differ in that a center's
pairs see the same noise words (their noise terms are correlated), not in expectation.
"""

from __future__ import annotations

import tensorflow as tf

from w2v_tf.losses.base import Loss, PairNegatives, masked


def negative_sampling_loss(inputs, labels, mask, output_weights, output_bias, negatives):
  """word2vec's negative sampling (SGNS): -log σ(u_o·h) - Σ_k log σ(-u_k·h), per pair.

  Args:
    inputs: [B, d]; labels, mask: [B, C]; output_weights: [V, d]; output_bias: [V] (word2vec
      has no output bias; it stays 0 unless trained, and is included for symmetry).
    negatives: [B, C, K] int ids drawn from the noise distribution for every pair, or [B, K]
      shared by a center's pairs.

  Returns:
    [B, C] losses (0 where masked).
  """
  labels = tf.cast(labels, tf.int32)
  negatives = tf.cast(negatives, tf.int32)
  true_logits = (tf.einsum("bd,bcd->bc", inputs, tf.gather(output_weights, labels))
                 + tf.gather(output_bias, labels))  # [B, C]
  if negatives.shape.rank == 2:  # shared by the center's pairs
    negative_logits = (tf.einsum("bd,bkd->bk", inputs, tf.gather(output_weights, negatives))
                       + tf.gather(output_bias, negatives))  # [B, K]
    noise_terms = tf.reduce_sum(tf.nn.softplus(negative_logits), -1, keepdims=True)  # [B, 1]
  else:
    negative_logits = (tf.einsum("bd,bckd->bck", inputs, tf.gather(output_weights, negatives))
                       + tf.gather(output_bias, negatives))  # [B, C, K]
    noise_terms = tf.reduce_sum(tf.nn.softplus(negative_logits), -1)  # [B, C]
  return masked(tf.nn.softplus(-true_logits) + noise_terms, mask)


class NegativeSampling(Loss):
  """`--loss=negative_sampling`: 5 negatives by default, per center or per pair."""
  name = "negative_sampling"
  default_num_sampled = 5

  def negatives(self, sampler, tree, labels, seed, config, num_groups, fused):
    del tree, num_groups, fused
    shape = tf.shape(labels)  # [B, C]
    if config.negatives_per == "center":
      shape = shape[:1]
    return PairNegatives(sampler.sample(seed, tf.concat([shape, [config.num_sampled]], 0)))

  def per_example(self, inputs, labels, mask, output_weights, output_bias, negatives):
    return negative_sampling_loss(inputs, labels, mask, output_weights, output_bias,
                                  negatives.ids)


LOSS = NegativeSampling()
