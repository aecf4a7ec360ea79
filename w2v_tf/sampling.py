"""Negative candidates from the unigram distribution raised to 0.75 (Mikolov et al. 2013).

`UnigramSampler.sample_unique` draws exactly what `tf.random.fixed_unigram_candidate_sampler(
unique=True, distortion=0.75, unigrams=counts)` draws: candidates are drawn with replacement until
`num_sampled` distinct ones are found, and the expected counts are
`-expm1(num_tries * log1p(-p))` (`p * num_sampled` when no draw was rejected), as TF's
range_sampler computes them. Draws are stateless, from a seed the trainer derives from (run seed,
epoch, batch index), so the input pipeline can draw a batch's candidates ahead of the training
step, and a resumed run draws exactly the candidates it would have drawn (TF's op keeps its state
in the kernel, out of reach of a checkpoint). tests/test_sampling.py compares both.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from w2v_tf.losses import SampledValues


class UnigramSampler:
  """Noise distribution over the vocabulary, P(w) ∝ count(w)^distortion."""

  def __init__(self, counts: np.ndarray, distortion: float = 0.75):
    weights = np.asarray(counts, np.float64) ** distortion
    probabilities = weights / weights.sum()
    self.vocab_size = len(probabilities)
    self.probabilities = tf.constant(probabilities, tf.float32)  # [V]
    cdf = np.cumsum(probabilities)
    cdf[-1] = 1.0
    self._cdf = tf.constant(cdf, tf.float32)  # [V]

  def sample(self, seed, shape) -> tf.Tensor:
    """Ids drawn with replacement, int32 of the given shape; `seed` is a [2] int stateless seed."""
    uniform = tf.random.stateless_uniform(shape, seed, dtype=tf.float32)
    flat = tf.searchsorted(self._cdf, tf.reshape(uniform, [-1]), side="right")
    return tf.reshape(tf.minimum(tf.cast(flat, tf.int32), self.vocab_size - 1), shape)

  def expected_count(self, ids: tf.Tensor, num_tries: tf.Tensor, num_sampled: int) -> tf.Tensor:
    """Expected number of times each id appears in the sample, as TF's samplers report it."""
    probability = tf.gather(self.probabilities, tf.cast(ids, tf.int32))
    num_tries = tf.cast(num_tries, tf.float32)
    return tf.where(tf.equal(num_tries, float(num_sampled)), probability * num_sampled,
                    -tf.math.expm1(num_tries * tf.math.log1p(-probability)))

  def sample_unique(self, seed, num_sampled: int, true_classes: tf.Tensor,
                    num_groups: int = 1) -> SampledValues:
    """`num_sampled` distinct candidates for each of `num_groups` groups of centers.

    Each group's candidates are drawn as TF's unique sampler draws them: with replacement until
    `num_sampled` distinct ids have come up, `num_tries` being the number of draws that took.

    Args:
      seed: [2] int stateless seed.
      num_sampled: S (< vocabulary size).
      true_classes: [B, C] label ids (for their expected counts); B divisible by `num_groups`.
      num_groups: G, groups of B/G consecutive centers with a candidate set each.

    Returns:
      SampledValues(sampled [G, S] int64, true_expected_count [B, C],
      sampled_expected_count [G, S]).
    """
    block = [num_groups, self.draws_per_group(num_sampled)]
    draws = self.sample(seed, block)
    sampled_values, enough = self._first_distinct(draws, num_sampled, true_classes)

    def draw_more():  # rare: some group saw fewer than S distinct ids; keep drawing until it has
      def not_enough(round_index, draws):  # pylint: disable=unused-argument
        return tf.reduce_any(_distinct_so_far(draws)[1][:, -1] < num_sampled)

      def more(round_index, draws):
        round_seed = tf.random.experimental.stateless_fold_in(seed, round_index)
        return round_index + 1, tf.concat([draws, self.sample(round_seed, block)], 1)

      _, longer = tf.while_loop(not_enough, more, (tf.constant(1), draws),
                                shape_invariants=(tf.TensorShape([]),
                                                  tf.TensorShape([num_groups, None])))
      return self._first_distinct(longer, num_sampled, true_classes)[0]

    return tf.cond(enough, lambda: sampled_values, draw_more)

  @staticmethod
  def draws_per_group(num_sampled: int) -> int:
    """Draws made at once per group: on IMDB almost always enough for S distinct ids (else more)."""
    return 2 * num_sampled

  def _first_distinct(self, draws, num_sampled: int, true_classes):
    """The first S distinct ids of each row of `draws` [G, N]; (SampledValues, all rows had S)."""
    num_groups = tf.shape(draws)[0]
    is_first, distinct = _distinct_so_far(draws)
    length = tf.shape(draws)[1]
    positions = tf.range(length)[None, :]
    # Positions of the first S distinct draws, in draw order: the S smallest selected positions.
    key = tf.where(is_first & (distinct <= num_sampled), positions, length + positions)
    chosen = tf.sort(tf.math.top_k(-key, k=num_sampled).indices, axis=1)  # [G, S]
    sampled = tf.gather(draws, chosen, batch_dims=1)  # [G, S]
    num_tries = chosen[:, -1:] + 1  # [G, 1]
    grouped_true = tf.reshape(true_classes, [num_groups, -1])  # [G, (B/G)*C]
    true_expected = self.expected_count(grouped_true, num_tries, num_sampled)
    return SampledValues(
        sampled=tf.cast(sampled, tf.int64),
        true_expected_count=tf.reshape(true_expected, tf.shape(true_classes)),
        sampled_expected_count=self.expected_count(sampled, num_tries, num_sampled)
    ), tf.reduce_all(distinct[:, -1] >= num_sampled)


def _distinct_so_far(draws):
  """For draws [G, N]: is_first [G, N] (first occurrence in its row), running distinct count."""
  order = tf.argsort(draws, axis=1, stable=True)
  sorted_draws = tf.gather(draws, order, batch_dims=1)
  first_in_sorted = tf.concat([tf.ones_like(sorted_draws[:, :1], tf.bool),
                               sorted_draws[:, 1:] != sorted_draws[:, :-1]], axis=1)
  is_first = tf.gather(first_in_sorted, tf.argsort(order, axis=1), batch_dims=1)
  return is_first, tf.cumsum(tf.cast(is_first, tf.int32), axis=1)
