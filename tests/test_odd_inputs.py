"""Odd but valid-looking inputs, through the binaries: they end honestly (one line), or work.

Table-driven like tests/test_errors.py: each case runs `python -m MODULE` (through
`tests/binaries.Runner`) and checks the exit status, the `error:` / `warning:` lines on stderr
(regexes, in order, and no other line) and, where given, a regex on stdout. Covers: human scores
that are NaN or infinity, zero vectors and undefined scores in the eval binaries. The tests
after the table run the trainer, `w2v_tf.data` and `w2v_tf.export` on text shards holding
control characters, lone CR line ends, empty compressed shards, symlink loops, a tiny
`--max_vocab_size`, a corpus that subsampling empties, and the inputs whose messages named
the wrong problem (docs/reliability.md has a row for each).
"""

import dataclasses
import os
import re

import numpy as np
import pytest

from tests.binaries import module_runner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
       "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}

WORDS = ["man", "king", "woman", "queen", "good", "bad", "zero", "nil"]


def _text_vectors(words, rows):
  return f"{len(words)} {rows.shape[1]}\n" + "".join(
      w + " " + " ".join(f"{v:.5f}" for v in row) + "\n" for w, row in zip(words, rows))


@pytest.fixture(name="files", scope="module")
def fixture_files(tmp_path_factory):
  """Input files; returns {name: path} for the argument templates."""
  tmp = tmp_path_factory.mktemp("odd")
  files = {"tmp": str(tmp)}

  def write(name, content):
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    files[name.replace(".", "_").replace("-", "_")] = str(path)
    return path

  rows = np.random.default_rng(0).standard_normal((len(WORDS), 4))
  write("good.txt", _text_vectors(WORDS, rows))
  zero = rows.copy()
  zero[6:] = 0.0  # "zero" and "nil"
  write("zero.txt", _text_vectors(WORDS, zero))
  write("allzero.txt", _text_vectors(WORDS, np.zeros_like(rows)))
  write("p_nan.tsv", "man\tking\t5\nwoman\tqueen\tnan\ngood\tbad\t1\nman\tqueen\t3\n")
  write("p_inf.tsv", "# comment\nman king 5\nwoman queen -inf\n")
  write("p_good.tsv", "man\tking\t5\nwoman\tqueen\t6\ngood\tbad\t1\n")
  write("p_same.tsv", "man\tking\t5\nwoman\tqueen\t5\ngood\tbad\t5\n")
  write("q_oov.txt", ": family\nman king woman emperor\n")
  return files


fixture_runner = module_runner(REPO, ENV, workers=2, preload=("numpy", "absl.flags", "eval.cli"))


@dataclasses.dataclass
class Case:
  """One binary run: `args` are templates over `files` and `{out}` (a fresh, empty folder).

  Attributes:
    stderr: regexes, one per stderr line, in order (no other line may appear).
    stdout: a regex searched in stdout (None: not checked).
  """
  name: str
  module: str
  args: list
  code: int
  stderr: list
  stdout: str | None = None


CASES = [
    # --- item: eval numbers are checked as vectors are -------------------------------------
    Case("pairs-nan-score", "eval.similarity", ["--vectors={good_txt}", "--pairs={p_nan_tsv}"],
         1, [r"^error: \S*p_nan\.tsv:2: the score of 'woman' and 'queen' is 'nan', not a finite "
             r"number: fix the line or remove it$"]),
    Case("pairs-inf-score", "eval.similarity", ["--vectors={good_txt}", "--pairs={p_inf_tsv}"],
         1, [r"^error: \S*p_inf\.tsv:3: the score of 'woman' and 'queen' is '-inf'"]),
    # --- item: zero vectors and undefined scores are said so -------------------------------
    Case("neighbors-of-a-zero-vector", "eval.neighbors", ["--vectors={zero_txt}", "--word=zero"],
         0, [r"^warning: \S*zero\.txt: 2 of 8 rows are all zeros \(the first is row 7, 'zero'\): "
             r"a zero vector has no direction"],
         stdout=r"nearest to 'zero' \(row 7\), cosine: n/a \(its vector is all zeros"),
    Case("analogy-with-a-zero-vector", "eval.neighbors",
         ["--vectors={zero_txt}", "--analogy=man king nil"], 0, [r"^warning: .*all zeros"],
         stdout=r"man : king :: nil : \?  n/a \('nil' has an all-zero vector"),
    Case("neighbors-unaffected", "eval.neighbors", ["--vectors={good_txt}", "--word=man"], 0, [],
         stdout=r"nearest to 'man' \(row 1\), cosine:\n   1\. "),
    Case("similarity-all-zero-vectors", "eval.similarity",
         ["--vectors={allzero_txt}", "--pairs={p_good_tsv}", "--output_json={out}/r.json"], 0,
         [r"^warning: .*8 of 8 rows are all zeros",
          r"^warning: \S*p_good\.tsv: spearman and pearson undefined over the 3 pairs used: the "
          r"model's similarities are all equal; 6 of the words have all-zero vectors"],
         stdout=r"p_good\.tsv\s+n/a\s+n/a\s+3/3 "),
    Case("similarity-constant-human-scores", "eval.similarity",
         ["--vectors={good_txt}", "--pairs={p_same_tsv}"], 0,
         [r"^warning: .*spearman and pearson undefined over the 3 pairs used: every human score "
          r"is the same"], stdout=r"n/a\s+n/a"),
    Case("analogy-none-seen", "eval.analogy",
         ["--vectors={good_txt}", "--analogies={q_oov_txt}", "--output_json={out}/r.json"], 0,
         [r"^warning: \S*q_oov\.txt: none of its 1 questions has all four words among the first "
          r"8 words of the vocabulary: the accuracy is undefined \(n/a\)"],
         stdout=r"total\s+0/0\s+n/a\s+0\.0%"),
]


@pytest.fixture(name="results", scope="module")
def fixture_results(runner, files, tmp_path_factory, request):
  """Runs the selected cases; returns {name: (run, out folder)}."""
  selected = {item.callspec.params["case"].name for item in request.session.items
              if getattr(item, "originalname", None) == "test_odd_input"
              and hasattr(item, "callspec")}
  selected |= {"similarity-all-zero-vectors", "analogy-none-seen"}  # the JSON test reads them
  outs = tmp_path_factory.mktemp("outs")
  results = {}
  for case in CASES:
    if case.name in selected:
      out = outs / case.name
      out.mkdir()
      argv = [a.format(out=out, **files) for a in case.args]
      results[case.name] = (runner.run(case.module, argv), out)
  return results


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_odd_input(results, case):
  run, out = results[case.name]
  assert "Traceback" not in run.stderr, run.stderr
  assert run.returncode == case.code, run.stderr
  lines = [line for line in run.stderr.splitlines() if line.strip()]
  assert len(lines) == len(case.stderr), run.stderr
  for line, pattern in zip(lines, case.stderr):
    assert re.search(pattern, line), (pattern, line)
  if case.stdout is not None:
    assert re.search(case.stdout, run.stdout), run.stdout
  if case.code:
    assert not os.listdir(out), "an error left files behind"


def test_undefined_scores_are_null_in_the_json(results):
  """JSON has no NaN: an undefined correlation or accuracy is null, not NaN or 0."""
  import json  # pylint: disable=import-outside-toplevel
  _, out = results["similarity-all-zero-vectors"]
  result = json.loads((out / "r.json").read_text())["results"][0]
  assert result["spearman"] is None and result["pearson"] is None and result["used"] == 3
  _, out = results["analogy-none-seen"]
  total = json.loads((out / "r.json").read_text())["total"]
  assert total["accuracy"] is None and total["seen"] == 0


# --- Text shards: what the cleaning keeps round-trips through every export -------------------

# Every kind of character that is no word character but that str.split() / splitlines() or a
# binary vectors reader treats specially: NUL and other C0 controls, DEL, C1 (U+0080, U+0085),
# the whitespace \x0b \x0c \x1c-\x1f, U+2028, a byte-order mark. The first line has none (a NUL
# there is refused: the file looks binary).
_ODD = ["\x00", "\x01", "\x08", "\x1b", "\x7f", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f",
        "\u0080", "\u0085", "\u2028", "\ufeff"]
_PLAIN = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "theta"]
_TRAIN_FAST = ["--stopwords=none", "--epochs=1", "--batch_size=64", "--sample_group_centers=64",
               "--embedding_dim=8", "--min_count=1", "--num_sampled=4", "--nojit_compile",
               "--noprogress", "--heldout_documents=0"]


fixture_train_runner = module_runner(REPO, ENV, workers=2, name="train_runner")


def _odd_shard(path):
  words = _PLAIN
  lines = [" ".join(words)] + [
      f"{words[i % 8]}{c}{words[(i + 1) % 8]} {words[(i + 2) % 8]} x{c}y" for i, c in
      enumerate(_ODD * 4)] + ["only\x00zeta"]  # zeta is nowhere else: nothing after a NUL is lost
  path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


@pytest.mark.parametrize("cleaning", ["none", "none --lowercase", "imdb"])
def test_control_characters_separate_words_and_every_export_reads_back(
    train_runner, tmp_path, cleaning):
  """A NUL, another control character or odd whitespace inside a line separates two words.

  (`foo\0bar` was one word that vectors.bin could not be read back with; with --lowercase,
  tf.strings.lower dropped the rest of a line after a NUL.)
  """
  from w2v_tf.word_vectors import WordVectors  # pylint: disable=import-outside-toplevel
  shard = tmp_path / "odd.txt"
  _odd_shard(shard)
  model = tmp_path / "m"
  run = train_runner.run("w2v_tf.train", [*_TRAIN_FAST, f"--train_text={shard}",
                                          f"--cleaning={cleaning.split()[0]}",
                                          *cleaning.split()[1:], f"--model_dir={model}",
                                          f"--cache_dir={tmp_path / 'cache'}"])
  assert run.returncode == 0, run.stderr
  assert "warning" not in run.stderr and "error" not in run.stderr, run.stderr
  exported = tmp_path / "e"
  run = train_runner.run("w2v_tf.export", [f"--model_dir={model}", f"--output_dir={exported}"])
  assert run.returncode == 0, run.stderr
  vocab = [line.split("\t")[0] for line in
           (model / "vocab.tsv").read_text(encoding="utf-8").splitlines()]
  # Every odd character separated two words: only the plain words are left.
  expected = set(_PLAIN) | {"only", "zeta"} | (
      {"x", "y"} if cleaning != "imdb" else set())  # imdb drops one-letter tokens
  assert set(vocab) == expected, vocab
  metadata = (exported / "projector" / "metadata.tsv").read_text(encoding="utf-8")
  assert set(metadata.split()) >= expected
  for folder in (model, exported):
    for name in ("vectors.bin", "vectors.txt"):
      loaded = WordVectors.load(folder / name)
      assert list(loaded.words) == vocab, (name, loaded.words)
      # The eval binaries read it too.
      run = train_runner.run("eval.neighbors", [f"--vectors={folder / name}", "--word=alpha"])
      assert run.returncode == 0 and not run.stderr.strip(), run.stderr
  gensim = pytest.importorskip("gensim")
  for name, binary in (("vectors.bin", True), ("vectors.txt", False)):
    keyed = gensim.models.KeyedVectors.load_word2vec_format(str(exported / name), binary=binary)
    assert list(keyed.index_to_key) == vocab


def _dump(train_runner, tmp_path, spec, *flags):
  """Runs `w2v_tf.data --dump_tokens` on `spec`; returns (run, the dumped documents or None)."""
  out = tmp_path / "tokens.txt"
  run = train_runner.run("w2v_tf.data", [f"--train_text={spec}", "--stopwords=none",
                                         "--cache_dir=", f"--dump_tokens={out}", *flags])
  return run, (out.read_text(encoding="utf-8").splitlines() if out.exists() else None)


def test_cr_only_line_ends_are_documents(train_runner, tmp_path):
  """A lone "\\r" ends a line (document): the file was one document before."""
  shard = tmp_path / "mac.txt"
  shard.write_bytes(b"one two\rthree four\r\rfive six\r")
  run, documents = _dump(train_runner, tmp_path, shard, "--cleaning=none")
  assert run.returncode == 0 and "4 documents, 6 tokens" in run.stderr, run.stderr
  assert not re.search(r"^(warning|error):", run.stderr, re.M), run.stderr
  assert documents == ["one two", "three four", "", "five six"]


@pytest.mark.parametrize("suffix", ["", ".gz", ".bz2"])
def test_an_empty_shard_is_empty_whatever_its_compression(train_runner, tmp_path, suffix):
  """A 0-byte shard adds no line, like an empty plain file (a 0-byte .bz2 was 'truncated')."""
  folder = tmp_path / "shards"
  folder.mkdir()
  (folder / "a.txt").write_bytes(b"one two\nthree\n")
  (folder / f"b.txt{suffix}").write_bytes(b"")
  run, documents = _dump(train_runner, tmp_path, folder, "--cleaning=none")
  assert run.returncode == 0, run.stderr
  assert not re.search(r"^(warning|error):", run.stderr, re.M), run.stderr
  assert documents == ["one two", "three"]
  run, _ = _dump(train_runner, tmp_path, folder / f"b.txt{suffix}", "--cleaning=none")
  assert run.returncode == 1, run.stderr  # alone, it is an empty corpus, as a plain empty file
  assert re.search(r"^error: \S*b\.txt\S*: no tokens left after cleaning \(0 lines read\)",
                   run.stderr, re.M), run.stderr


def test_max_vocab_size_says_what_its_prunes_dropped(train_runner, tmp_path):
  """One prune drops nothing (gensim's rule): the warning says so (it said words were dropped)."""
  shard = tmp_path / "small.txt"
  shard.write_bytes(b"one two three\nfour one\n")
  run, documents = _dump(train_runner, tmp_path, shard, "--cleaning=none",
                         "--max_vocab_size=1")
  assert run.returncode == 0, run.stderr
  warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
  assert len(warnings) == 1, run.stderr
  assert re.search(r"outgrew --max_vocab_size=1 1 time\(s\) \(checked after each batch of "
                   r"documents\), but no word was dropped: .* the table kept all its 4 words",
                   warnings[0]), warnings[0]
  assert documents == ["one two three", "four one"]


def test_a_glob_through_directory_symlink_loops_ends(train_runner, tmp_path):
  """`d/**` with `d/loop -> .` and `d/up -> ../d` ran for over 10 minutes to 4.3 GB of RSS:
  each real directory is now visited once, and each file read once."""
  root = tmp_path / "d"
  (root / "sub").mkdir(parents=True)
  (root / "a.txt").write_bytes(b"one two\n")
  (root / "sub" / "b.txt").write_bytes(b"three four\n")
  os.symlink(".", root / "loop")
  os.symlink("../d", root / "up")
  os.symlink("..", root / "sub" / "parent")
  for spec in (f"{root}/**", f"{root}/**/*.txt", str(root)):
    run, documents = _dump(train_runner, tmp_path, spec, "--cleaning=none")
    assert run.returncode == 0, run.stderr
    assert documents == ["one two", "three four"], (spec, documents)


def test_glob_paths_matches_glob_on_trees_without_loops(tmp_path):
  import glob  # pylint: disable=import-outside-toplevel
  from w2v_tf.sources import base  # pylint: disable=import-outside-toplevel
  for name in ("a.txt", "b.gz", ".h.txt", "s/c.txt", "s/.hid/d.txt", "s/t/e.txt", "x/s/f.txt"):
    path = tmp_path / "r" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x\n")
  os.symlink(tmp_path / "r" / "s" / "t", tmp_path / "r" / "link")  # a folder's second name
  os.symlink(tmp_path / "r" / "x", tmp_path / "r" / "s" / "xlink")  # a folder's second name
  base_dir = str(tmp_path / "r")
  for pattern in ("**", "**/*.txt", "*/*.txt", "**/.hid/*", "**/s/*.txt", "s/**", "s*/**/*",
                  "**/e.txt", "link/**"):
    spec = os.path.join(base_dir, pattern)
    # glob's, but for what `**` reaches under a folder's second name (walked under its own
    # where the walk's root holds it: r/x is outside `s/**`'s).
    second = {"s/": r"/link/.", "link/": r"^$"}.get(pattern[:pattern.find("/") + 1],
                                                     r"/(link|xlink)/.")
    expected = [p for p in glob.glob(spec, recursive=True)
                if "**" not in pattern or not re.search(second, p[len(base_dir):])]
    assert sorted(base.glob_paths(spec)) == sorted(expected), pattern
  outside = tmp_path / "outside"
  (outside / "o").mkdir(parents=True)
  (outside / "o" / "g.txt").write_bytes(b"x\n")
  os.symlink(outside, tmp_path / "r" / "out1")  # reached through the first link only
  os.symlink(outside, tmp_path / "r" / "s" / "out2")
  os.symlink(outside / "o", outside / "o" / "self")
  assert [os.path.relpath(p, base_dir) for p in base.glob_paths(base_dir + "/**/g.txt")] == [
      "out1/o/g.txt"]


# --- Messages that named the wrong problem ----------------------------------------------------


def _one_error(run, pattern):
  lines = [line for line in run.stderr.splitlines() if line.strip()]
  assert "Traceback" not in run.stderr, run.stderr
  assert run.returncode == 1, run.stderr
  errors = [line for line in lines if line.startswith("error: ")]
  assert len(errors) == 1 and re.search(pattern, errors[0]), run.stderr


def test_message_slips_in_inputs(train_runner, runner, files, tmp_path):
  """A dangling symlink, a folder as --pairs, a compressed or UTF-16 shard under a text name."""
  os.symlink(tmp_path / "gone.txt", tmp_path / "link.txt")
  run, _ = _dump(train_runner, tmp_path, tmp_path / "link.txt", "--cleaning=none")
  _one_error(run, r"link\.txt: is a symlink to \S*gone\.txt, which does not exist \(a dangling "
                  r"link\)")  # it said "a pipe or a device"
  run = runner.run("eval.similarity", [f"--vectors={files['good_txt']}",
                                       f"--pairs={tmp_path}"])
  _one_error(run, r"--pairs file \S+ is a directory, not a file")  # it said "not found"
  run = runner.run("eval.similarity", [f"--vectors={files['good_txt']}",
                                       f"--pairs={tmp_path / 'link.txt'}"])
  _one_error(run, r"--pairs file \S*link\.txt is a symlink to \S*gone\.txt, which does not")
  run = runner.run("eval.neighbors", [f"--vectors={tmp_path / 'link.txt'}", "--word=man"])
  _one_error(run, r"vectors file \S*link\.txt is a symlink to .*dangling link")
  import gzip  # pylint: disable=import-outside-toplevel
  (tmp_path / "packed.txt").write_bytes(gzip.compress(b"one two\n"))
  run, _ = _dump(train_runner, tmp_path, tmp_path / "packed.txt", "--cleaning=none")
  _one_error(run, r"packed\.txt: is gzip data, not text: name it \*\.gz")
  (tmp_path / "wide.txt").write_bytes("one two three\n".encode("utf-16-le"))
  run, _ = _dump(train_runner, tmp_path, tmp_path / "wide.txt", "--cleaning=none")
  _one_error(run, r"wide\.txt: is not UTF-8 text .* probably UTF-16 without a byte-order mark")


def test_export_output_names(train_runner, tmp_path):
  """`--output newdir/` is refused as a folder name; `--output v.txt.gz` is gzip, read back."""
  from w2v_tf.word_vectors import WordVectors  # pylint: disable=import-outside-toplevel
  shard = tmp_path / "t.txt"
  rng = np.random.default_rng(0)
  words = [f"w{i}" for i in range(30)]
  shard.write_bytes("".join(" ".join(rng.choice(words, 20)) + "\n" for _ in range(60)).encode())
  model = tmp_path / "m"
  run = train_runner.run("w2v_tf.train", [*_TRAIN_FAST, f"--train_text={shard}",
                                          f"--model_dir={model}", "--cache_dir="])
  assert run.returncode == 0, run.stderr
  run = train_runner.run("w2v_tf.export", [f"--model_dir={model}", "--format=word2vec_txt",
                                           f"--output={tmp_path}/newdir/"])
  assert run.returncode == 2 and re.search(  # it said "Not a directory"
      r"^error: --output=\S*newdir/: names a directory \(it ends with /\); give a file name",
      run.stderr.strip()), run.stderr
  assert not (tmp_path / "newdir").exists()
  reference = WordVectors.load(model / "vectors.bin")
  for fmt, name in (("word2vec_txt", "v.txt.gz"), ("word2vec_bin", "v.bin.gz")):
    run = train_runner.run("w2v_tf.export", [f"--model_dir={model}", f"--format={fmt}",
                                             f"--output={tmp_path / name}"])
    assert run.returncode == 0, run.stderr
    assert (tmp_path / name).read_bytes()[:2] == b"\x1f\x8b"  # gzip, as the name says
    loaded = WordVectors.load(tmp_path / name)
    assert list(loaded.words) == list(reference.words)
    np.testing.assert_allclose(loaded.vectors, reference.vectors, atol=1e-5)


def test_a_corpus_that_subsampling_empties_says_so(train_runner, tmp_path):
  """8 words seen 8 times each: subsampling keeps ~10% of the tokens, no pair is left, and the
  loss over no pair (NaN) read as "non-finite loss at step 0 ...: lower --learning_rate"."""
  shard = tmp_path / "tiny.txt"
  shard.write_bytes(("\n".join(" ".join(_PLAIN[i:] + _PLAIN[:i]) for i in range(8)) + "\n")
                    .encode())
  run = train_runner.run("w2v_tf.train", [*_TRAIN_FAST, f"--train_text={shard}", "--cache_dir=",
                                          f"--model_dir={tmp_path / 'm'}"])
  _one_error(run, r"^error: epoch 1 gave no training pair: of the corpus's 64 tokens, "
                  r"subsampling \(--subsample=0\.001\) kept none .*lower --subsample")
  run = train_runner.run("w2v_tf.train", [*_TRAIN_FAST, f"--train_text={shard}", "--cache_dir=",
                                          f"--model_dir={tmp_path / 'm0'}", "--subsample=0"])
  assert run.returncode == 0, run.stderr
