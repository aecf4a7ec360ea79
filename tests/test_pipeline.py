"""Skip-gram / CBOW examples: exact pairs for fixed windows, the window distribution, review boundaries."""

import collections

import numpy as np
import tensorflow as tf

from w2v_tf import corpus as corpus_lib
from w2v_tf import pipeline, training_data


def _corpus(reviews):
  """A Corpus whose word i is the string f"w{i}" (ids given directly)."""
  token_ids = np.concatenate([np.asarray(r, np.int32) for r in reviews])
  vocab_size = int(token_ids.max()) + 1
  offsets = np.concatenate([[0], np.cumsum([len(r) for r in reviews])]).astype(np.int64)
  counts = np.bincount(token_ids, minlength=vocab_size)
  return corpus_lib.Corpus(tuple(f"w{i}" for i in range(vocab_size)), counts, token_ids, offsets)


def test_exact_pairs_for_fixed_window():
  tokens = tf.constant([10, 11, 12, 13, 14], tf.int32)
  reviews = tf.zeros([5], tf.int32)
  effective = tf.constant([1, 2, 2, 1, 2], tf.int32)
  contexts, mask = pipeline.window_contexts(tokens, reviews, effective, window=2)
  pairs = {(int(tokens[i]), int(c)) for i in range(5)
           for c, m in zip(contexts[i].numpy(), mask[i].numpy()) if m}
  assert pairs == {
      (10, 11),
      (11, 10), (11, 12), (11, 13),
      (12, 10), (12, 11), (12, 13), (12, 14),
      (13, 12), (13, 14),
      (14, 12), (14, 13)}
  # Slots are ordered by offset -2, -1, +1, +2.
  assert mask.numpy()[2].tolist() == [True, True, True, True]
  assert contexts.numpy()[2].tolist() == [10, 11, 13, 14]


def test_no_pairs_across_reviews():
  corpus = _corpus([[1, 2, 3], [4, 5], [6], [7, 8, 9, 1]])
  tokens = pipeline.training_tokens(corpus, vocab_size=10, chunk_tokens=4)
  review_of = {}
  for r, (s, e) in enumerate(zip(corpus.document_offsets[:-1], corpus.document_offsets[1:])):
    for t in corpus.token_ids[s:e]:
      review_of.setdefault(int(t), set()).add(r)
  seen = 0
  for epoch in range(20):
    for batch in pipeline.epoch_dataset(tokens, np.ones(10, np.float32), window=5, batch_size=3,
                                        seed=0, epoch=epoch):
      centers, contexts = pipeline.skipgram_pairs(batch)
      for c, x in zip(centers.numpy(), contexts.numpy()):
        assert review_of[int(c)] & review_of[int(x)], (c, x)
        seen += 1
      assert 6 not in batch["center"].numpy()  # a one-token review has no pairs
  assert seen > 100


def test_effective_window_is_uniform():
  corpus = _corpus([np.arange(2000) % 50 + 1])
  tokens = pipeline.training_tokens(corpus, vocab_size=51)
  window = 4
  contexts_per_center = collections.Counter()
  for batch in pipeline.epoch_dataset(tokens, np.ones(51, np.float32), window, 512, 0, 0):
    mask = batch["mask"].numpy()
    inner = (mask[:, 0:window].sum(1) == mask[:, window:].sum(1)) & mask.any(1)  # 2b contexts
    contexts_per_center.update((mask[inner].sum(1) // 2).tolist())
  total = sum(contexts_per_center.values())
  assert set(contexts_per_center) == {1, 2, 3, 4}
  for b in range(1, window + 1):
    assert abs(contexts_per_center[b] / total - 1 / window) < 0.04


def test_epochs_differ_and_are_reproducible():
  corpus = _corpus([np.arange(300) % 30 + 1] * 5)
  tokens = pipeline.training_tokens(corpus, vocab_size=31, chunk_tokens=300)
  keep = np.full(31, 0.7, np.float32)
  def centers(seed, epoch):
    return np.concatenate([b["center"].numpy() for b in
                           pipeline.epoch_dataset(tokens, keep, 3, 64, seed, epoch)])
  np.testing.assert_array_equal(centers(1, 0), centers(1, 0))
  assert len(centers(1, 0)) != len(centers(1, 1)) or (centers(1, 0) != centers(1, 1)).any()
  assert len(centers(1, 0)) != len(centers(2, 0)) or (centers(1, 0) != centers(2, 0)).any()


def test_batches_have_the_requested_size_and_cover_every_center():
  corpus = _corpus([np.arange(1000) % 40 + 1, np.arange(777) % 40 + 1])
  tokens = pipeline.training_tokens(corpus, vocab_size=41, chunk_tokens=500)
  batches = list(pipeline.epoch_dataset(tokens, np.ones(41, np.float32), 2, 100, 0, 0))
  assert all(int(tf.size(b["center"])) == 100 for b in batches)  # padded to a fixed shape
  real = [int(tf.reduce_sum(tf.cast(pipeline.real_centers(b), tf.int32))) for b in batches]
  assert sum(real) == 1777
  assert all(b["contexts"].shape[1] == 4 for b in batches)
  for b in batches:  # masked slots hold id 0
    assert (b["contexts"].numpy()[~b["mask"].numpy()] == 0).all()


def test_out_of_vocabulary_tokens_are_removed_before_windowing():
  corpus = _corpus([[1, 9, 2]])
  tokens = pipeline.training_tokens(corpus, vocab_size=5)
  assert tokens.token_ids.tolist() == [1, 2]


def test_heldout_split_and_pairs():
  heldout = pipeline.split_heldout(1000, 0.01, seed=3)
  assert heldout.sum() == 10
  np.testing.assert_array_equal(heldout, pipeline.split_heldout(1000, 0.01, seed=3))
  assert pipeline.split_heldout(1000, 25, seed=3).sum() == 25
  corpus = _corpus([np.arange(100) % 20 + 1] * 4)
  tokens = pipeline.training_tokens(corpus, 21,
                                    document_mask=np.array([True, False, True, False]))
  assert tokens.num_tokens == 200
  heldout = training_data.heldout_examples(tokens, window=3, max_centers=50, seed=0)
  assert heldout["center"].shape == (50,) and heldout["contexts"].shape == (50, 6)
  assert heldout["mask"].any(axis=1).all()  # every center has a context
  assert heldout["center"].tolist() == training_data.heldout_examples(
      tokens, window=3, max_centers=50, seed=0)["center"].tolist()


def test_words_field_sums_to_the_corpus_size():
  corpus = _corpus([np.arange(1000) % 40 + 1, np.arange(777) % 40 + 1])
  tokens = pipeline.training_tokens(corpus, vocab_size=41, chunk_tokens=500)
  keep = np.full(41, 0.5, np.float32)
  words = sum(float(b["words"]) for b in pipeline.epoch_dataset(tokens, keep, 2, 64, 0, 0))
  assert abs(words - 1777) < 1e-2


def test_window_contexts_equal_gathering_each_position():
  rng = np.random.default_rng(3)
  window, count = 5, 300
  token_ids = rng.integers(1, 50, count).astype(np.int32)
  document_ids = np.repeat(np.arange(20), rng.multinomial(count, [1 / 20] * 20)).astype(np.int32)
  effective = rng.integers(1, window + 1, count).astype(np.int32)
  contexts, mask = pipeline.window_contexts(tf.constant(token_ids), tf.constant(document_ids),
                                            tf.constant(effective), window)
  offsets = pipeline.window_offsets(window)
  positions = np.arange(count)[:, None] + offsets[None, :]
  inside = (positions >= 0) & (positions < count)
  clipped = np.clip(positions, 0, count - 1)
  expected_mask = (inside & (document_ids[clipped] == document_ids[:, None])
                   & (np.abs(offsets)[None, :] <= effective[:, None]))
  np.testing.assert_array_equal(mask.numpy(), expected_mask)
  np.testing.assert_array_equal(np.where(expected_mask, contexts.numpy(), 0),
                                np.where(expected_mask, token_ids[clipped], 0))
  assert mask.numpy().any(axis=1).all() and not mask.numpy().all()
