"""Input files that end early, hold NaN / inf vectors, or come in another encoding (issue 14).

Each case runs the binary a user would run (through `tests/binaries.Runner`, forked from a
process that imported TensorFlow once) and checks the exit status, that stderr is exactly one
line (`error: ...` naming the file and the problem, or one `warning:` line), no traceback, and
that nothing was written. The inputs are real: a slice of the IMDB CSV (gzipped, then cut), a
tarball in aclImdb layout built from it, vectors written with `WordVectors` for the words of
questions-words.txt, and a slice of that file. In-process checks cover more cut points and
formats than the binaries need to.
"""

import concurrent.futures
import csv
import dataclasses
import gzip
import io
import os
import re
import tarfile
import zlib

import numpy as np
import pytest

from tests.binaries import module_runner
from tests.conftest import IMDB_CSV, QUESTIONS_WORDS
from w2v_tf import imdb, vector_files
from w2v_tf.errors import UserError
from w2v_tf.fileio import check_gzip_complete, decode_utf8
from w2v_tf.word_vectors import WordVectors

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
       "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
_FAST = ["--stopwords=none", "--cache_dir=", "--epochs=1", "--embedding_dim=8",
         "--min_count=1", "--nojit_compile", "--noprogress", "--analogies=none"]
NAN_ROW, INF_ROW = 7, 11  # 0-based rows given NaN and inf


def _imdb_rows(count):
  with gzip.open(IMDB_CSV, "rt", encoding="utf-8", newline="") as f:
    reader = csv.reader(f)
    return next(reader), [row for _, row in zip(range(count), reader)]


def _csv_bytes(header, rows):
  buffer = io.StringIO()
  writer = csv.writer(buffer)  # the Kaggle file's dialect: minimal quoting, CRLF
  writer.writerow(header)
  writer.writerows(rows)
  return buffer.getvalue().encode("utf-8")


def _tarball(rows, mode):
  """An aclImdb-layout tarball (bytes) of (review, sentiment) rows, tarfile `mode` ("w:gz"...)."""
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode=mode) as archive:
    for i, (text, sentiment) in enumerate(rows):
      data = text.encode("utf-8")
      label = "pos" if sentiment == "positive" else "neg"
      info = tarfile.TarInfo(f"aclImdb/{'train' if i % 2 else 'test'}/{label}/{i}_7.txt")
      info.size = len(data)
      archive.addfile(info, io.BytesIO(data))
  return buffer.getvalue()


def _cut_in_a_header(tarball):
  """A cut of a .tar.gz at about half whose decompressed bytes end inside a member's header.

  That is the cut tarfile itself takes for the end of the archive (the issue's "207 of 400
  reviews, exit 0"); a cut inside a member's data at least raised an error.
  """
  with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
    headers = [member.offset for member in archive.getmembers()]
  decompressor = zlib.decompressobj(wbits=31)
  cut = len(tarball) // 2
  end = len(decompressor.decompress(tarball[:cut]))  # decompressed bytes of the prefix
  while not any(h <= end < h + tarfile.BLOCKSIZE for h in headers):
    end += len(decompressor.decompress(tarball[cut:cut + 16]))
    cut += 16
  return cut


def _tarfile_accepts(data):
  """Whether the standard library's streaming tarfile reads `data` to its end without an error."""
  try:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|*") as archive:
      for member in archive:
        archive.extractfile(member).read()
    return True
  except (tarfile.TarError, EOFError):
    return False


@pytest.fixture(name="files", scope="module")
def fixture_files(tmp_path_factory):
  """The inputs; returns {name: path} for the argument templates (and a few facts)."""
  for path in (IMDB_CSV, QUESTIONS_WORDS):
    if not os.path.exists(path):
      pytest.skip(f"{path} is absent (shared data not beside the repo)")
  tmp = tmp_path_factory.mktemp("bad_files")
  files = {"tmp": str(tmp)}

  def write(name, data):
    (tmp / name).write_bytes(data)
    files[re.sub(r"\W", "_", name)] = str(tmp / name)
    return data

  header, rows = _imdb_rows(400)
  data = write("small.csv", _csv_bytes(header, rows[:200]))
  full = write("small.csv.gz", gzip.compress(data))
  write("midrecord.csv.gz", full[:len(full) // 2])
  # Cut at a record boundary: what a copy cut right after a deflate block flush leaves. The
  # bytes decompress to exactly the first 100 records, and gzip -t fails (no end of stream).
  boundary = len(_csv_bytes(header, rows[:100]))
  deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
  cut = write("boundary.csv.gz", deflate.compress(data[:boundary]) +
              deflate.flush(zlib.Z_FULL_FLUSH))
  assert zlib.decompressobj(wbits=31).decompress(cut) == data[:boundary]
  with pytest.raises(EOFError):
    gzip.decompress(cut)
  files["tarball_rows"] = rows
  tarball = _tarball(rows, "w:gz")
  (tmp / "half").mkdir()
  cut = _cut_in_a_header(tarball)
  assert _tarfile_accepts(tarball[:cut])  # what the standard library reads quietly, in part
  write("half/aclImdb_v1.tar.gz", tarball[:cut])

  with open(QUESTIONS_WORDS, encoding="utf-8") as f:
    questions = f.read().splitlines()[:120]
  write("questions.txt", "\n".join(questions).encode("utf-8") + b"\n")
  write("questions-utf16.txt", "\n".join(questions).encode("utf-16"))
  words = list(dict.fromkeys(w.lower() for line in questions if not line.startswith(":")
                             for w in line.split()))
  files["words"] = words
  vectors = np.random.default_rng(0).standard_normal((len(words), 16)).astype(np.float32)
  write("pairs.tsv", "".join(f"{a}\t{b}\t{i % 10}\n" for i, (a, b) in
                             enumerate(zip(words[::2], words[1::2]))).encode("utf-8"))
  write("pairs-latin1.tsv", "".join(f"{a}\t{b}\t{i % 10}\n" for i, (a, b) in
                                    enumerate(zip(words[::2], words[1::2]))).encode("latin-1")
        + "café\tthé\t3\n".encode("latin-1"))
  WordVectors(words, vectors).save(tmp / "good.bin", binary=True)
  files["good_bin"] = str(tmp / "good.bin")
  bad = vectors.copy()
  bad[NAN_ROW, 3] = np.nan
  bad[INF_ROW, 0] = np.inf
  WordVectors(words, bad).save(tmp / "nan.txt")
  WordVectors(words, bad).save(tmp / "nan.bin", binary=True)
  files.update(nan_txt=str(tmp / "nan.txt"), nan_bin=str(tmp / "nan.bin"))
  model = tmp / "nan_model"
  model.mkdir()
  WordVectors(words, bad).save(model / "vectors.bin", binary=True)
  (model / "vocab.tsv").write_text("".join(f"{w}\t{1000 - i}\n" for i, w in enumerate(words)),
                                   encoding="utf-8")
  files["nan_model"] = str(model)
  latin = (tmp / "nan.txt").read_text(encoding="utf-8").replace(f"\n{words[5]} ", "\ncafé ", 1)
  write("latin1.txt", latin.encode("latin-1"))
  good_bin = (tmp / "good.bin").read_bytes()
  write("lie.bin", b"1000000000000 16" + good_bin[good_bin.index(b"\n"):])
  write("stopwords-latin1.txt", "the\nand\nfiancé\n".encode("latin-1"))
  return files


fixture_runner = module_runner(REPO, ENV, workers=2)


@dataclasses.dataclass
class Case:
  """One binary run: `args` are templates over `files` and `{out}` (a fresh, empty folder)."""
  name: str
  module: str
  args: list
  code: int
  message: str  # a regex searched in the one stderr line


W = "{word}"  # a word of the vocabulary
CASES = [
    # --- truncated inputs ------------------------------------------------------------------
    Case("csv-gz-cut-at-record", "w2v_tf.train",
         ["--train_csv={boundary_csv_gz}", "--model_dir={out}/m", *_FAST], 1,
         r"^error: \S*boundary\.csv\.gz: the gzip stream is truncated"),
    Case("csv-gz-cut-mid-record", "w2v_tf.data",
         ["--train_csv={midrecord_csv_gz}", "--vocab_out={out}/vocab.tsv", "--stopwords=none",
          "--cache_dir="], 1, r"^error: \S*midrecord\.csv\.gz: the gzip stream is truncated"),
    Case("tarball-cut-in-half", "w2v_tf.get_data",
         ["--source={half_aclImdb_v1_tar_gz}", "--data_dir={out}", "--skip_eval_sets"], 1,
         r"^error: \S*half/aclImdb_v1\.tar\.gz is truncated"),
    # --- non-finite vectors ----------------------------------------------------------------
    Case("nan-vectors-analogy", "eval.analogy",
         ["--vectors={nan_txt}", "--analogies={questions_txt}"], 1,
         rf"^error: \S*nan\.txt: 2 of \d+ rows hold NaN or infinity, the first is row "
         rf"{NAN_ROW + 1} \('\w+', value nan\).*--drop_nonfinite"),
    Case("nan-vectors-dropped", "eval.analogy",
         ["--vectors={nan_txt}", "--analogies={questions_txt}", "--drop_nonfinite"], 0,
         rf"^warning: \S*nan\.txt: left out 2 of \d+ rows .* row {NAN_ROW + 1}"),
    Case("inf-vectors-similarity", "eval.similarity",
         ["--vectors={nan_bin}", "--pairs={pairs_tsv}"], 1,
         rf"^error: \S*nan\.bin: 2 of \d+ rows hold NaN or infinity, the first is row "
         rf"{NAN_ROW + 1}"),
    Case("nan-model-dir-neighbors", "eval.neighbors",
         ["--model_dir={nan_model}", "--word=" + W], 1,
         rf"^error: \S*vectors\.bin: 2 of \d+ rows .* row {NAN_ROW + 1}"),
    Case("nan-vectors-sentiment", "eval.sentiment",
         ["--vectors={nan_txt}", "--csv={small_csv}", "--stopwords=none"], 1,
         r"^error: \S*nan\.txt: 2 of \d+ rows hold NaN"),
    # --- encodings and lying headers -------------------------------------------------------
    Case("stopwords-latin1", "w2v_tf.data",
         ["--train_csv={small_csv}", "--stopwords={stopwords_latin1_txt}", "--cache_dir=",
          "--vocab_out={out}/vocab.tsv"], 1,
         r"^error: stopwords file \S*stopwords-latin1\.txt is not UTF-8 text "
         r"\(byte 0xe9 at offset 13\)"),
    Case("analogies-utf16", "eval.analogy",
         ["--vectors={good_bin}", "--analogies={questions_utf16_txt}"], 1,
         r"^error: analogy file \S*questions-utf16\.txt is UTF-16 text, not UTF-8"),
    Case("pairs-latin1", "eval.similarity",
         ["--vectors={good_bin}", "--pairs={pairs_latin1_tsv}"], 1,
         r"^error: word-pair file \S*pairs-latin1\.tsv is not UTF-8 text \(byte 0xe9 at "
         r"offset \d+\)"),
    Case("vectors-text-latin1", "eval.neighbors", ["--vectors={latin1_txt}", "--word=" + W], 1,
         r"^error: vectors file \S*latin1\.txt is not UTF-8 text \(byte 0xe9 at offset \d+\)"),
    Case("binary-header-lies", "eval.analogy",
         ["--vectors={lie_bin}", "--analogies={questions_txt}"], 1,
         r"^error: \S*lie\.bin: record \d+ of 1000000000000 .*the header promises "
         r"1,000,000,000,000 x 16 vectors"),
]


def _snapshot(folder):
  return sorted(os.path.relpath(os.path.join(root, name), folder)
                for root, _, names in os.walk(folder) for name in names)


@pytest.fixture(name="results", scope="module")
def fixture_results(runner, files, tmp_path_factory):
  """Runs every case, two at a time; returns {name: (run, files left in out)}."""
  outs = tmp_path_factory.mktemp("outs")
  templates = {k: v for k, v in files.items() if isinstance(v, str)}
  templates["word"] = files["words"][0]

  def run(case):
    out = outs / case.name
    out.mkdir()
    result = runner.run(case.module, [a.format(out=out, **templates) for a in case.args])
    return result, _snapshot(out)

  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    return dict(zip((c.name for c in CASES), pool.map(run, CASES)))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_file_gives_one_line(results, case):
  run, left = results[case.name]
  assert "Traceback" not in run.stderr, run.stderr
  assert run.returncode == case.code, run.stderr
  lines = run.stderr.strip().splitlines()
  assert len(lines) == 1, run.stderr
  assert re.search(case.message, lines[0]), lines[0]
  if case.code:
    assert left == [], f"an error left files behind: {left}"
  else:
    assert "accuracy" in run.stdout.lower() or "%" in run.stdout, run.stdout


# --- in process: more cut points and formats than the binaries need -------------------------


def test_every_cut_of_a_gzip_is_truncated(files):
  with open(files["small_csv_gz"], "rb") as f:
    full = f.read()
  check_gzip_complete(files["small_csv_gz"])
  for cut in (10, len(full) // 5, len(full) // 2, len(full) - 9, len(full) - 1):
    path = os.path.join(files["tmp"], f"cut{cut}.csv.gz")
    with open(path, "wb") as f:
      f.write(full[:cut])
    with pytest.raises(UserError, match=rf"cut{cut}\.csv\.gz: the gzip stream is truncated"):
      check_gzip_complete(path)
  multi = os.path.join(files["tmp"], "multi.csv.gz")
  with open(multi, "wb") as f:  # two members, as `cat a.gz b.gz` makes: complete
    f.write(full + gzip.compress(b'"one more review",positive\r\n'))
  check_gzip_complete(multi)


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz", "w"])
def test_every_cut_of_a_tarball_is_truncated(files, tmp_path, mode):
  rows = files["tarball_rows"]
  data = _tarball(rows, mode)
  whole = tmp_path / "whole.tar"
  whole.write_bytes(data)
  assert len(imdb.read_reviews(str(whole))[0]) == len(rows)
  # An uncompressed tar cut at a header boundary is the case tarfile itself accepts silently.
  cuts = [len(data) // 10, len(data) // 2, len(data) * 9 // 10]
  cuts += [c - c % 512 for c in cuts] if mode == "w" else [len(data) - 1]
  for cut in cuts:
    path = tmp_path / f"cut{cut}.tar"
    path.write_bytes(data[:cut])
    with pytest.raises(UserError, match=rf"cut{cut}\.tar is truncated"):
      imdb.read_reviews(str(path))


def test_binary_header_lies_allocate_nothing(tmp_path):
  record = b"w " + np.ones(4, "<f4").tobytes() + b"\n"
  for header, message in ((b"999999999999 4", r"record 2 of 999999999999"),
                          (b"1 99999999999", r"record 1 of 1 .*promises 1 x 99999999999")):
    path = tmp_path / "lie.bin"
    path.write_bytes(header + b"\n" + record)
    with pytest.raises(UserError, match=message):
      vector_files.read_vectors(path)


def test_decode_utf8():
  assert decode_utf8("\ufeffcafé".encode("utf-8"), "f") == "café"  # a UTF-8 mark is dropped
  for data, message in (("x".encode("utf-32"), r"^f is UTF-32 text"),
                        ("x y".encode("utf-16-le"), r"^f is not UTF-8 text \(NUL byte at offset 1"),
                        (b"ok\ncaf\xe9", r"^f is not UTF-8 text \(byte 0xe9 at offset 6\)")):
    with pytest.raises(UserError, match=message):
      decode_utf8(data, "f")


def test_drop_nonfinite_keeps_rows_and_counts_aligned(files, capsys):
  with pytest.raises(UserError, match=rf"row {NAN_ROW + 1} .*--drop_nonfinite"):
    WordVectors.from_model_dir(files["nan_model"])
  loaded = WordVectors.from_model_dir(files["nan_model"], drop_nonfinite=True)
  words = files["words"]
  kept = [i for i in range(len(words)) if i not in (NAN_ROW, INF_ROW)]
  assert loaded.words == tuple(words[i] for i in kept)
  assert loaded.counts.tolist() == [1000 - i for i in kept]
  assert np.isfinite(loaded.vectors).all()
  assert f"left out 2 of {len(words)} rows" in capsys.readouterr().err
