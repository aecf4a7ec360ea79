"""Candidate samplers: unigram^0.75 (Mikolov et al. 2013), log-uniform (Zipfian) and uniform.

`CandidateSampler.sample_unique` draws exactly what TF's candidate samplers draw with
`unique=True`: `UnigramSampler` as `tf.random.fixed_unigram_candidate_sampler(distortion=0.75,
unigrams=counts)`, `LogUniformSampler` as `tf.random.log_uniform_candidate_sampler` (the default
of `tf.nn.sampled_softmax_loss`; P(k) = log((k + 2) / (k + 1)) / log(V + 1), which assumes ids
sorted by frequency, as ours are) and `UniformSampler` as `tf.random.uniform_candidate_sampler`.
Candidates are drawn with replacement until `num_sampled` distinct ones are found, and the
expected counts are `-expm1(num_tries * log1p(-p))` (`p * num_sampled` when no draw was
rejected), as TF's range_sampler computes them for all three. Draws are stateless, from a seed the trainer derives from (run seed,
epoch, batch index), so the input pipeline can draw a batch's candidates ahead of the training
step, and a resumed run draws exactly the candidates it would have drawn (TF's op keeps its state
in the kernel, out of reach of a checkpoint). tests/test_sampling.py compares both.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from w2v_tf import config
from w2v_tf.losses.base import SampledValues


class GroupCandidates(NamedTuple):
  """Each group's candidates: `SampledValues` less the labels' expected counts.

  Attributes:
    sampled: [G, S] int64 distinct ids per group.
    sampled_expected_count: [G, S] float32.
    num_tries: [G, 1] int32 draws it took to find the group's S distinct ids.
  """
  sampled: tf.Tensor
  sampled_expected_count: tf.Tensor
  num_tries: tf.Tensor


SAMPLERS = config.SAMPLERS


class CandidateSampler:
  """A fixed noise distribution over the vocabulary, `probabilities` [V] (summing to 1).

  Draws use Walker's alias method (Vose's construction): one uniform slot and one uniform
  coin per draw, O(1) each, instead of a binary search of the CDF.
  """

  def __init__(self, probabilities: np.ndarray):
    probabilities = np.asarray(probabilities, np.float64)
    probabilities = probabilities / probabilities.sum()
    self.vocab_size = len(probabilities)
    self.probabilities = tf.constant(probabilities, tf.float32)  # [V]
    keep, alias = alias_table(probabilities)
    # One int64 per slot (one gather per draw): the keep probability as a 31-bit threshold in
    # the high half, the alias id in the low half.
    threshold = np.minimum(np.round(keep * (1 << 31)), (1 << 31) - 1).astype(np.int64)
    self._slots = tf.constant((threshold << 32) | alias.astype(np.int64), tf.int64)  # [V]

  def sample(self, seed, shape) -> tf.Tensor:
    """Ids drawn with replacement, int32 of the given shape; `seed` is a [2] int stateless seed."""
    slot_seed, coin_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    slots = tf.random.stateless_uniform(shape, slot_seed, minval=0, maxval=self.vocab_size,
                                        dtype=tf.int32)
    coins = tf.random.stateless_uniform(shape, coin_seed, minval=0, maxval=1 << 31,
                                        dtype=tf.int64)  # uniform 31-bit integers
    packed = tf.gather(self._slots, slots)
    keeps = coins < tf.bitwise.right_shift(packed, 32)
    return tf.where(keeps, slots, tf.cast(tf.bitwise.bitwise_and(packed, 0xFFFFFFFF), tf.int32))

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
    return self.with_true_expected_counts(
        self.sample_candidates(seed, num_sampled, num_groups), true_classes)

  def sample_candidates(self, seed, num_sampled: int, num_groups: int = 1) -> GroupCandidates:
    """The groups' candidates of `sample_unique`, without the labels' expected counts."""
    block = [num_groups, self.draws_per_group(num_sampled)]
    draws = self.sample(seed, block)
    candidates, enough = self._first_distinct(draws, num_sampled)

    def draw_more():  # rare: some group saw fewer than S distinct ids; keep drawing until it has
      def not_enough(round_index, draws):  # pylint: disable=unused-argument
        return tf.reduce_any(_distinct_so_far(draws)[:, -1] < num_sampled)

      def more(round_index, draws):
        round_seed = tf.random.experimental.stateless_fold_in(seed, round_index)
        return round_index + 1, tf.concat([draws, self.sample(round_seed, block)], 1)

      _, longer = tf.while_loop(not_enough, more, (tf.constant(1), draws),
                                shape_invariants=(tf.TensorShape([]),
                                                  tf.TensorShape([num_groups, None])))
      return self._first_distinct(longer, num_sampled)[0]

    return tf.cond(enough, lambda: candidates, draw_more)

  def with_true_expected_counts(self, candidates: GroupCandidates,
                                true_classes: tf.Tensor) -> SampledValues:
    """SampledValues of the groups' candidates for labels `true_classes` [B, C].

    The labels' expected counts take a gather of 40k probabilities per IMDB batch: the trainer
    computes them inside its compiled step, where XLA fuses them, not in the input pipeline.
    """
    num_groups, num_sampled = tf.shape(candidates.sampled)[0], candidates.sampled.shape[1]
    grouped_true = tf.reshape(true_classes, [num_groups, -1])  # [G, (B/G)*C]
    true_expected = self.expected_count(grouped_true, candidates.num_tries, num_sampled)
    return SampledValues(sampled=candidates.sampled,
                         true_expected_count=tf.reshape(true_expected, tf.shape(true_classes)),
                         sampled_expected_count=candidates.sampled_expected_count)

  @staticmethod
  def draws_per_group(num_sampled: int) -> int:
    """Draws made at once per group: on IMDB almost always enough for S distinct ids (else more)."""
    return 2 * num_sampled

  def _first_distinct(self, draws, num_sampled: int):
    """The first S distinct ids of each row of `draws` [G, N]; (GroupCandidates, all rows had S)."""
    num_groups = tf.shape(draws)[0]
    distinct = _distinct_so_far(draws)
    # The k-th distinct id of a row is drawn where its running count first reaches k.
    ranks = tf.broadcast_to(tf.range(1, num_sampled + 1), tf.stack([num_groups, num_sampled]))
    positions = tf.minimum(tf.searchsorted(distinct, ranks, side="left"),
                           tf.shape(draws)[1] - 1)  # [G, S] (clipped if a row has < S)
    sampled = tf.gather(draws, positions, batch_dims=1)  # [G, S]
    num_tries = positions[:, -1:] + 1  # draws up to and including the S-th distinct one
    return GroupCandidates(
        sampled=tf.cast(sampled, tf.int64),
        sampled_expected_count=self.expected_count(sampled, num_tries, num_sampled),
        num_tries=num_tries), tf.reduce_all(distinct[:, -1] >= num_sampled)


class UnigramSampler(CandidateSampler):
  """P(w) ∝ count(w)^distortion: word2vec's noise distribution (distortion 0.75)."""

  def __init__(self, counts: np.ndarray, distortion: float = 0.75):
    super().__init__(np.asarray(counts, np.float64) ** distortion)


class LogUniformSampler(CandidateSampler):
  """Zipf's law over ids sorted by frequency: P(k) = log((k + 2) / (k + 1)) / log(V + 1)."""

  def __init__(self, vocab_size: int):
    ids = np.arange(vocab_size, dtype=np.float64)
    super().__init__(np.log1p(1.0 / (ids + 1.0)) / np.log(vocab_size + 1.0))


class UniformSampler(CandidateSampler):
  """Every word equally likely: the textbook baseline."""

  def __init__(self, vocab_size: int):
    super().__init__(np.full(vocab_size, 1.0 / vocab_size))


def make_sampler(name: str, counts: np.ndarray, power: float = 0.75) -> CandidateSampler:
  """The sampler `name` ("unigram", "log_uniform", "uniform") over a vocabulary's counts."""
  if name == "unigram":
    return UnigramSampler(counts, power)
  if name == "log_uniform":
    return LogUniformSampler(len(counts))
  if name == "uniform":
    return UniformSampler(len(counts))
  raise ValueError(f"unknown sampler {name!r}: one of {', '.join(SAMPLERS)}")


def alias_table(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Walker's alias table (Vose 1991): (keep [V], alias [V]) for `probabilities` [V].

  A draw picks a slot i uniformly, then keeps i with probability keep[i], else takes alias[i].
  """
  size = len(probabilities)
  scaled = np.asarray(probabilities, np.float64) * size
  keep = np.ones(size)
  alias = np.arange(size, dtype=np.int64)
  small = [int(i) for i in np.flatnonzero(scaled < 1.0)]
  large = [int(i) for i in np.flatnonzero(scaled >= 1.0)]
  while small and large:
    less, more = small.pop(), large.pop()
    keep[less], alias[less] = scaled[less], more
    scaled[more] -= 1.0 - scaled[less]
    (small if scaled[more] < 1.0 else large).append(more)
  # Whatever is left is 1 up to rounding: it keeps its own id.
  return keep, alias


def _distinct_so_far(draws):
  """For draws [G, N]: the number of distinct ids among each row's first n draws, [G, N]."""
  num_groups, length = tf.shape(draws)[0], tf.shape(draws)[1]
  # One hash-based tf.unique over all rows at once (each row's ids offset into its own range).
  keys = tf.reshape(tf.cast(draws, tf.int64)
                    + tf.cast(tf.range(num_groups), tf.int64)[:, None] * (1 << 32), [-1])
  unique_keys, first_index = tf.unique(keys, out_idx=tf.int32)
  positions = tf.range(tf.size(keys))
  first_position = tf.math.unsorted_segment_min(positions, first_index, tf.size(unique_keys))
  is_first = tf.reshape(tf.equal(tf.gather(first_position, first_index), positions),
                        [num_groups, length])
  return tf.cumsum(tf.cast(is_first, tf.int32), axis=1)
