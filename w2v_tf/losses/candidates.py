"""What the sampled softmax and NCE share: candidates drawn per group of centers, and their logits.

A group of `--sample_group_centers` consecutive centers shares one set of S candidates (see
`SampledValues`): each center is scored against them once, as one [B/G, d] x [d, S] product per
group, instead of once per pair.
"""

from __future__ import annotations

import tensorflow as tf

from w2v_tf.losses.base import Loss, SampledValues


def candidate_logits(inputs, labels, output_weights, output_bias, sampled_values: SampledValues):
  """Logits minus log Q: true [B, C] and sampled [B, S]."""
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
  return true_logits, tf.reshape(sampled_logits, [-1, num_sampled])  # [B, S]


def sampled_hits(labels, sampled, vocab_size) -> tf.Tensor:
  """[B, C] bool: which labels are among their group's candidates (accidental hits).

  A table holds, per word, one bit per group that sampled it ([V, ceil(G/64)] int64; the bits
  are added, which is an OR because a group's candidates are distinct), and each label reads
  its group's bit: B*C lookups instead of comparing every label with its group's S candidates.
  In the compiled default step the [G, B/G, C, S] comparison was 14% of XLA's op time (profile
  of 1 epoch of IMDB, one core, AMD EPYC with AVX2); alone, 0.95 ms against 0.35 ms a batch.

  Args:
    labels: [B, C] int ids.
    sampled: [G, S] (or [S]) int ids, distinct within a group; G divides B.
    vocab_size: rows of the table the ids index.
  """
  sampled = tf.cast(sampled, tf.int32)
  if sampled.shape.rank == 1:
    sampled = sampled[None, :]
  labels = tf.cast(labels, tf.int32)
  num_groups, num_sampled = tf.shape(sampled)[0], tf.shape(sampled)[1]
  groups = tf.range(num_groups)  # [G]
  words, bits = groups // 64, tf.cast(groups % 64, tf.int64)  # each group's word and bit
  table = tf.tensor_scatter_nd_add(
      tf.zeros(tf.stack([vocab_size, (num_groups + 63) // 64]), tf.int64),
      tf.reshape(tf.stack([sampled, tf.broadcast_to(words[:, None], [num_groups, num_sampled])],
                          -1), [-1, 2]),
      tf.reshape(tf.broadcast_to(tf.bitwise.left_shift(tf.ones([], tf.int64), bits)[:, None],
                                 [num_groups, num_sampled]), [-1]))  # [V, ceil(G/64)]
  label_group = tf.repeat(groups, tf.shape(labels)[0] // num_groups)  # [B]
  label_words = tf.gather_nd(table, tf.stack(
      [labels, tf.broadcast_to((label_group // 64)[:, None], tf.shape(labels))], -1))  # [B, C]
  label_bits = tf.cast(label_group % 64, tf.int64)[:, None]  # [B, 1]
  return tf.not_equal(tf.bitwise.bitwise_and(tf.bitwise.right_shift(label_words, label_bits), 1),
                      0)


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
