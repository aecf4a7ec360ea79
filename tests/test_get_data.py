"""Tests for w2v_tf/get_data.py, imdb.py, download.py on a tiny aclImdb-shaped tarball (offline)."""

import contextlib
import errno
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading

import pandas as pd
import pytest

from w2v_tf import download
from w2v_tf import fileio
from w2v_tf import get_data
from w2v_tf import imdb
from w2v_tf.errors import UserError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (split, label, id, rating) -> text: tags, commas, quotes, non-ASCII, a newline, edge spaces.
REVIEWS = {
    ("train", "pos", 0, 9): "Great film.<br /><br />Loved it, really.",
    ("train", "pos", 12, 10): 'The "best" movie, ever; café scenes à la Truffaut.',
    ("train", "neg", 3, 1): "Awful, awful, awful.<br />Don't watch.",
    ("train", "neg", 7, 2): "Boring\u2026 two hours of nothing \u2013 \u65e5\u672c\u8a9e too.",
    ("test", "pos", 1, 8): "  Leading and trailing spaces, kept.  ",
    ("test", "pos", 5, 7): 'She said ""hello"", then left',
    ("test", "neg", 2, 4): "A line\nbreak inside, and a comma",
    ("test", "neg", 11, 3): "Plain text without anything special",
}
UNSUP = {"aclImdb/train/unsup/0_0.txt": "Unlabelled, must be ignored.",
         "aclImdb/train/unsup/1_0.txt": "Also ignored."}
OTHER_FILES = {"aclImdb/README": "readme", "aclImdb/imdb.vocab": "the\nand\n",
               "aclImdb/train/urls_pos.txt": "http://www.imdb.com/title/tt0453418/usercomments"}
EXPECTED = sorted((text, "positive" if label == "pos" else "negative")
                  for (_, label, _, _), text in REVIEWS.items())


def _members():
  """Archive members in a scrambled order, as a real tarball's order is arbitrary."""
  files = {f"aclImdb/{split}/{label}/{review_id}_{rating}.txt": text
           for (split, label, review_id, rating), text in REVIEWS.items()}
  files.update(UNSUP)
  files.update(OTHER_FILES)
  return sorted(files.items(), key=lambda item: item[0][::-1])


@pytest.fixture(name="tarball")
def fixture_tarball(tmp_path):
  path = tmp_path / "src" / "aclImdb_v1.tar.gz"
  path.parent.mkdir()
  with tarfile.open(path, "w:gz") as archive:
    for name, text in _members():
      data = text.encode("utf-8")
      info = tarfile.TarInfo(name)
      info.size = len(data)
      archive.addfile(info, io.BytesIO(data))
  return path


@pytest.fixture(name="folder")
def fixture_folder(tmp_path):
  root = tmp_path / "unpacked"
  for name, text in _members():
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
  return root / "aclImdb"


def _run(*args, cwd=None):
  """Runs `python -m w2v_tf.get_data ARGS`; returns the CompletedProcess."""
  env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return subprocess.run([sys.executable, "-m", "w2v_tf.get_data", *args], capture_output=True,
                        text=True, cwd=cwd or REPO_ROOT, env=env, timeout=120, check=False)


def _read(csv_path):
  frame = pd.read_csv(csv_path, encoding="utf-8", keep_default_na=False)
  return frame


def _check_csv(csv_path):
  frame = _read(csv_path)
  assert list(frame.columns) == ["review", "sentiment"]
  assert len(frame) == len(REVIEWS)
  assert sorted(zip(frame["review"], frame["sentiment"])) == EXPECTED
  assert frame["sentiment"].value_counts().to_dict() == {"positive": 4, "negative": 4}
  return frame


def _no_temp_files(directory):
  return not [name for name in os.listdir(directory) if name.endswith(".tmp")]


def test_cli_converts_tarball(tmp_path, tarball):
  data_dir = tmp_path / "data"
  result = _run("--source", str(tarball), "--data_dir", str(data_dir), "--skip_eval_sets")
  assert result.returncode == 0, result.stderr
  _check_csv(data_dir / "IMDB_Dataset.csv")
  assert "wrote 8 reviews (4 positive, 4 negative)" in result.stdout
  assert str(data_dir / "IMDB_Dataset.csv") in result.stdout
  assert sorted(os.listdir(data_dir)) == ["IMDB_Dataset.csv"]


def test_csv_layout_matches_kaggle_file(tmp_path, tarball):
  summary = imdb.convert(str(tarball), str(tmp_path), progress=False)
  raw = (tmp_path / "IMDB_Dataset.csv").read_bytes()
  assert raw.startswith(b"review,sentiment\r\n")
  text = raw.decode("utf-8")
  assert "Plain text without anything special,negative\r\n" in text  # unquoted when possible
  assert '"The ""best"" movie, ever; café scenes à la Truffaut.",positive' in text
  assert "<br /><br />" in text
  assert summary == imdb.Summary(path=str(tmp_path / "IMDB_Dataset.csv"), rows=8,
                                 positive=4, negative=4)


def test_folder_and_tarball_give_the_same_file(tmp_path, tarball, folder):
  imdb.convert(str(tarball), str(tmp_path / "a"), progress=False)
  imdb.convert(str(folder), str(tmp_path / "b"), progress=False)
  imdb.convert(str(folder.parent), str(tmp_path / "c"), progress=False)  # parent of aclImdb/
  expected = (tmp_path / "a" / "IMDB_Dataset.csv").read_bytes()
  assert (tmp_path / "b" / "IMDB_Dataset.csv").read_bytes() == expected
  assert (tmp_path / "c" / "IMDB_Dataset.csv").read_bytes() == expected
  _check_csv(tmp_path / "b" / "IMDB_Dataset.csv")


def test_cli_converts_folder(tmp_path, folder):
  data_dir = tmp_path / "data"
  result = _run("--source", str(folder), "--data_dir", str(data_dir), "--skip_eval_sets")
  assert result.returncode == 0, result.stderr
  _check_csv(data_dir / "IMDB_Dataset.csv")


def test_cli_downloads_file_url(tmp_path, tarball):
  data_dir = tmp_path / "data"
  result = _run("--source", tarball.as_uri(), "--data_dir", str(data_dir), "--skip_eval_sets")
  assert result.returncode == 0, result.stderr
  _check_csv(data_dir / "IMDB_Dataset.csv")
  assert (data_dir / "aclImdb_v1.tar.gz").read_bytes() == tarball.read_bytes()  # kept
  assert "100%" in result.stderr  # progress shown
  assert _no_temp_files(data_dir)
  # --overwrite downloads again; when that fails the kept tarball stays as it was.
  tarball.unlink()
  result = _run("--source", tarball.as_uri(), "--data_dir", str(data_dir), "--skip_eval_sets",
                "--overwrite", "--seed", "3")
  assert result.returncode == 1  # --overwrite re-downloads, and the source is gone
  assert "cannot reach" in result.stderr and "--source" in result.stderr
  assert (data_dir / "aclImdb_v1.tar.gz").exists()


def test_kept_download_is_reused(tmp_path, tarball):
  data_dir = tmp_path / "data"
  imdb.convert(tarball.as_uri(), str(data_dir), progress=False)
  tarball.unlink()
  (data_dir / "IMDB_Dataset.csv").unlink()
  imdb.convert(tarball.as_uri(), str(data_dir), progress=False)
  _check_csv(data_dir / "IMDB_Dataset.csv")


def test_shuffle_is_deterministic_under_seed(tmp_path, tarball):
  def convert(name, seed):
    imdb.convert(str(tarball), str(tmp_path / name), seed=seed, progress=False)
    return (tmp_path / name / "IMDB_Dataset.csv").read_bytes()

  first = convert("a", 0)
  assert convert("b", 0) == first
  assert convert("c", 1) != first
  _check_csv(tmp_path / "c" / "IMDB_Dataset.csv")


def test_cli_offline_error(tmp_path):
  data_dir = tmp_path / "data"
  result = _run("--source", "http://127.0.0.1:9/aclImdb_v1.tar.gz", "--data_dir", str(data_dir),
                "--timeout", "5")
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith("error: cannot reach 127.0.0.1 (")
  assert lines[0].endswith(
      "use --source PATH to convert a local aclImdb_v1.tar.gz or aclImdb/ folder")
  assert os.listdir(data_dir) == []  # nothing half-downloaded, no eval sets attempted


def test_cli_refuses_to_overwrite(tmp_path, tarball):
  data_dir = tmp_path / "data"
  data_dir.mkdir()
  csv_path = data_dir / "IMDB_Dataset.csv"
  csv_path.write_text("old", encoding="utf-8")
  result = _run("--source", str(tarball), "--data_dir", str(data_dir), "--skip_eval_sets")
  assert result.returncode == 1
  assert result.stderr.strip() == (f"error: {csv_path} already exists: "
                                   "pass --overwrite to replace it")
  assert csv_path.read_text(encoding="utf-8") == "old"
  result = _run("--source", str(tarball), "--data_dir", str(data_dir), "--skip_eval_sets",
                "--overwrite")
  assert result.returncode == 0, result.stderr
  _check_csv(csv_path)


def test_import_defines_no_flags():
  # Only `python -m w2v_tf.get_data` defines its flags: an importer keeps a clean flag namespace.
  code = ("import w2v_tf.get_data; from absl import flags; "
          "print(sorted({'source', 'data_dir', 'skip_imdb'} & set(flags.FLAGS)))")
  env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env, timeout=120, check=False)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "[]"


def test_cli_usage_errors():
  result = _run("stray")
  assert result.returncode == 2
  assert result.stderr.strip() == "error: unexpected arguments: stray"
  result = _run("--skip_imdb", "--skip_eval_sets")
  assert result.returncode == 2
  result = _run("--seed=-1", "--skip_eval_sets")  # numpy's shuffle refused it in a traceback
  assert result.returncode == 2
  assert result.stderr.strip() == "error: --seed must be in [0, 2**32), got -1"


def test_missing_and_unreadable_sources(tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    imdb.convert(str(tmp_path / "nope.tar.gz"), str(tmp_path / "d"))
  not_a_tarball = tmp_path / "junk.tar.gz"
  not_a_tarball.write_bytes(b"this is not gzip")
  with pytest.raises(UserError, match="cannot read .*junk.tar.gz as a tar archive"):
    imdb.convert(str(not_a_tarball), str(tmp_path / "d"))
  empty = tmp_path / "empty.tar.gz"
  with tarfile.open(empty, "w:gz"):
    pass
  with pytest.raises(UserError, match=r"no labelled reviews .*\{train,test\}/\{pos,neg\}"):
    imdb.convert(str(empty), str(tmp_path / "d"))
  assert not (tmp_path / "d" / "IMDB_Dataset.csv").exists()


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
  path = tmp_path / "bad.tar"
  with tarfile.open(path, "w") as archive:
    data = b"caf\xe9 latin-1 bytes"
    info = tarfile.TarInfo("aclImdb/test/neg/9_1.txt")
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))
  summary = imdb.convert(str(path), str(tmp_path), progress=False)
  assert summary.undecodable == 1 and summary.rows == 1
  assert _read(tmp_path / "IMDB_Dataset.csv")["review"][0] == "caf\ufffd latin-1 bytes"


def test_disk_full_keeps_old_csv(tmp_path, tarball, monkeypatch):
  csv_path = tmp_path / "IMDB_Dataset.csv"
  csv_path.write_text("old", encoding="utf-8")

  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(fileio.os, "replace", full)
  with pytest.raises(UserError, match="disk full while writing .*IMDB_Dataset.csv"):
    imdb.convert(str(tarball), str(tmp_path), overwrite=True, progress=False)
  assert csv_path.read_text(encoding="utf-8") == "old"
  assert _no_temp_files(tmp_path)


# --- downloads over a local HTTP server (offline: 127.0.0.1 only) -------------------------------


@contextlib.contextmanager
def _http_server(body: bytes, claimed_length: int | None = None, status: int = 200):
  """Serves `body` on 127.0.0.1; may claim a different Content-Length or an error status."""

  class Handler(http.server.BaseHTTPRequestHandler):

    def do_GET(self):  # pylint: disable=invalid-name
      self.send_response(status)
      self.send_header("Content-Length", str(len(body) if claimed_length is None
                                             else claimed_length))
      self.end_headers()
      self.wfile.write(body)
      self.wfile.flush()
      self.close_connection = True

    def log_message(self, *args):  # quiet
      pass

  server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f"http://127.0.0.1:{server.server_address[1]}/aclImdb_v1.tar.gz"
  finally:
    server.shutdown()
    server.server_close()


def test_http_download(tmp_path, tarball):
  with _http_server(tarball.read_bytes()) as url:
    imdb.convert(url, str(tmp_path), progress=False)
  _check_csv(tmp_path / "IMDB_Dataset.csv")


def test_cut_off_download_leaves_nothing(tmp_path):
  with _http_server(b"x" * 100, claimed_length=1000) as url:
    with pytest.raises(UserError, match=r"cannot reach 127.0.0.1 .*--source PATH"):
      imdb.convert(url, str(tmp_path), progress=False, timeout=5)
  assert os.listdir(tmp_path) == []


def test_http_error_status(tmp_path):
  with _http_server(b"missing", status=404) as url:
    with pytest.raises(download.DownloadError, match=r"cannot download http://.* \(HTTP 404"):
      download.download(url, str(tmp_path / "x"), progress=False)
  assert os.listdir(tmp_path) == []


# --- eval sets ----------------------------------------------------------------------------------


def test_eval_sets_download(tmp_path):
  sources = tmp_path / "src"
  sources.mkdir()
  (sources / "q.txt").write_text(": capital-common-countries\nAthens Greece Baghdad Iraq\n",
                                 encoding="utf-8")
  (sources / "w.tsv").write_text("love\tsex\t6.77\n", encoding="utf-8")
  urls = {"questions-words.txt": (sources / "q.txt").as_uri(),
          "wordsim353.tsv": (sources / "w.tsv").as_uri()}
  report = get_data.fetch_eval_sets(str(tmp_path / "data"), urls, progress=False)
  assert (tmp_path / "data" / "questions-words.txt").read_bytes() == (
      sources / "q.txt").read_bytes()
  assert (tmp_path / "data" / "wordsim353.tsv").read_bytes() == (sources / "w.tsv").read_bytes()
  assert len(report) == 2 and "downloaded" in report[0]
  report = get_data.fetch_eval_sets(str(tmp_path / "data"), urls, progress=False)
  assert all("already there" in line for line in report)


def test_eval_sets_fall_back_to_gensim(tmp_path, capsys):
  test_utils = pytest.importorskip("gensim.test.utils")
  bogus = {"questions-words.txt": "http://127.0.0.1:9/questions-words.txt",
           "wordsim353.tsv": "http://127.0.0.1:9/wordsim353.tsv"}
  report = get_data.fetch_eval_sets(str(tmp_path), bogus, timeout=5, progress=False)
  for name in bogus:
    assert get_data.gensim_copy(name) == test_utils.datapath(name)
    with open(test_utils.datapath(name), "rb") as f:
      assert (tmp_path / name).read_bytes() == f.read()
  assert all("copied from gensim's package" in line for line in report)
  stderr = capsys.readouterr().err.strip().splitlines()
  assert len(stderr) == 2
  assert stderr[0].startswith("cannot reach 127.0.0.1 (")
  assert "gensim ships with its package" in stderr[0]


def test_eval_sets_offline_without_gensim(tmp_path, monkeypatch):
  monkeypatch.setattr(get_data, "gensim_copy", lambda name: None)
  with pytest.raises(UserError, match=r"cannot reach 127.0.0.1 .*install gensim.*--skip_eval_sets"):
    get_data.fetch_eval_sets(str(tmp_path), {"wordsim353.tsv": "http://127.0.0.1:9/w.tsv"},
                             timeout=5, progress=False)
  assert os.listdir(tmp_path) == []


def test_cli_local_source_offline_eval_sets_use_gensim(tmp_path, tarball):
  pytest.importorskip("gensim")
  data_dir = tmp_path / "data"
  result = _run("--source", str(tarball), "--data_dir", str(data_dir), "--timeout", "5",
                "--questions_words_url", "http://127.0.0.1:9/questions-words.txt",
                "--wordsim353_url", "http://127.0.0.1:9/wordsim353.tsv")
  assert result.returncode == 0, result.stderr
  assert sorted(os.listdir(data_dir)) == ["IMDB_Dataset.csv", "questions-words.txt",
                                          "wordsim353.tsv"]
  assert result.stderr.count("gensim ships with its package") == 2
