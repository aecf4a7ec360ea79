"""Vocabulary order, min_count, vocab.tsv, and subsampling keep-probabilities."""

import numpy as np
import pytest

from w2v_tf import vocab as vocab_lib
from w2v_tf.errors import UserError


def test_order_min_count_and_max_vocab():
  types = ["b", "a", "c", "d", "e"]
  counts = np.array([5, 5, 9, 1, 5])
  vocab = vocab_lib.build_vocab(types, counts, min_count=2)
  assert vocab.words == ("c", "a", "b", "e")  # by -count, ties alphabetical
  assert vocab.counts.tolist() == [9, 5, 5, 5]
  assert vocab_lib.build_vocab(types, counts, min_count=2, max_vocab=2).words == ("c", "a")
  assert len(vocab_lib.build_vocab(types, counts, min_count=10)) == 0


def test_tsv_round_trip(tmp_path):
  vocab = vocab_lib.Vocab(("the", "café", "x"), np.array([10, 3, 3]))
  path = tmp_path / "vocab.tsv"
  vocab.save_tsv(path)
  assert path.read_text(encoding="utf-8") == "the\t10\ncafé\t3\nx\t3\n"
  loaded = vocab_lib.Vocab.load_tsv(path)
  assert loaded.words == vocab.words and loaded.counts.tolist() == [10, 3, 3]
  assert loaded.counts.dtype == np.int64


def test_tsv_keeps_unicode_and_skips_blank_lines(tmp_path):
  path = tmp_path / "vocab.tsv"
  path.write_bytes("日本\t7\n\nnaïve\t0\r\n".encode("utf-8"))
  loaded = vocab_lib.Vocab.load_tsv(path)
  assert loaded.words == ("日本", "naïve") and loaded.counts.tolist() == [7, 0]


@pytest.mark.parametrize("content,message", [
    (b"the\t10\nbroken line\n", r"vocab\.tsv:2: expected 'word<TAB>count', got 'broken line'"),
    (b"the\t10\n\t5\n", r"vocab\.tsv:2: expected 'word<TAB>count'"),
    (b"the\t10\na\tmany\n", r"vocab\.tsv:2: expected 'word<TAB>count', got 'a\\tmany'"),
    (b"the\t10\nok\t1\ncaf\xe9\t3\n", r"vocab\.tsv:3: not UTF-8 text \(byte 3 of the line\)"),
])
def test_load_tsv_errors_name_the_line(tmp_path, content, message):
  path = tmp_path / "vocab.tsv"
  path.write_bytes(content)
  with pytest.raises(UserError, match=message) as info:
    vocab_lib.Vocab.load_tsv(path)
  assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_load_tsv_missing_or_unreadable(tmp_path):
  with pytest.raises(UserError, match=r"^vocabulary file .*missing\.tsv not found$"):
    vocab_lib.Vocab.load_tsv(tmp_path / "missing.tsv")
  with pytest.raises(UserError, match=r"^cannot read vocabulary .*: Is a directory$"):
    vocab_lib.Vocab.load_tsv(tmp_path)


def test_keep_probability_formula():
  counts = np.array([100_000, 10_000, 1_000, 10])
  vocab = vocab_lib.Vocab(("a", "b", "c", "d"), counts)
  t = 1e-3
  n = counts.sum()
  expected = np.minimum(1, (np.sqrt(counts / (t * n)) + 1) * (t * n) / counts)
  np.testing.assert_allclose(vocab.keep_probabilities(t), expected, rtol=1e-6)
  assert vocab.keep_probabilities(t)[0] < 0.5  # frequent words are dropped often
  assert vocab.keep_probabilities(t)[-1] == 1.0  # rare ones never
  assert (vocab.keep_probabilities(0) == 1).all()


def test_retained_fraction_on_zipf_corpus():
  """Subsampling in the pipeline keeps each word at the formula's rate (synthetic Zipf corpus)."""
  from w2v_tf import corpus as corpus_lib, pipeline  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  vocab_size = 200
  probabilities = 1.0 / np.arange(1, vocab_size + 1)
  probabilities /= probabilities.sum()
  token_ids = rng.choice(vocab_size, size=400_000, p=probabilities).astype(np.int32)
  counts = np.bincount(token_ids, minlength=vocab_size)
  order = np.lexsort((np.arange(vocab_size), -counts))
  rank = np.empty_like(order)
  rank[order] = np.arange(vocab_size)
  token_ids = rank[token_ids].astype(np.int32)
  types = tuple(f"w{i}" for i in range(vocab_size))
  corpus = corpus_lib.Corpus(types, counts[order], token_ids,
                             np.arange(0, 400_001, 100, dtype=np.int64))
  vocab = vocab_lib.Vocab(types, counts[order].astype(np.int64))
  keep = vocab.keep_probabilities(1e-3)
  assert keep[0] < 0.3 and keep[-1] == 1.0
  tokens = pipeline.training_tokens(corpus, vocab_size)
  kept = np.zeros(vocab_size)
  for epoch in range(2):
    for batch in pipeline.epoch_dataset(tokens, keep, window=1, batch_size=4096, seed=1,
                                        epoch=epoch):
      real = pipeline.real_centers(batch).numpy()
      kept += np.bincount(batch["center"].numpy()[real], minlength=vocab_size)
  # Centers are kept tokens that have a context; with 100-token reviews and window 1 almost
  # every kept token has one, so compare the retained fraction for words with enough mass.
  frequent = vocab.counts > 2000
  retained = kept[frequent] / (2 * vocab.counts[frequent])
  np.testing.assert_allclose(retained, keep[frequent], atol=0.02)
  assert retained[0] < 0.35
