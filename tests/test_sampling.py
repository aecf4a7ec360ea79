"""Our stateless samplers (unigram^0.75, log-uniform, uniform) draw and report what TF's candidate samplers do."""

import numpy as np
import tensorflow as tf

from w2v_tf.sampling import (LogUniformSampler, UniformSampler, UnigramSampler, alias_table,
                             make_sampler)


def test_matches_fixed_unigram_candidate_sampler():
  counts = np.array([1000, 500, 300, 100, 50, 20, 10, 5, 3, 1] * 5)
  vocab, num_sampled, trials = len(counts), 8, 1000
  sampler = UnigramSampler(counts)
  labels = tf.constant([[0, 7], [3, 49]], tf.int64)
  ours = np.zeros(vocab)
  theirs = np.zeros(vocab)
  for trial in range(trials):
    sample = sampler.sample_unique(tf.constant([0, trial], tf.int64), num_sampled, labels)
    assert sample.sampled.shape == (1, num_sampled)
    assert len(set(sample.sampled.numpy()[0])) == num_sampled
    ours[sample.sampled.numpy()[0]] += 1
    tf_sampled, tf_true, tf_sampled_expected = tf.random.fixed_unigram_candidate_sampler(
        labels, num_true=2, num_sampled=num_sampled, unique=True, range_max=vocab,
        distortion=0.75, unigrams=counts.astype(float).tolist(), seed=1234 + trial)
    theirs[tf_sampled.numpy()] += 1
  # Same inclusion frequencies within sampling noise.
  np.testing.assert_allclose(ours / trials, theirs / trials, atol=0.1)  # ~4.5 sigma
  # Same expected-count formula: recover num_tries from TF's report and recompute all of them.
  p = counts ** 0.75 / (counts ** 0.75).sum()
  first = tf_sampled.numpy()[0]
  if np.allclose(tf_sampled_expected.numpy(), p[tf_sampled.numpy()] * num_sampled):
    num_tries = num_sampled  # no draw was rejected: TF reports p * S
  else:
    num_tries = np.log1p(-tf_sampled_expected.numpy()[0]) / np.log1p(-p[first])
  recomputed = sampler.expected_count(tf_sampled, tf.constant(round(num_tries)), num_sampled)
  np.testing.assert_allclose(recomputed.numpy(), tf_sampled_expected.numpy(), rtol=1e-4)
  np.testing.assert_allclose(
      sampler.expected_count(labels, tf.constant(round(num_tries)), num_sampled).numpy(),
      tf_true.numpy(), rtol=1e-4)


def test_same_seed_same_draws():
  sampler = UnigramSampler(np.arange(1, 101))
  labels = tf.zeros([1, 1], tf.int64)
  a = sampler.sample_unique(tf.constant([5, 1], tf.int64), 10, labels).sampled.numpy()
  b = sampler.sample_unique(tf.constant([5, 1], tf.int64), 10, labels).sampled.numpy()
  c = sampler.sample_unique(tf.constant([5, 2], tf.int64), 10, labels).sampled.numpy()
  np.testing.assert_array_equal(a, b)
  assert (a != c).any()
  assert (sampler.sample(tf.constant([1, 1], tf.int64), [4, 3]).numpy() < 100).all()


def test_tiny_vocabulary_draws_until_enough_distinct_ids():
  counts = np.array([10_000] + [1] * 40)  # one word takes ~96% of the draws
  sampler = UnigramSampler(counts)
  sample = sampler.sample_unique(tf.constant([0, 0], tf.int64), 30, tf.zeros([2, 1], tf.int64),
                                 num_groups=2)
  assert all(len(set(row)) == 30 for row in sample.sampled.numpy())


def test_groups_have_their_own_distinct_candidates_and_expected_counts():
  counts = np.arange(1, 201)
  sampler = UnigramSampler(counts)
  labels = tf.constant(np.arange(24).reshape(6, 4), tf.int64)
  sample = sampler.sample_unique(tf.constant([0, 0], tf.int64), 30, labels, num_groups=3)
  sampled = sample.sampled.numpy()
  assert sampled.shape == (3, 30)
  assert all(len(set(row)) == 30 for row in sampled)
  assert len({tuple(row) for row in sampled}) == 3  # independent draws
  # Within a group, labels and candidates share one num_tries.
  p = counts ** 0.75 / (counts ** 0.75).sum()
  for group in range(3):
    expected = sample.sampled_expected_count.numpy()[group]
    tries = np.log1p(-expected) / np.log1p(-p[sampled[group]])
    assert np.allclose(tries, tries[0], rtol=1e-3) and tries[0] >= 30
    true = sample.true_expected_count.numpy()[2 * group:2 * group + 2]
    np.testing.assert_allclose(true, -np.expm1(tries[0] * np.log1p(-p[labels.numpy()[
        2 * group:2 * group + 2]])), rtol=1e-3)


def test_alias_table_reproduces_the_distribution_exactly():
  rng = np.random.default_rng(3)
  for probabilities in (rng.dirichlet(np.ones(1000) * 0.1), np.full(7, 1 / 7),
                        np.array([0.999, 0.0005, 0.0005]), np.array([1.0])):
    keep, alias = alias_table(probabilities)
    size = len(probabilities)
    implied = keep / size + np.bincount(alias, weights=(1 - keep) / size, minlength=size)
    np.testing.assert_allclose(implied, probabilities, atol=1e-12)


def test_draws_follow_the_unigram_distribution():
  counts = np.array([5000, 2000, 800, 300, 100, 40, 10, 3, 1, 1])
  sampler = UnigramSampler(counts)
  draws = sampler.sample(tf.constant([2, 9], tf.int64), [200_000]).numpy()
  p = counts ** 0.75 / (counts ** 0.75).sum()
  frequencies = np.bincount(draws, minlength=len(counts)) / len(draws)
  assert (np.abs(frequencies - p) < 5 * np.sqrt(p * (1 - p) / len(draws)) + 1e-6).all(), (
      frequencies, p)


def _tf_sampler(name, labels, num_sampled, vocab, seed):
  kwargs = dict(true_classes=labels, num_true=labels.shape[1], num_sampled=num_sampled,
                unique=True, range_max=vocab, seed=seed)
  if name == "log_uniform":
    return tf.random.log_uniform_candidate_sampler(**kwargs)
  return tf.random.uniform_candidate_sampler(**kwargs)


def test_log_uniform_and_uniform_match_tfs_samplers():
  """Inclusion frequencies and expected counts as TF's log-uniform and uniform samplers."""
  vocab, num_sampled, trials = 60, 8, 600
  labels = tf.constant([[0, 7], [3, 59]], tf.int64)
  for name, sampler in (("log_uniform", LogUniformSampler(vocab)),
                        ("uniform", UniformSampler(vocab))):
    ours, theirs = np.zeros(vocab), np.zeros(vocab)
    for trial in range(trials):
      sample = sampler.sample_unique(tf.constant([1, trial], tf.int64), num_sampled, labels)
      ours[sample.sampled.numpy()[0]] += 1
      tf_sampled, tf_true, tf_expected = _tf_sampler(name, labels, num_sampled, vocab,
                                                     seed=99 + trial)
      theirs[tf_sampled.numpy()] += 1
      # TF reports num_tries only through its expected counts: recover it from one candidate.
      p = sampler.probabilities.numpy().astype(np.float64)
      first = int(tf_sampled.numpy()[0])
      if np.allclose(tf_expected.numpy(), p[tf_sampled.numpy()] * num_sampled, rtol=1e-5):
        num_tries = num_sampled
      else:
        num_tries = round(np.log1p(-tf_expected.numpy()[0]) / np.log1p(-p[first]))
      if trial < 20:
        np.testing.assert_allclose(
            sampler.expected_count(tf_sampled, tf.constant(num_tries), num_sampled).numpy(),
            tf_expected.numpy(), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(
            sampler.expected_count(labels, tf.constant(num_tries), num_sampled).numpy(),
            tf_true.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours / trials, theirs / trials, atol=0.1)


def test_samplers_draw_their_distributions():
  vocab, draws_count = 50, 200_000
  expected = {"log_uniform": np.log((np.arange(vocab) + 2) / (np.arange(vocab) + 1))
                             / np.log(vocab + 1),
              "uniform": np.full(vocab, 1 / vocab),
              "unigram": np.arange(vocab, 0, -1) ** 0.5 / (np.arange(vocab, 0, -1) ** 0.5).sum()}
  for name, p in expected.items():
    sampler = make_sampler(name, np.arange(vocab, 0, -1), power=0.5)
    np.testing.assert_allclose(sampler.probabilities.numpy(), p, rtol=1e-6)
    draws = sampler.sample(tf.constant([4, 2], tf.int64), [draws_count]).numpy()
    frequencies = np.bincount(draws, minlength=vocab) / draws_count
    assert (np.abs(frequencies - p) < 5 * np.sqrt(p * (1 - p) / draws_count) + 1e-6).all(), name
