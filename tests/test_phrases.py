"""Phrase detection (`w2v_tf.phrases`) against gensim's `Phrases`, token for token."""

from __future__ import annotations

import collections
import os
import random

import numpy as np
import pytest

from w2v_tf import corpus_store, phrase_vocab, phrases
from w2v_tf.errors import UsageError

gensim_phrases = pytest.importorskip("gensim.models.phrases")


def _stored(folder, documents, max_types: int = 0) -> corpus_store.StoredCorpus:
  """A cache folder holding `documents` (lists of words), written as `phrase_pass` writes."""
  writer = corpus_store.CorpusWriter(str(folder), max_types)
  counts = collections.Counter(word for document in documents for word in document)
  words = sorted(counts)
  provisional = _add_words(writer, words, [counts[w] for w in words])
  index = dict(zip(words, provisional.tolist()))
  ids = np.array([index[w] for document in documents for w in document], np.int32)
  writer.add_tokens(ids, np.array([len(d) for d in documents], np.int64))
  return writer.finish({})


def _add_words(writer, words, counts) -> np.ndarray:
  encoded = np.array([w.encode("utf-8") for w in words], dtype=object)
  return phrases._add_words(  # pylint: disable=protected-access
      writer, encoded, np.arange(len(words)), np.array(counts, np.int64))


def _documents(corpus) -> list[list[str]]:
  """The corpus as lists of words ('<pruned>' for the id U)."""
  types = np.array(corpus.types + ("<pruned>",), dtype=object)
  words = types[corpus.token_ids]
  offsets = corpus.document_offsets
  return [list(words[start:end]) for start, end in zip(offsets[:-1], offsets[1:])]


def _gensim(documents, settings: phrases.PhraseSettings) -> list[list[str]]:
  model = gensim_phrases.Phrases(documents, min_count=settings.min_count,
                                 threshold=settings.threshold, scoring="default",
                                 delimiter=settings.delimiter)
  return [model[document] for document in documents]


def _ours(corpus, settings: phrases.PhraseSettings, folder) -> list[list[str]]:
  return _documents(phrases.phrased_corpus(corpus, settings, str(folder), progress=False))


def _phrase_types(documents, delimiter: str = "_") -> set[str]:
  return {w for document in documents for w in document if delimiter in w}


def test_greedy_joins_takes_every_other_pair_of_a_run():
  qualifies = np.array([1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1], bool)
  expected = np.array([1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0], bool)
  np.testing.assert_array_equal(phrases.greedy_joins(qualifies), expected)
  assert not phrases.greedy_joins(np.zeros([0], bool)).size


def test_overlapping_phrases_join_left_first(tmp_path):
  # 'a b' and 'b c' both qualify: gensim joins a_b, and c starts a new candidate.
  documents = [["a", "b", "c"]] * 10 + [["filler", str(i)] for i in range(5)]
  settings = phrases.PhraseSettings(min_count=1, threshold=1.0)
  corpus = _stored(tmp_path / "corpus-toy", documents)
  keys, counts = phrases.count_bigrams(corpus)
  words, bigrams, len_vocab = phrase_vocab.vocab_counts(corpus.types, corpus.type_counts, keys,
                                                   counts, "_")
  base = len(corpus.types) + 1
  assert phrases.scores(words[keys // base], words[keys % base], bigrams, settings, len_vocab,
                        corpus.num_tokens)[np.searchsorted(keys, [
                            corpus.types.index("a") * base + corpus.types.index("b"),
                            corpus.types.index("b") * base + corpus.types.index("c")])].all()
  ours = _ours(corpus, settings, tmp_path)
  assert ours[:10] == [["a_b", "c"]] * 10
  assert ours == _gensim(documents, settings)


def test_no_phrase_across_documents(tmp_path):
  # 'a' ends every other document and 'b' starts the next: counted across, a_b would join.
  documents = [["x", "a"], ["b", "y"]] * 20 + [["a"], ["b"]] * 20
  corpus = _stored(tmp_path / "corpus-toy", documents)
  keys, counts = phrases.count_bigrams(corpus)
  base = len(corpus.types) + 1
  pairs = {(corpus.types[k // base], corpus.types[k % base]): c for k, c in zip(keys, counts)}
  assert pairs == {("x", "a"): 20, ("b", "y"): 20}
  settings = phrases.PhraseSettings(min_count=1, threshold=0.01)
  ours = _ours(corpus, settings, tmp_path)
  assert "a_b" not in _phrase_types(ours) and "y_x" not in _phrase_types(ours)
  assert ours == _gensim(documents, settings)
  assert [len(d) for d in ours] == [1] * 40 + [1] * 40


def test_blocks_do_not_change_the_result(tmp_path):
  rng = random.Random(3)
  documents = [[rng.choice("abcdef") for _ in range(rng.randint(0, 9))] for _ in range(300)]
  corpus = _stored(tmp_path / "corpus-toy", documents)
  settings = phrases.PhraseSettings(min_count=2, threshold=0.5)
  whole, _ = phrases.phrase_pass(corpus, settings, str(tmp_path / "whole"))
  small, _ = phrases.phrase_pass(corpus, settings, str(tmp_path / "small"), block_tokens=7)
  assert whole.types == small.types
  np.testing.assert_array_equal(whole.token_ids, small.token_ids)
  np.testing.assert_array_equal(whole.document_offsets, small.document_offsets)
  assert _documents(whole) == _gensim(documents, settings)


@pytest.mark.parametrize("delimiter", ["_", "__"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_words_holding_the_delimiter_share_gensim_counts(tmp_path, seed, delimiter):
  # gensim keeps words and bigrams in one dict by string: the word a_b and the bigram (a, b)
  # count together, as do the bigrams (a_b, c) and (a, b_c).
  rng = random.Random(seed)
  d = delimiter
  vocabulary = ["a", "b", "c", "d", f"a{d}b", f"b{d}c", f"a{d}b{d}c", f"c{d}a", "a_", "_b"]
  documents = [[rng.choice(vocabulary) for _ in range(rng.randint(0, 12))] for _ in range(400)]
  corpus = _stored(tmp_path / "corpus-toy", documents)
  for threshold in (0.5, 2.0, 5.0):
    settings = phrases.PhraseSettings(passes=2, min_count=2, threshold=threshold, delimiter=d)
    model = gensim_phrases.Phrases(documents, min_count=2, threshold=threshold, delimiter=d)
    keys, counts = phrases.count_bigrams(corpus)
    _, _, len_vocab = phrase_vocab.vocab_counts(corpus.types, corpus.type_counts, keys, counts, d)
    assert len_vocab == len(model.vocab)
    first = [model[document] for document in documents]
    second = gensim_phrases.Phrases(first, min_count=2, threshold=threshold, delimiter=d)
    expected = [second[document] for document in first]
    assert _ours(corpus, settings, tmp_path / f"{threshold}") == expected


def test_word2phrase_scoring_by_hand(tmp_path):
  documents = ([["new", "york", "city"]] * 3 + [["new", "car"], ["old", "york"], ["rare", "word"]])
  corpus = _stored(tmp_path / "corpus-toy", documents)
  # 15 tokens; new 4, york 4, city 3; (new, york) 3, (york, city) 3; the rest once.
  # word2phrase: (3 - 2) / 4 / 4 * 15 = 0.9375 and (3 - 2) / 4 / 3 * 15 = 1.25;
  # default: 7 words + 5 bigrams = 12 entries: (3 - 2) / 16 * 12 = 0.75 and 1 / 12 * 12 = 1.
  keys, counts = phrases.count_bigrams(corpus)
  words, bigrams, len_vocab = phrase_vocab.vocab_counts(corpus.types, corpus.type_counts, keys,
                                                   counts, "_")
  assert len_vocab == 12 and corpus.num_tokens == 15
  cases = {("word2phrase", 1.0): ["new", "york_city"], ("word2phrase", 0.9): ["new_york", "city"],
           ("default", 1.0): ["new", "york", "city"], ("default", 0.9): ["new", "york_city"],
           ("word2phrase", 1.25): ["new", "york", "city"]}  # strictly above the threshold
  for (scoring, threshold), expected in cases.items():
    settings = phrases.PhraseSettings(min_count=2, threshold=threshold, scoring=scoring)
    ours = _ours(corpus, settings, tmp_path / f"{scoring}-{threshold}")
    assert ours[:3] == [expected] * 3, (scoring, threshold)
    assert ours[3:] == documents[3:]
  # A word seen fewer than min_count times scores 0 in word2phrase, whatever the bigram's count.
  settings = phrases.PhraseSettings(min_count=2, threshold=1e-9, scoring="word2phrase")
  qualifies = phrases.scores(np.array([1, 5]), np.array([5, 5]), np.array([3, 3]), settings,
                             len_vocab, 1000)
  np.testing.assert_array_equal(qualifies, [False, True])


def test_pruned_tokens_stay_pruned_and_never_join(tmp_path):
  writer = corpus_store.CorpusWriter(str(tmp_path / "corpus-pruned"), max_types=2)
  first = _add_words(writer, ["a", "b", "c"], [10, 10, 1])
  writer.add_tokens(first[[0, 1, 2]], [3])  # 'c' is pruned here: it becomes the id U
  later = _add_words(writer, ["a", "b"], [9, 9])
  writer.add_tokens(np.tile(later, 9), [2] * 9)
  corpus = writer.finish({})
  assert corpus.pruned_tokens == 1 and corpus.types == ("a", "b")
  joined = phrases.phrased_corpus(corpus, phrases.PhraseSettings(min_count=1, threshold=0.01),
                                  str(tmp_path), progress=False)
  assert _documents(joined) == [["a_b", "<pruned>"]] + [["a_b"]] * 9
  assert joined.pruned_tokens == 1


def test_cache_is_reused_and_placed_beside_the_input(tmp_path, capsys):
  documents = [["new", "york", "city", "is", "big"]] * 8 + [["new", "car"]] * 3
  corpus = _stored(tmp_path / "corpus-abc", documents)
  settings = phrases.PhraseSettings(passes=2, min_count=1, threshold=1.0)
  joined = phrases.phrased_corpus(corpus, settings, None, progress=True)
  assert os.path.dirname(joined.path) == str(tmp_path)
  assert os.path.basename(joined.path) == f"corpus-abc-phrases-{settings.digest(2)}"
  assert joined.meta["phrases"]["pass"] == 2 and joined.meta["phrases"]["source"] == "abc"
  lines = capsys.readouterr().err.splitlines()
  assert len(lines) == 2 and "phrases pass 1/2:" in lines[0] and "phrase types formed" in lines[0]
  modified = os.path.getmtime(os.path.join(joined.path, "tokens.i32"))
  again = phrases.phrased_corpus(corpus, settings, None, progress=True)
  assert again.path == joined.path and "from the cache" in capsys.readouterr().err
  assert os.path.getmtime(os.path.join(again.path, "tokens.i32")) == modified
  one_pass = phrases.phrased_corpus(corpus, phrases.PhraseSettings(passes=1, min_count=1,
                                                                   threshold=1.0), None, False)
  assert one_pass.path.endswith(settings.digest(1))  # pass 1 of the two-pass run
  assert phrases.phrased_corpus(corpus, phrases.PhraseSettings(passes=0), None).path == \
      corpus.path


def test_settings_of_a_data_config_and_their_checks():
  from w2v_tf import config  # pylint: disable=import-outside-toplevel
  data = config.DataConfig(phrases=2, phrase_min_count=3, phrase_threshold=7.5,
                           phrase_scoring="word2phrase")
  assert phrases.PhraseSettings.of(data) == phrases.PhraseSettings(2, 3, 7.5, "word2phrase")
  assert phrases.PhraseSettings.of(config.DataConfig()).passes == 0
  for bad in ({"min_count": 0}, {"threshold": 0.0}, {"scoring": "npmi"}, {"passes": -1},
              {"delimiter": ""}):
    with pytest.raises(UsageError):
      phrases.PhraseSettings(**bad)
  assert (phrases.PhraseSettings(threshold=10.0).digest(1)
          != phrases.PhraseSettings(threshold=10.0).digest(2)
          != phrases.PhraseSettings(threshold=5.0).digest(2))


# The real corpus: the first reviews of IMDB, cleaned as training cleans them.
_IMDB_REVIEWS = 3000


@pytest.fixture(scope="module")
def imdb(tmp_path_factory):
  from tests.conftest import IMDB_CSV, NLTK_DATA  # pylint: disable=import-outside-toplevel
  if not (os.path.exists(IMDB_CSV) and os.path.isdir(os.path.join(NLTK_DATA, "corpora"))):
    pytest.skip("the shared IMDB data is absent")
  from w2v_tf import corpus as corpus_lib, text  # pylint: disable=import-outside-toplevel
  folder = tmp_path_factory.mktemp("imdb")
  corpus = corpus_lib.load_corpus(IMDB_CSV, stopwords=text.load_stopwords("nltk"),
                                  cache_dir=str(folder), max_documents=_IMDB_REVIEWS,
                                  progress=False)
  documents = list(corpus_lib.documents(corpus))
  defaults = phrases.PhraseSettings(passes=1, min_count=5, threshold=10.0)
  return corpus, documents, folder, _gensim(documents, defaults)


def test_imdb_first_pass_matches_gensim(imdb):
  corpus, documents, folder, expected = imdb
  ours = _ours(corpus, phrases.PhraseSettings(min_count=5, threshold=10.0), folder)
  assert len(ours) == len(documents) == _IMDB_REVIEWS
  assert ours == expected
  assert len(_phrase_types(ours)) > 50


def test_imdb_first_pass_matches_gensim_lower_settings(imdb):
  corpus, documents, folder, defaults = imdb
  settings = phrases.PhraseSettings(min_count=3, threshold=5.0)
  ours = _ours(corpus, settings, folder)
  assert ours == _gensim(documents, settings)
  assert len(_phrase_types(ours)) > len(_phrase_types(defaults))


def test_imdb_second_pass_matches_two_gensim_layers(imdb):
  corpus, _, folder, first = imdb
  settings = phrases.PhraseSettings(passes=2, min_count=5, threshold=10.0)
  ours = _ours(corpus, settings, folder)
  assert ours == _gensim(first, settings)
  # Pass 2 joins phrases of pass 1 with words (or each other): three-word phrases appear.
  assert any(w.count("_") >= 2 for w in _phrase_types(ours))
