"""What the sampled softmax and NCE share: candidates drawn per group of centers, and their logits.

A group of `--sample_group_centers` consecutive centers shares one set of S candidates (see
`SampledValues`): each center is scored against them once, as one [B/G, d] x [d, S] product per
group, instead of once per pair.
"""

from __future__ import annotations

import tensorflow as tf

from w2v_tf.losses.base import Loss, SampledValues


def candidate_logits(inputs, labels, output_weights, output_bias, sampled_values: SampledValues):
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


class CandidateLoss(Loss):
  """A loss over candidates shared per group of centers, drawn from the run's proposal."""
  default_num_sampled = 64
  shares_candidates = True

  def negatives(self, sampler, tree, labels, seed, config, num_groups, fused):
    del tree
    if fused:  # the step adds the labels' expected counts (`complete_negatives`), fused by XLA
      return sampler.sample_candidates(seed, config.num_sampled, num_groups)
    return sampler.sample_unique(seed, config.num_sampled, labels, num_groups)

  def complete_negatives(self, sampler, negatives, labels):
    if isinstance(negatives, SampledValues):
      return negatives
    return sampler.with_true_expected_counts(negatives, labels)
