"""Review cleaning as TensorFlow string ops (the seed tutorials' rules, done inside tf.data).

Rules, in order (the plain-Python twin in tests/test_text.py applies the same ones):
  1. bytes that are not valid UTF-8 are replaced by U+FFFD (so they never form a token);
  2. every `<br />` becomes a space;
  3. ASCII punctuation (Python's `string.punctuation`) is deleted, so `don't` -> `dont`,
     `x-men` -> `xmen`;
  4. split on whitespace (the characters Python's `str.split()` splits on) and on control
     characters (Unicode category Cc: NUL, ESC, DEL, the C1 range, ...) and U+FEFF;
  5. keep tokens made only of letters (Unicode category L*, as `str.isalpha`);
  6. lowercase;
  7. drop stopwords (NLTK English by default; the list is applied as is, after rule 3, so
     `don't` in the list does not remove `dont`: the tutorials' behaviour);
  8. drop one-letter tokens.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import string
import unicodedata
import zipfile
from typing import Iterable, Sequence

import tensorflow as tf

from w2v_tf.errors import UsageError, UserError, warn  # noqa: F401  (callers use text.warn)
from w2v_tf.fileio import read_lines

# Separators that tf.strings.split(sep=None) does not split on (it splits on ASCII
# " \t\n\v\f\r"), computed, not typed by hand: replaced by a space first. A regex over these
# rare characters and the C split took 0.32 s per 10k reviews where the whole class plus a split
# on " " took 0.73 s. They are Python's str.split() whitespace (\x1c-\x1f, U+0085, U+2028, ...),
# which `str.splitlines` and the vectors readers treat as line or field ends, and every control
# character (category Cc: NUL, \x01-\x08, ESC, DEL, C1) and U+FEFF (a byte-order mark in the
# middle of a file). Splitting on them, in every --cleaning, is the class fix for words the
# export formats cannot hold: a word then never holds a byte that a line- or space-based reader
# (ours, gensim's, the C tool's, a TSV) reads as a separator or refuses (`foo\0bar` made
# vectors.bin unreadable), and the exported files stay what the C tool writes. No real word
# holds a control character, so nothing of value is lost; escaping them in every writer and
# reader instead would make files other tools misread.
_SEPARATORS = "[" + "".join(
    f"\\x{{{ord(c):x}}}" for c in map(chr, range(0x110000))
    if (c.isspace() or unicodedata.category(c) == "Cc" or c == "\ufeff")
    and c not in " \t\n\v\f\r") + "]"
# The one letter whose lowercase is not letters only (U+0130 -> "i" + U+0307, a combining mark):
# where it occurs, rule 5 must see the token before rule 6 (the slow order).
_DOTTED_CAPITAL_I = "\u0130".encode("utf-8")
_PUNCTUATION_CLASS = "[" + re.escape(string.punctuation) + "]"
_LETTERS_ONLY = r"\pL+"
# A token (between the ASCII whitespace `tf.strings.split` splits on) with a non-letter in it.
_TOKEN_WITH_A_NON_LETTER = r"[^ \t\n\v\f\r]*[^\pL \t\n\v\f\r][^ \t\n\v\f\r]*"


def load_stopwords(spec: str) -> frozenset[str]:
  """Returns the stopword set named by `spec`.

  Args:
    spec: "nltk" (NLTK's English list), "none" (no stopwords) or a path to a UTF-8 file with
      one word per line (blank lines and `#` comments ignored).

  Raises:
    UserError: the NLTK corpus is missing and could not be downloaded, or the file is missing,
      unreadable or not UTF-8 (one line naming the first bad byte).
  """
  if spec == "none":
    return frozenset()
  if spec == "nltk":
    return frozenset(_nltk_english_stopwords())
  if not os.path.isfile(spec):
    raise UsageError(f"--stopwords={spec!r}: not 'nltk', 'none' or an existing file; "
                     "give one of those")
  lines = read_lines(spec, "stopwords file", "pass --stopwords=nltk, none or a file")
  return frozenset(w.strip().lower() for w in lines
                   if w.strip() and not w.lstrip().startswith("#"))


def _stopwords_on_nltk_data() -> str | None:
  """The text of NLTK's `corpora/stopwords/english` where NLTK finds it first, if under $NLTK_DATA.

  NLTK searches the folders of $NLTK_DATA before its defaults; the first holding the
  `corpora/stopwords` resource, as a folder or as `corpora/stopwords.zip` (read at
  `stopwords/english` inside), wins. None when that resource lacks `english` or no $NLTK_DATA
  folder has it: then NLTK itself looks.
  """
  for folder in os.environ.get("NLTK_DATA", "").split(os.pathsep):
    if not folder:
      continue
    resource = os.path.join(folder, "corpora", "stopwords")
    if os.path.isdir(resource):
      path = os.path.join(resource, "english")
      if not os.path.isfile(path):
        return None
      with open(path, "rb") as f:
        return f.read().decode("utf-8")
    if os.path.isfile(resource + ".zip"):
      try:
        with zipfile.ZipFile(resource + ".zip") as archive:
          return archive.read("stopwords/english").decode("utf-8")
      except (KeyError, OSError, zipfile.BadZipFile, UnicodeDecodeError):
        return None  # NLTK decides (and says what is wrong)
  return None


def _nltk_english_stopwords() -> list[str]:
  """NLTK's English stopwords; tries `nltk.download` once, then fails with the fix.

  The list is read straight from $NLTK_DATA when it holds it: `import nltk` imports
  scipy.stats (through nltk.collocations), which took 2.2 s and 62 MiB of every run's start
  (AMD EPYC, 2 cores). The lines are NLTK's `words()`: non-blank lines, as they are.
  """
  listed = _stopwords_on_nltk_data()
  if listed is not None:
    return [line for line in listed.splitlines() if line.strip()]
  import nltk  # pylint: disable=import-outside-toplevel
  from nltk.corpus import stopwords  # pylint: disable=import-outside-toplevel
  try:
    return stopwords.words("english")
  except LookupError:
    pass
  try:
    # Even with quiet=True NLTK prints its failure over several lines: our one error says it.
    with contextlib.redirect_stdout(io.StringIO()):
      nltk.download("stopwords", quiet=True, raise_on_error=True, print_error_to=io.StringIO())
    return stopwords.words("english")
  except Exception:  # pylint: disable=broad-except
    pass
  raise UserError(
      "NLTK stopwords corpus not found and could not be downloaded: run "
      "`python -m nltk.downloader stopwords`, or set NLTK_DATA to a folder that has "
      "corpora/stopwords, or pass --stopwords=none or --stopwords=PATH")


def stopword_table(stopwords: Iterable[str]) -> tf.lookup.StaticHashTable:
  """A string -> 1 table for `clean_reviews` (0 for words not in the list)."""
  words = sorted(set(stopwords)) or [""]  # an empty table is not allowed; "" never survives
  return tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
          tf.constant(words, tf.string), tf.ones([len(words)], tf.int32)),
      default_value=0)


def _check_bytes(texts) -> tuple:
  """([batch] bool: not valid UTF-8, scalar bool: some text holds U+0130), in Python.

  Python's decoder checks 10k reviews in 13 ms; transcoding them all in TF took 0.52 s, so TF
  transcodes only a batch that needs it.
  """
  invalid = []
  dotted = False
  for data in texts.numpy():
    try:
      data.decode("utf-8")
      invalid.append(False)
    except UnicodeDecodeError:
      invalid.append(True)
    dotted = dotted or _DOTTED_CAPITAL_I in data
  return tf.constant(invalid, tf.bool, [len(invalid)]), tf.constant(dotted)


def _replace_invalid_utf8(texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """(texts with invalid UTF-8 replaced by U+FFFD, [batch] invalid, some text holds U+0130)."""
  invalid, dotted = tf.py_function(_check_bytes, [texts], (tf.bool, tf.bool))
  invalid.set_shape(texts.shape)
  dotted.set_shape([])
  texts = tf.cond(tf.reduce_any(invalid), lambda: tf.strings.unicode_transcode(
      texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD), lambda: texts)
  return texts, invalid, dotted


def candidate_tokens(texts: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
  """Rules 1-6: the lowercased alphabetic tokens of a batch of reviews, before the word filter.

  Args:
    texts: [batch] tf.string, raw review text (any bytes).

  Returns:
    ([batch, (tokens)] tf.string tokens, [batch] bool: the review had invalid UTF-8 that rule 1
    replaced). Rules 7-8 (`keep_words`) are left to the caller, which can apply them once per
    distinct word.
  """
  texts, invalid_utf8, dotted = _replace_invalid_utf8(texts)  # rule 1
  texts = tf.strings.regex_replace(texts, "<br />", " ")
  texts = tf.strings.regex_replace(texts, _PUNCTUATION_CLASS, "")

  def lowercase_then_split():
    # Rules 4-6 in a cheaper order: lowercasing whole texts cost 0.11 s per 10k reviews, each
    # token 0.64 s; a token is letters iff its lowercase is, but for U+0130 (see above). Tokens
    # holding a non-letter are cut out of the text before the split: 0.08 s per 10k reviews
    # where matching each token (`regex_full_match`) took 0.20 s, and the split that follows
    # then makes no string for them.
    # Separators first: tf.strings.lower(encoding="utf-8") drops everything after a NUL.
    lowered = tf.strings.lower(tf.strings.regex_replace(texts, _SEPARATORS, " "),
                               encoding="utf-8")
    return tf.strings.split(tf.strings.regex_replace(lowered, _TOKEN_WITH_A_NON_LETTER, ""))

  def split_then_lowercase():
    tokens = tf.strings.split(tf.strings.regex_replace(texts, _SEPARATORS, " "))
    alphabetic = tf.strings.regex_full_match(tokens.flat_values, _LETTERS_ONLY)
    tokens = tf.ragged.boolean_mask(tokens, tokens.with_flat_values(alphabetic))
    return tokens.with_flat_values(tf.strings.lower(tokens.flat_values, encoding="utf-8"))

  return tf.cond(dotted, split_then_lowercase, lowercase_then_split), invalid_utf8


def keep_words(words: tf.Tensor, stopwords: tf.lookup.StaticHashTable,
               min_chars: int = 2) -> tf.Tensor:
  """Rules 7-8: [n] bool, the words [n] tf.string that are no stopword and `min_chars` long."""
  keep = tf.equal(stopwords.lookup(words), 0)
  if min_chars > 1:
    keep &= tf.strings.length(words, unit="UTF8_CHAR") >= min_chars
  return keep


def clean_reviews(texts: tf.Tensor, stopwords: tf.lookup.StaticHashTable,
                  return_invalid_utf8: bool = False
                  ) -> tf.RaggedTensor | tuple[tf.RaggedTensor, tf.Tensor]:
  """Applies the cleaning rules to a batch of reviews.

  Args:
    texts: [batch] tf.string, raw review text (any bytes).
    stopwords: table from `stopword_table`.
    return_invalid_utf8: also return which reviews held bytes that are not UTF-8.

  Returns:
    [batch, (tokens)] tf.string RaggedTensor of cleaned tokens; with `return_invalid_utf8`,
    (tokens, [batch] bool: the review had invalid UTF-8 that rule 1 replaced).
  """
  tokens, invalid_utf8 = candidate_tokens(texts)
  keep = keep_words(tokens.flat_values, stopwords)
  cleaned = tf.ragged.boolean_mask(tokens, tokens.with_flat_values(keep))
  return (cleaned, invalid_utf8) if return_invalid_utf8 else cleaned


def tokenize_texts(texts: Sequence[str], stopwords: frozenset[str] | Iterable[str],
                   batch_size: int = 1024) -> list[list[str]]:
  """Cleans Python strings with the TF rules (for eval and inspection; not the hot path).

  Args:
    texts: reviews.
    stopwords: the stopword set (see `load_stopwords`).
    batch_size: reviews per TF call.

  Returns:
    One list of tokens per review.
  """
  table = stopword_table(stopwords)
  result: list[list[str]] = []
  for start in range(0, len(texts), batch_size):
    batch = tf.constant(list(texts[start:start + batch_size]), tf.string)
    for row in clean_reviews(batch, table).to_list():
      result.append([t.decode("utf-8") for t in row])
  return result


def whitespace_tokens(texts: tf.Tensor, lowercase: bool) -> tuple[tf.RaggedTensor, tf.Tensor]:
  """`--cleaning=none` before the stopwords: split on whitespace (as `str.split()`) and controls.

  Args:
    texts: [batch] tf.string documents (any bytes; invalid UTF-8 is replaced by U+FFFD).
    lowercase: lowercase the tokens.

  Returns:
    ([batch, (tokens)] tf.string tokens, [batch] bool: the document had invalid UTF-8).
  """
  texts, invalid_utf8, _ = _replace_invalid_utf8(texts)
  # Separators first: tf.strings.lower(encoding="utf-8") drops everything after a NUL.
  texts = tf.strings.regex_replace(texts, _SEPARATORS, " ")
  if lowercase:
    texts = tf.strings.lower(texts, encoding="utf-8")
  return tf.strings.split(texts), invalid_utf8
