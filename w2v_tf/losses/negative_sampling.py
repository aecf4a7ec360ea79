"""word2vec's negative sampling (SGNS; Mikolov et al. 2013b): K noise words against each pair.

Three ways to orient a skip-gram pair and draw its K negatives (`--negatives_per`):
* window: word2vec.c's orientation with pWord2Vec's sharing (HogBatch, Ji et al. 2019): each
  context's input row against the center's output row and K negatives drawn once per window,
  so a window is one small matrix product [2W, d] x [d, 1 + K] ([B, 2W, 1 + K] logits from
  [B, 2W, d] input rows and [B, 1 + K, d] output rows). A negative equal to the center is
  skipped, as word2vec.c skips it.
* center: the center's input row against each context's output row and K negatives drawn once
  per center ([B, K] logits from [B, K, d] rows; each pair's loss adds the same noise term).
* pair: the center's input row against each context's output row and K negatives drawn for
  every pair, as gensim's skip-gram orients and draws them: [B, 2W, K, d] rows gathered and
  scored, 2W times the work for the same number of noise terms.
All three give every pair K noise terms from the same distribution. They differ in how
correlated a window's noise terms are: under `center` all 2W pairs add the very same term (one
input row against the same K rows), so its gradient is one noise term weighted 2W times;
under `window` the K rows meet 2W different input rows; under `pair` nothing is shared.
"""

from __future__ import annotations

import tensorflow as tf

from w2v_tf.losses.base import Loss, PairNegatives, masked


def negative_sampling_loss(inputs, labels, mask, output_weights, output_bias, negatives):
  """word2vec's negative sampling (SGNS): -log σ(u_o·h) - Σ_k log σ(-u_k·h), per pair.

  Args:
    inputs: [B, d] the centers' rows (labels, mask: [B, C] the contexts), or [B, C, d] the
      contexts' rows (labels: [B, 1] the center; mask: [B, C]; negatives [B, K]).
    output_weights: [V, d]; output_bias: [V] (word2vec has no output bias; it stays 0 unless
      trained, and is included for symmetry).
    negatives: [B, C, K] int ids drawn from the noise distribution for every pair, or [B, K]
      shared by a center's pairs.

  Returns:
    [B, C] losses (0 where masked).
  """
  labels = tf.cast(labels, tf.int32)
  negatives = tf.cast(negatives, tf.int32)
  if inputs.shape.rank == 3:  # each context predicts the center: one [C, d] x [d, 1 + K] each
    targets = tf.concat([labels, negatives], 1)  # [B, 1 + K]
    logits = (tf.einsum("bcd,bkd->bck", inputs, tf.gather(output_weights, targets))
              + tf.gather(output_bias, targets)[:, None, :])  # [B, C, 1 + K]
    distinct = tf.cast(tf.not_equal(negatives, labels), logits.dtype)  # [B, K]
    noise_terms = tf.einsum("bck,bk->bc", tf.nn.softplus(logits[..., 1:]), distinct)
    return masked(tf.nn.softplus(-logits[..., 0]) + noise_terms, mask)
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
  """`--loss=negative_sampling`: 5 negatives by default, per window, per center or per pair."""
  name = "negative_sampling"
  default_num_sampled = 5

  def predicts_center_in(self, config) -> bool:
    return config.negatives_per == "window"

  def negatives(self, sampler, tree, labels, seed, config, num_groups, fused):
    del tree, num_groups, fused
    shape = tf.shape(labels)  # [B, C]
    if config.negatives_per in ("window", "center"):  # labels [B, 1] under window
      shape = shape[:1]
    return PairNegatives(sampler.sample(seed, tf.concat([shape, [config.num_sampled]], 0)))

  def per_example(self, inputs, labels, mask, output_weights, output_bias, negatives):
    return negative_sampling_loss(inputs, labels, mask, output_weights, output_bias,
                                  negatives.ids)


LOSS = NegativeSampling()
