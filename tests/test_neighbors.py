"""Tests for eval/neighbors.py: nearest neighbours, analogy queries, the prompt and the binary."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest

from eval import neighbors

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _toy():
  rng = np.random.default_rng(0)
  basis = {n: rng.standard_normal(16) for n in ("male", "female", "royal", "person")}
  named = {
      "man": basis["person"] + basis["male"],
      "woman": basis["person"] + basis["female"],
      "king": basis["royal"] + basis["male"],
      "queen": basis["royal"] + basis["female"],
  }
  named["King"] = named["king"] * 1.02  # a case variant, nearer to king than anything
  named["monarch"] = named["king"] + 0.3 * rng.standard_normal(16)
  words = ["man", "woman", "king", "queen", "King", "monarch"] + [f"f{i}" for i in range(30)]
  vectors = np.stack([named.get(w, rng.standard_normal(16)) for w in words]).astype(np.float32)
  return words, vectors


def test_nearest_excludes_the_word_and_its_case_variants():
  words, vectors = _toy()
  index = neighbors.Neighbors(words, vectors)
  result = index.nearest("king", top_k=3)
  assert result[0][0] == "monarch"
  assert all(w not in ("king", "King") for w, _ in result)
  unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
  assert result[0][1] == pytest.approx(float(unit[2] @ unit[5]), abs=1e-6)
  scores = [s for _, s in result]
  assert scores == sorted(scores, reverse=True) and len(result) == 3


def test_lookup_is_exact_then_case_insensitive():
  words, vectors = _toy()
  index = neighbors.Neighbors(words, vectors)
  assert index.row("King") == 4 and index.row("KING") == 2 and index.row("Queen") == 3
  with pytest.raises(KeyError):
    index.row("emperor")


@pytest.mark.parametrize("method", neighbors.METHODS)
def test_analogy(method):
  words, vectors = _toy()
  index = neighbors.Neighbors(words, vectors)
  assert index.analogy("man", "king", "woman", top_k=1, method=method)[0][0] == "queen"
  assert index.analogy("king", "man", "queen", top_k=1, method=method)[0][0] == "woman"


def test_restrict_vocab_limits_answers_not_queries():
  words, vectors = _toy()
  index = neighbors.Neighbors(words, vectors, restrict_vocab=4)
  assert {w for w, _ in index.nearest("monarch", top_k=10)} <= set(words[:4])


def test_interactive_loop():
  words, vectors = _toy()
  index = neighbors.Neighbors(words, vectors)
  out = io.StringIO()
  neighbors.interactive(index, 2, "3cosadd", stdin=io.StringIO(
      "king\nman king woman\nemperor\nman king\nEXIT\nqueen\n"), stdout=out)
  text = out.getvalue()
  assert "> king" in text and "monarch" in text
  assert "man : king :: woman : ?" in text and "queen" in text
  assert "out of vocabulary: 'emperor'" in text
  assert "give one word" in text
  assert "> queen" not in text  # stopped at EXIT


def _write_vectors(tmp_path):
  words, vectors = _toy()
  path = tmp_path / "v.bin"
  with open(path, "wb") as f:
    f.write(f"{len(words)} {vectors.shape[1]}\n".encode())
    for w, row in zip(words, vectors):
      f.write(w.encode() + b" " + row.astype("<f4").tobytes() + b"\n")
  return path


def _run(*args, stdin=""):
  return subprocess.run([sys.executable, "-m", "eval.neighbors", *args], cwd=REPO, input=stdin,
                        capture_output=True, text=True, timeout=120, check=False)


def test_binary_word_and_analogy(tmp_path):
  path = _write_vectors(tmp_path)
  run = _run(f"--vectors={path}", "--word=king", "--analogy=man king woman", "--top_k=2")
  assert run.returncode == 0, run.stderr
  assert "nearest to 'king'" in run.stdout and "monarch" in run.stdout
  assert "man : king :: woman : ?" in run.stdout and "queen" in run.stdout


def test_binary_interactive_from_stdin(tmp_path):
  path = _write_vectors(tmp_path)
  run = _run(f"--vectors={path}", "--top_k=1", stdin="woman\nman king woman\n")
  assert run.returncode == 0, run.stderr
  assert "> woman" in run.stdout and "> man king woman" in run.stdout
  assert "queen" in run.stdout


def test_binary_errors(tmp_path):
  path = _write_vectors(tmp_path)
  run = _run(f"--vectors={path}", "--word=emperor")
  assert run.returncode == 1
  assert run.stderr.strip().splitlines() == [
      f"error: 'emperor' is not in the vocabulary of {path} (36 words): try another word "
      "(lookup is case-insensitive)"]
  run = _run(f"--vectors={path}", "--analogy=man king")
  assert run.returncode == 2 and "give three words" in run.stderr
