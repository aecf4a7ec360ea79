"""Tests for eval/analogy.py: counting rules, 3CosAdd / 3CosMul, agreement with gensim."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from eval import analogy
from w2v_tf.word_vectors import WordVectors, unit_rows

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(REPO, "..", "shared", "data")
IMDB_CSV = os.path.join(SHARED_DATA, "imdb", "IMDB_Dataset.csv.gz")


def _questions_path():
  """questions-words.txt: the shared copy, else gensim's, else skip."""
  shared = os.path.join(SHARED_DATA, "eval", "questions-words.txt")
  if os.path.exists(shared):
    return shared
  try:
    from gensim.test.utils import datapath  # pylint: disable=import-outside-toplevel
    return datapath("questions-words.txt")
  except ImportError:
    pytest.skip("no questions-words.txt (../shared/data/eval) and no gensim")


def _write(path, text):
  path.write_text(text, encoding="utf-8")
  return str(path)


# --- Small hand-made cases -----------------------------------------------------------------------


def test_read_analogies_sections_and_malformed(tmp_path):
  path = _write(tmp_path / "q.txt",
                "a b c d\n: capital\nAthens Greece Oslo Norway\n\nbad line\n"
                ": gram1-x\nx y z w\n1 2 3 4 5\n: empty\n")
  parsed = analogy.read_analogies(path)
  assert [s.name for s in parsed.sections] == ["default", "capital", "gram1-x", "empty"]
  assert [len(s.questions) for s in parsed.sections] == [1, 1, 1, 0]
  assert parsed.malformed_lines == 2
  assert parsed.first_malformed == (5, "bad line")


def test_read_analogies_errors(tmp_path):
  with pytest.raises(analogy.UserError, match="not found"):
    analogy.read_analogies(tmp_path / "missing.txt")
  with pytest.raises(analogy.UserError, match="is empty"):
    analogy.read_analogies(_write(tmp_path / "e.txt", "\n"))
  with pytest.raises(analogy.UserError, match="holds no question"):
    analogy.read_analogies(_write(tmp_path / "n.txt", ": s\na b c\n"))


def _toy():
  """man:king :: woman:queen holds exactly; 'kings' is nearer to king than queen is."""
  rng = np.random.default_rng(0)
  basis = {name: rng.standard_normal(16) for name in ("male", "female", "royal", "person",
                                                      "plural")}
  vectors = {
      "man": basis["person"] + basis["male"],
      "woman": basis["person"] + basis["female"],
      "king": basis["royal"] + basis["male"],
      "queen": basis["royal"] + basis["female"],
      "kings": basis["royal"] + basis["male"] + 0.2 * basis["plural"],
  }
  words = ["man", "woman", "king", "queen", "kings"] + [f"filler{i}" for i in range(20)]
  matrix = np.stack([vectors.get(w, rng.standard_normal(16)) for w in words]).astype(np.float32)
  return words, matrix


@pytest.mark.parametrize("method", analogy.METHODS)
def test_toy_analogy_is_answered(tmp_path, method):
  words, matrix = _toy()
  path = _write(tmp_path / "q.txt", ": family\nman king woman queen\nMAN KING WOMAN QUEEN\n"
                ": gram8-plural\nking kings king kings\n")
  result = analogy.evaluate_analogies(matrix, words, path, method=method)
  family, plural = result["sections"]
  assert (family["correct"], family["seen"], family["questions"]) == (2, 2, 2)
  # "king kings king ?": the question words king/kings are excluded, so it cannot be right.
  assert (plural["correct"], plural["seen"]) == (0, 1)
  assert result["semantic"]["correct"] == 2 and result["syntactic"]["seen"] == 1
  assert result["total"] == {"correct": 2, "seen": 3, "questions": 3, "accuracy": 2 / 3,
                             "coverage": 1.0}


def test_case_sensitive_mode_and_restrict_vocab(tmp_path):
  words, matrix = _toy()
  path = _write(tmp_path / "q.txt", ": family\nman king woman queen\nMAN KING WOMAN QUEEN\n")
  result = analogy.evaluate_analogies(matrix, words, path, case_insensitive=False)
  assert (result["total"]["correct"], result["total"]["seen"]) == (1, 1)
  assert result["total"]["coverage"] == 0.5
  # queen is row 4: with only 3 candidates every question is skipped, but still counted.
  result = analogy.evaluate_analogies(matrix, words, path, restrict_vocab=3)
  assert (result["total"]["seen"], result["total"]["questions"]) == (0, 2)
  assert result["total"]["accuracy"] is None and result["candidates"] == 3


def test_case_variant_of_a_question_word_is_passed_over(tmp_path):
  words, matrix = _toy()
  # "King" (a case variant of the question word king) is the best raw candidate.
  words = words + ["King"]
  matrix = np.vstack([matrix, matrix[2] * 1.01 + matrix[3] * 0.5])
  path = _write(tmp_path / "q.txt", ": family\nman king woman queen\n")
  result = analogy.evaluate_analogies(matrix, words, path, restrict_vocab=0)
  assert result["total"]["correct"] == 1


def test_top_k_counts_answers_after_the_first(tmp_path):
  words, matrix = _toy()
  path = _write(tmp_path / "q.txt", ": family\nman king woman kings\n")
  result = analogy.evaluate_analogies(matrix, words, path, top_k=2)
  section = result["sections"][0]
  assert (section["correct"], section["correct_at_k"]) == (0, 1)
  assert result["total"]["accuracy_at_k"] == 1.0
  assert "correct_at_k" not in analogy.evaluate_analogies(matrix, words, path)["total"]


def test_bad_arguments(tmp_path):
  words, matrix = _toy()
  path = _write(tmp_path / "q.txt", ": s\nman king woman queen\n")
  with pytest.raises(ValueError):
    analogy.evaluate_analogies(matrix, words, path, method="3cosavg")
  with pytest.raises(ValueError):
    analogy.evaluate_analogies(matrix, words, path, top_k=0)
  with pytest.raises(ValueError):
    analogy.evaluate_analogies(matrix[:3], words, path)


# --- Agreement with gensim -----------------------------------------------------------------------


def _gensim_counts(kv, questions_path, restrict_vocab, method):
  """Per-section (correct, seen) from gensim: evaluate_word_analogies, or a cosmul twin of it."""
  gensim = pytest.importorskip("gensim")
  restrict = restrict_vocab or len(kv)
  if method == "3cosadd":
    _, sections = kv.evaluate_word_analogies(questions_path, restrict_vocab=restrict)
    return [(len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in sections[:-1]]
  # most_similar_cosmul ignores restrict_vocab: search a KeyedVectors of the first rows only.
  small = gensim.models.KeyedVectors(kv.vector_size)
  small.add_vectors(kv.index_to_key[:restrict], kv.vectors[:restrict])
  ok_vocab = {}
  for i, key in enumerate(small.index_to_key):
    ok_vocab.setdefault(key.upper(), i)
  counts = []
  for section in analogy.read_analogies(questions_path).sections:
    correct = seen = 0
    for question in section.questions:
      a, b, c, expected = (w.upper() for w in question)
      if not all(w in ok_vocab for w in (a, b, c, expected)):
        continue
      seen += 1
      original, small.key_to_index = small.key_to_index, ok_vocab
      sims = small.most_similar_cosmul(positive=[b, c], negative=[a], topn=5)
      small.key_to_index = original
      predicted = None
      for key, _ in sims:  # evaluate_word_analogies' loop
        predicted = key.upper()
        if predicted in ok_vocab and predicted not in {a, b, c}:
          break
      correct += predicted == expected
    counts.append((correct, seen))
  return counts


def _planted_vocabulary(questions_path, seed=0, dim=24, twins=True):
  """Words of the analogy set with planted relation offsets, case variants, exact twins, filler.

  Returns (words, vectors [V, d]) with a mix of right and wrong answers, case variants that
  land in the top 5 (before and after their lowercase form) and exactly tied candidates.
  """
  rng = np.random.default_rng(seed)
  parsed = analogy.read_analogies(questions_path)
  vocab = sorted({w.lower() for s in parsed.sections for q in s.questions for w in q})
  vectors = {w: rng.standard_normal(dim) for w in vocab}
  planted = set()
  for section in parsed.sections:
    relation = rng.standard_normal(dim) * 0.8
    for question in section.questions:
      a, b, c, d = (w.lower() for w in question)
      for x, y in ((a, b), (c, d)):
        if y not in planted and x != y:
          vectors[y] = vectors[x] + relation + 0.5 * rng.standard_normal(dim)
          planted.add(y)
  order = list(rng.permutation(vocab))
  words = []
  for word in order:
    roll = rng.random()
    if roll < 0.05:  # case variant first: it becomes the canonical row of the word
      words += [word.capitalize(), word]
      vectors[word.capitalize()] = vectors[word] + 0.05 * rng.standard_normal(dim)
    elif roll < 0.10:  # case variant after: passed over as an answer
      words += [word, word.upper()]
      vectors[word.upper()] = vectors[word] + 0.05 * rng.standard_normal(dim)
    elif roll < 0.13 and twins:  # an exact twin under another name: a tie gensim breaks its own way
      words += [word, word + "_twin"]
      vectors[word + "_twin"] = vectors[word].copy()
    else:
      words.append(word)
  for i in range(300):
    words.insert(int(rng.integers(len(words))), f"filler{i}")
    vectors[f"filler{i}"] = rng.standard_normal(dim)
  return words, np.stack([vectors[w] for w in words]).astype(np.float32)


@pytest.mark.parametrize("method,restrict_vocab", [
    ("3cosadd", 0), ("3cosadd", 1200), ("3cosmul", 1200)])
def test_matches_gensim_on_planted_vectors(method, restrict_vocab):
  gensim = pytest.importorskip("gensim")
  path = _questions_path()
  words, vectors = _planted_vocabulary(path)
  kv = gensim.models.KeyedVectors(vectors.shape[1])
  kv.add_vectors(words, vectors)
  ours = analogy.evaluate_analogies(vectors, words, path, restrict_vocab=restrict_vocab,
                                    method=method)
  theirs = _gensim_counts(kv, path, restrict_vocab, method)
  assert [(s["correct"], s["seen"]) for s in ours["sections"]] == theirs
  total = ours["total"]
  assert 0 < total["correct"] < total["seen"]  # a meaningful mix
  assert total["questions"] == 19544


def _imdb_sentences(num_reviews):
  import pandas as pd  # pylint: disable=import-outside-toplevel
  reviews = pd.read_csv(IMDB_CSV, nrows=num_reviews)["review"]
  return [re.findall(r"[a-z]+", r.lower().replace("<br />", " ")) for r in reviews]


@pytest.fixture(name="imdb_vectors", scope="module")
def fixture_imdb_vectors(tmp_path_factory):
  """A small gensim Word2Vec on IMDB reviews, saved in word2vec binary format."""
  gensim = pytest.importorskip("gensim")
  if not os.path.exists(IMDB_CSV):
    pytest.skip(f"IMDB data not found at {IMDB_CSV}")
  model = gensim.models.Word2Vec(_imdb_sentences(3000), vector_size=50, window=5, min_count=3,
                                 workers=1, seed=1, epochs=4)
  path = str(tmp_path_factory.mktemp("imdb") / "vectors.bin")
  model.wv.save_word2vec_format(path, binary=True)
  return path


@pytest.mark.parametrize("method,restrict_vocab", [("3cosadd", 10000), ("3cosmul", 3000)])
def test_matches_gensim_on_trained_vectors(imdb_vectors, method, restrict_vocab):
  gensim = pytest.importorskip("gensim")
  path = _questions_path()
  kv = gensim.models.KeyedVectors.load_word2vec_format(imdb_vectors, binary=True)
  loaded = WordVectors.load(imdb_vectors)
  words, vectors = list(loaded.words), loaded.vectors
  ours = analogy.evaluate_analogies(vectors, words, path, restrict_vocab=restrict_vocab,
                                    method=method)
  theirs = _gensim_counts(kv, path, restrict_vocab, method)
  assert [(s["correct"], s["seen"]) for s in ours["sections"]] == theirs
  assert ours["total"]["seen"] > 500


def test_summaries_add_up_and_json_schema():
  path = _questions_path()
  words, vectors = _planted_vocabulary(path, seed=1)
  result = analogy.evaluate_analogies(vectors, words, path, top_k=5)
  json.dumps(result)  # serialisable
  sections = result["sections"]
  assert len(sections) == 14
  semantic = [s for s in sections if not s["name"].startswith("gram")]
  assert [s["name"] for s in semantic] == ["capital-common-countries", "capital-world",
                                           "currency", "city-in-state", "family"]
  for key, members in (("semantic", semantic), ("syntactic", sections[5:]),
                       ("total", sections)):
    for field in ("correct", "seen", "questions", "correct_at_k"):
      assert result[key][field] == sum(s[field] for s in members)
    assert result[key]["accuracy"] == pytest.approx(result[key]["correct"] / result[key]["seen"])
  for entry in sections + [result["total"]]:
    assert set(entry) >= {"correct", "seen", "questions", "accuracy", "coverage",
                          "correct_at_k", "accuracy_at_k"}
    assert entry["correct"] <= entry["correct_at_k"] <= entry["seen"] <= entry["questions"]
  assert result["method"] == "3cosadd" and result["restrict_vocab"] == 30000


def test_top_k_agrees_with_brute_force():
  path = _questions_path()
  words, vectors = _planted_vocabulary(path, seed=2, twins=False)  # twins: ties at rank k
  k = 3
  result = analogy.evaluate_analogies(vectors, words, path, restrict_vocab=0, top_k=k)
  unit = unit_rows(vectors)
  index = {}
  for i, w in enumerate(words):
    index.setdefault(w.upper(), i)
  forms = np.array([index[w.upper()] for w in words])
  for got, section in zip(result["sections"], analogy.read_analogies(path).sections):
    expected_hits = 0
    for question in section.questions[::7]:  # a sample keeps this quick
      a, b, c, d = (index.get(w.upper()) for w in question)
      if None in (a, b, c, d):
        continue
      scores = unit @ (unit[b] - unit[a] + unit[c])
      ranked = [forms[i] for i in np.argsort(-scores) if forms[i] not in (a, b, c)]
      expected_hits += d in ranked[:k]
    sample = analogy.AnalogySet(path, [analogy.AnalogySection(section.name,
                                                              section.questions[::7])])
    ours = analogy.evaluate_analogies(vectors, words, sample, restrict_vocab=0, top_k=k)
    assert ours["total"]["correct_at_k"] == expected_hits, section.name
    assert got["correct_at_k"] >= ours["total"]["correct_at_k"]


def test_binary_prints_table_and_writes_json(tmp_path):
  words, matrix = _toy()
  vectors_path = tmp_path / "v.txt"
  vectors_path.write_text(f"{len(words)} {matrix.shape[1]}\n" + "".join(
      w + " " + " ".join(map(repr, map(float, row))) + "\n" for w, row in zip(words, matrix)))
  questions = _write(tmp_path / "q.txt", ": family\nman king woman queen\nfoo bar\n")
  out_json = tmp_path / "out" / "r.json"
  run = subprocess.run(
      [sys.executable, "-m", "eval.analogy", f"--vectors={vectors_path}",
       f"--analogies={questions}", "--method=3cosmul", "--top_k=2",
       f"--output_json={out_json}"], cwd=REPO, capture_output=True, text=True, timeout=120,
      check=False)
  assert run.returncode == 0, run.stderr
  assert "family" in run.stdout and "1/1" in run.stdout
  assert "skipped 1 malformed lines" in run.stderr
  result = json.loads(out_json.read_text())
  assert result["total"]["correct"] == 1 and result["method"] == "3cosmul"
  assert result["malformed_lines"] == 1 and result["vectors"] == str(vectors_path)


@pytest.mark.parametrize("method", analogy.METHODS)
def test_chunking_and_cache_do_not_change_results(monkeypatch, method):
  path = _questions_path()
  words, vectors = _planted_vocabulary(path, seed=3)
  sample = analogy.read_analogies(path)
  for section in sample.sections:
    section.questions = section.questions[::5]
  reference = analogy.evaluate_analogies(vectors, words, sample, method=method, top_k=3)
  monkeypatch.setattr(analogy, "_CACHE_ELEMENTS", 0)  # cosine rows per chunk
  monkeypatch.setattr(analogy, "_CHUNK_ELEMENTS", 7 * len(words))  # 7 questions per chunk
  chunked = analogy.evaluate_analogies(vectors, words, sample, method=method, top_k=3)
  for key in ("sections", "total"):
    assert chunked[key] == reference[key]
