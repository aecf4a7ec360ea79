"""Plain-text sources (`w2v_tf.sources.text`): the files a --train_text names, and their pieces."""

import bz2
import gzip
import os
import random

import pytest

from w2v_tf.sources import text as text_source
from w2v_tf.errors import UserError


def _write(path, data: bytes):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb") as f:
    f.write(data)
  return str(path)


def _relative(paths, root):
  return [os.path.relpath(p, root) for p in paths]


def _pieces(tmp_path, data: bytes, piece_bytes: int, name="t.txt"):
  path = _write(tmp_path / name, data)
  return list(text_source.read_pieces([path], piece_bytes))


def _lines_of(pieces):
  """[(line number, b"".join(its pieces), [its continues flags])] from read_pieces' output."""
  lines = []
  for piece, continues, _, line in pieces:
    if lines and lines[-1][3]:  # the previous piece continues: same line
      assert line == lines[-1][0]
      lines[-1] = (line, lines[-1][1] + piece, lines[-1][2] + [continues], continues)
    else:
      lines.append((line, piece, [continues], continues))
  return [(line, data, flags) for line, data, flags, _ in lines]


def _random_line(rng, words=400, br=False):
  vocabulary = ["a", "of", "film", "acting", "great", "don't", "x-men", "Hello,", "(yes)"]
  tokens = [rng.choice(vocabulary) for _ in range(words)]
  if br:
    for index in sorted(rng.sample(range(words), words // 5), reverse=True):
      tokens.insert(index, rng.choice(["<br />", "<br /><br />", "word<br />", "<br />word"]))
  return " ".join(tokens).encode()


# --- text_paths ---------------------------------------------------------------------------


def test_folder_order_nested_and_hidden_skipped(tmp_path):
  root = tmp_path / "corpus"
  for name in ("b.txt", "a.txt.gz", "c.bz2", ".hidden.txt", "sub1/a.txt", "sub1/.hidden",
               "sub1/deeper/y.txt", "sub2/a.txt", ".git/objects/z.txt", "sub2/.cache/w.txt"):
    _write(root / name, b"words\n")
  os.mkfifo(root / "sub2" / "pipe")  # not a regular file: skipped, never opened
  os.mkdir(root / "sub3")  # an empty folder adds nothing
  paths = text_source.text_paths(str(root))
  assert _relative(paths, root) == ["a.txt.gz", "b.txt", "c.bz2", "sub1/a.txt",
                                    "sub1/deeper/y.txt", "sub2/a.txt"]
  assert all(p.startswith(str(root)) for p in paths)
  assert text_source.text_paths(str(root)) == paths  # deterministic


def test_folder_order_is_by_name_not_creation(tmp_path):
  root = tmp_path / "shards"
  names = [f"part-{i:05d}.txt" for i in range(12)]
  for name in reversed(names):
    _write(root / name, b"x\n")
  assert _relative(text_source.text_paths(str(root)), root) == names


def test_a_single_file_is_itself(tmp_path):
  path = _write(tmp_path / "one[1].txt", b"a b\n")  # glob characters in a real file's name
  assert text_source.text_paths(path) == [path]


def test_glob_order(tmp_path):
  for name in ("s/part-2.txt", "s/part-10.txt", "s/part-1.txt", "s/part-1.gz", "s/notes.md",
               "s/deep/part-3.txt"):
    _write(tmp_path / name, b"x\n")
  os.mkdir(tmp_path / "s" / "part-9.txt")  # a folder that matches is left out
  paths = text_source.text_paths(str(tmp_path / "s" / "part-*.txt"))
  assert _relative(paths, tmp_path) == ["s/part-1.txt", "s/part-10.txt", "s/part-2.txt"]
  recursive = text_source.text_paths(str(tmp_path / "s" / "**" / "part-*.txt"))
  assert _relative(recursive, tmp_path) == sorted(["s/part-1.txt", "s/part-10.txt",
                                                   "s/part-2.txt", "s/deep/part-3.txt"])


def _one_line_error(spec, match):
  with pytest.raises(UserError, match=match) as error:
    text_source.text_paths(spec)
  assert "\n" not in str(error.value)
  return str(error.value)


def test_one_line_errors(tmp_path):
  message = _one_line_error(str(tmp_path / "nowhere" / "*.txt"), r"no files match the glob")
  assert message.startswith(str(tmp_path / "nowhere" / "*.txt") + ": ")
  _one_line_error(str(tmp_path / "missing.txt"), r"missing\.txt: no such file")
  os.mkdir(tmp_path / "empty")
  _one_line_error(str(tmp_path / "empty"), r"empty: the folder holds no file")
  _write(tmp_path / "only-hidden" / ".a.txt", b"x\n")
  _one_line_error(str(tmp_path / "only-hidden"), r"the folder holds no file")
  os.makedirs(tmp_path / "dirs" / "d1.txt")
  _one_line_error(str(tmp_path / "dirs" / "*.txt"), r"the glob matches only folders")


def test_a_fifo_is_refused_without_opening_it(tmp_path):
  fifo = tmp_path / "corpus.txt"
  os.mkfifo(fifo)  # nobody writes to it: opening it would hang
  _one_line_error(str(fifo), r"corpus\.txt: is a pipe or a device, not a file")
  _write(tmp_path / "b.txt", b"x\n")
  _one_line_error(str(tmp_path / "*.txt"), r"corpus\.txt: is a pipe or a device")


# --- read_pieces --------------------------------------------------------------------------


@pytest.mark.parametrize("piece_bytes", [16, 37, 64, text_source.PIECE_BYTES])
def test_a_long_line_comes_back_in_pieces(tmp_path, piece_bytes):
  rng = random.Random(piece_bytes)
  lines = [_random_line(rng, 300), b"", b"short line", _random_line(rng, 120)]
  pieces = _pieces(tmp_path, b"\n".join(lines) + b"\n", piece_bytes)
  read = _lines_of(pieces)
  assert [(number, data) for number, data, _ in read] == list(enumerate(lines, 1))
  for _, _, flags in read:  # every piece of a line continues, but its last
    assert flags == [True] * (len(flags) - 1) + [False]
  for (piece, continues, path, _), following in zip(pieces, pieces[1:] + [None]):
    assert path.endswith("t.txt")
    assert len(piece) <= 2 * piece_bytes + 4, len(piece)  # bounded
    if continues:  # cut at whitespace: no token is split
      assert piece[-1:].isspace() or following[0][:1].isspace(), (piece, following[0])
  # Tokens of the pieces joined with spaces are the line's tokens.
  by_line = {}
  for piece, _, _, line in pieces:
    by_line.setdefault(line, []).append(piece)
  for number, line in enumerate(lines, 1):
    assert b" ".join(by_line[number]).split() == line.split()
  if piece_bytes < 1000:
    assert len(by_line[1]) > 3  # the long line did come in pieces
  else:
    assert len(pieces) == len(lines)


@pytest.mark.parametrize("piece_bytes", range(14, 40))
def test_never_cut_between_br_and_its_end(tmp_path, piece_bytes):
  """A cut is moved before `<br`, so the IMDB rules still see `<br />` whole."""
  rng = random.Random(piece_bytes)
  line = _random_line(rng, 200, br=True)
  pieces = _pieces(tmp_path, line + b"\n", piece_bytes)
  assert b"".join(p[0] for p in pieces) == line
  for piece, following in zip(pieces, pieces[1:]):
    if piece[1]:
      assert not (piece[0].endswith(b"<br ") and following[0].startswith(b"/>")), pieces


def test_br_pieces_clean_to_the_lines_tokens(tmp_path):
  from w2v_tf import text  # pylint: disable=import-outside-toplevel
  rng = random.Random(3)
  line = _random_line(rng, 300, br=True)
  pieces = _pieces(tmp_path, line + b"\n", 24)
  assert len(pieces) > 10
  whole = text.tokenize_texts([line.decode()], frozenset())[0]
  parts = text.tokenize_texts([p[0].decode() for p in pieces], frozenset())
  assert [t for part in parts for t in part] == whole
  assert "br" not in whole


def test_last_line_without_newline(tmp_path):
  assert _pieces(tmp_path, b"a b\nc d", 1000) == [
      (b"a b", False, str(tmp_path / "t.txt"), 1), (b"c d", False, str(tmp_path / "t.txt"), 2)]
  pieces = _pieces(tmp_path, b"first\n" + b"word " * 40 + b"end", 16)
  assert pieces[-1][1] is False and pieces[-1][3] == 2
  assert b"".join(p[0] for p in pieces[1:]) == b"word " * 40 + b"end"


@pytest.mark.parametrize("last_line", [b"abc def ", b"abcdefgh", b"abc defgabc def "])
def test_last_line_without_newline_ending_on_a_piece_boundary(tmp_path, last_line):
  """The file's last piece ends its document even when the line fills the piece exactly."""
  assert len(last_line) % 8 == 0
  pieces = _pieces(tmp_path, b"first\n" + last_line, 8)
  assert pieces[0] == (b"first", False, str(tmp_path / "t.txt"), 1)
  assert pieces[-1][1] is False, pieces
  assert b"".join(p[0] for p in pieces[1:]).split() == last_line.split()


def test_a_document_never_runs_into_the_next_file(tmp_path):
  first = _write(tmp_path / "1.txt", b"first\nabc def ")  # 8 bytes, no line end
  second = _write(tmp_path / "2.txt", b"second\n")
  pieces = list(text_source.read_pieces([first, second], 8))
  last_of_first = [p for p in pieces if p[2] == first][-1]
  assert last_of_first[1] is False, pieces
  assert [p[:2] for p in pieces if p[2] == second] == [(b"second", False)]


def test_crlf(tmp_path):
  path = str(tmp_path / "t.txt")
  assert _pieces(tmp_path, b"a b\r\n\r\nc d\r\n", 1000) == [
      (b"a b", False, path, 1), (b"", False, path, 2), (b"c d", False, path, 3)]
  long_line = b" ".join([b"token"] * 60)
  pieces = _pieces(tmp_path, long_line + b"\r\n" + b"x y\r\n", 16)
  assert not any(p[0].endswith(b"\r\n") for p in pieces)
  assert pieces[-1][:2] == (b"x y", False) and pieces[-1][3] == 2
  assert b" ".join(p[0] for p in pieces[:-1]).split() == long_line.split()


def test_blank_lines_are_empty_documents(tmp_path):
  assert [p[:2] for p in _pieces(tmp_path, b"\n\nx\n\n", 1000)] == [
      (b"", False), (b"", False), (b"x", False), (b"", False)]
  assert _pieces(tmp_path, b"", 1000) == []


@pytest.mark.parametrize("suffix,compress", [(".gz", gzip.compress), (".bz2", bz2.compress)])
def test_compressed_files_read_as_their_text(tmp_path, suffix, compress):
  data = b"".join(b"line %d " % i + b"word " * (i % 50) + b"\n" for i in range(500))
  plain = _pieces(tmp_path, data, 64)
  packed = _pieces(tmp_path, compress(data), 64, name="t.txt" + suffix)
  assert [p[:2] + p[3:] for p in packed] == [p[:2] + p[3:] for p in plain]
  assert packed[0][2].endswith(suffix)


@pytest.mark.parametrize("suffix,compress", [(".gz", gzip.compress), (".bz2", bz2.compress)])
def test_a_truncated_compressed_file_is_refused(tmp_path, suffix, compress):
  rng = random.Random(0)
  data = b"".join(_random_line(rng, 30) + b"\n" for _ in range(3000))
  packed = compress(data)
  path = _write(tmp_path / ("shard" + suffix), packed[:len(packed) * 2 // 3])
  good = _write(tmp_path / ("good" + suffix), packed)
  with pytest.raises(UserError, match="truncated") as error:
    for _ in text_source.read_pieces([good, path], 1 << 12):
      pass
  assert path in str(error.value) and good not in str(error.value)
  assert "\n" not in str(error.value)


def test_a_gz_that_is_not_gzip_is_refused(tmp_path):
  path = _write(tmp_path / "t.txt.gz", b"plain text, not gzip\n")
  with pytest.raises(UserError, match=r"t\.txt\.gz: cannot read it"):
    list(text_source.read_pieces([path]))


# ids=names: the data would make the test ids, and a gzip header holds its time (mtime=0 too),
# so pytest-xdist workers collecting a second apart saw different tests.
@pytest.mark.parametrize("name,data", [
    ("model.bin", b"\x00\x00\x00\x08binary\x01\x02\nmore"),
    ("archive.txt", b"PK\x03\x04\x14\x00\x00\x00\x08\x00"),
    ("packed.txt.gz", gzip.compress(b"\x7fELF\x02\x01\x01\x00\x00\x00\n", mtime=0)),
], ids=["model.bin", "archive.txt", "packed.txt.gz"])
def test_a_binary_file_is_refused(tmp_path, name, data):
  path = _write(tmp_path / name, data)
  with pytest.raises(UserError, match="not a text file|is a zip archive, not text") as error:
    list(text_source.read_pieces([path]))
  assert str(error.value).startswith(path + ": ")


def test_a_lone_cr_ends_a_line(tmp_path):
  """Classic Mac OS line ends ("\\r" alone) end lines, as in str.splitlines: a document each."""
  path = str(tmp_path / "t.txt")
  assert _pieces(tmp_path, b"a b\rc d\r\re f", 1000) == [
      (b"a b", False, path, 1), (b"c d", False, path, 2), (b"", False, path, 3),
      (b"e f", False, path, 4)]
  # Mixed with "\n" and "\r\n"; a "\r\n" counts once, also when a piece boundary splits it.
  data = b"one\rtwo\r\nthree\nfour\r"
  assert [p[0] for p in _pieces(tmp_path, data, 1000)] == data.splitlines()
  for piece_bytes in range(3, 12):
    line = b"word " * 7 + b"end"
    pieces = _pieces(tmp_path, line + b"\r\n" + line + b"\r" + b"last", piece_bytes)
    lines = _lines_of(pieces)
    assert [number for number, _, _ in lines] == [1, 2, 3], (piece_bytes, pieces)
    assert [data.split() for _, data, _ in lines] == [line.split(), line.split(), [b"last"]]


@pytest.mark.parametrize("data,message", [
    (gzip.compress(b"words and more words\n", mtime=0), r"is gzip data, not text: name it \*\.gz"),
    (bz2.compress(b"words and more words\n"), r"is bzip2 data, not text: name it \*\.bz2"),
    ("words and more\n".encode("utf-16"), r"is UTF-16 text, not text: convert it: iconv"),
    ("words and more\n".encode("utf-16-le"), r"probably UTF-16 without a byte-order mark"),
    (b"BZh is a word\n", None),  # text that starts like a signature is text
], ids=["gzip", "bzip2", "utf16-bom", "utf16-no-bom", "text"])
def test_a_file_that_is_not_text_says_what_it_probably_is(tmp_path, data, message):
  path = _write(tmp_path / "shard.txt", data)
  if message is None:
    assert [p[0] for p in text_source.read_pieces([path])] == [data.rstrip(b"\n")]
    return
  with pytest.raises(UserError, match=message) as error:
    list(text_source.read_pieces([path]))
  assert str(error.value).startswith(path + ": ") and "\n" not in str(error.value)
