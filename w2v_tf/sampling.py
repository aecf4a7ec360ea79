"""Negative candidates from the unigram distribution raised to 0.75 (Mikolov et al. 2013).

`UnigramSampler.sample_unique` draws exactly what `tf.random.fixed_unigram_candidate_sampler(
unique=True, distortion=0.75, unigrams=counts)` draws: candidates are drawn with replacement until
`num_sampled` distinct ones are found, and the expected counts are
`-expm1(num_tries * log1p(-p))` (`p * num_sampled` when no draw was rejected), as TF's
range_sampler computes them. It draws from a `tf.random.Generator`, whose state is saved in the
checkpoint, so a resumed run continues the same random stream (TF's op keeps its state in the
kernel, out of reach of a checkpoint). tests/test_sampling.py compares both.
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

  def sample(self, generator: tf.random.Generator, shape) -> tf.Tensor:
    """Ids drawn with replacement, int32 of the given shape."""
    uniform = generator.uniform(shape, dtype=tf.float32)
    flat = tf.searchsorted(self._cdf, tf.reshape(uniform, [-1]), side="right")
    return tf.reshape(tf.minimum(tf.cast(flat, tf.int32), self.vocab_size - 1), shape)

  def expected_count(self, ids: tf.Tensor, num_tries: tf.Tensor, num_sampled: int) -> tf.Tensor:
    """Expected number of times each id appears in the sample, as TF's samplers report it."""
    probability = tf.gather(self.probabilities, tf.cast(ids, tf.int32))
    num_tries = tf.cast(num_tries, tf.float32)
    return tf.where(tf.equal(num_tries, float(num_sampled)), probability * num_sampled,
                    -tf.math.expm1(num_tries * tf.math.log1p(-probability)))

  def sample_unique(self, generator: tf.random.Generator, num_sampled: int,
                    true_classes: tf.Tensor) -> SampledValues:
    """`num_sampled` distinct candidates for a batch, with expected counts.

    Args:
      generator: random stream.
      num_sampled: S (< vocabulary size).
      true_classes: [B, C] label ids (for their expected counts).

    Returns:
      SampledValues(sampled [S] int64, true_expected_count [B, C], sampled_expected_count [S]).
    """
    block = max(4 * num_sampled, 256)
    draws = self.sample(generator, [block])

    def not_enough(draws):
      return tf.size(tf.unique(draws).y) < num_sampled

    def more(draws):
      return (tf.concat([draws, self.sample(generator, [block])], 0),)

    (draws,) = tf.while_loop(not_enough, more, (draws,),
                             shape_invariants=(tf.TensorShape([None]),))
    unique = tf.unique(draws)
    first_position = tf.math.unsorted_segment_min(
        tf.range(tf.size(draws)), unique.idx, tf.size(unique.y))
    sampled = unique.y[:num_sampled]
    num_tries = first_position[num_sampled - 1] + 1
    return SampledValues(
        sampled=tf.cast(sampled, tf.int64),
        true_expected_count=self.expected_count(true_classes, num_tries, num_sampled),
        sampled_expected_count=self.expected_count(sampled, num_tries, num_sampled))
