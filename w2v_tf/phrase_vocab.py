"""gensim's one dictionary of words and bigrams, for phrase detection (`phrases`).

gensim's `Phrases` keeps the words and the joined bigram strings in one table keyed by string,
so a word `new_york` (from an earlier pass) and the bigram ('new', 'york') count together and
count once in `len(vocab)`, which enters the 'default' score. `vocab_counts` gives those counts
for the int64 bigram keys a * (U + 1) + b of `phrases.count_bigrams`, comparing the few strings
that can meet by polynomial hashes built with numpy from the words' hashes.
"""

from __future__ import annotations

import numpy as np


# Two primes below 2**31 and a base: polynomial hashes of byte strings, whose products of two
# residues fit in int64. Equal strings have equal hashes; equal hashes are checked as strings.
_MODULI = (2_147_483_629, 2_147_483_587)
_HASH_BASE = 1_000_003


def _powers(base: int, count: int, modulus: int) -> np.ndarray:
  """[count] int64 base ** i % modulus for i = 0, 1, ..., by doubling the table."""
  table = np.ones([max(count, 1)], np.int64)
  filled, step = 1, base % modulus  # step = base ** filled
  while filled < count:
    grow = min(filled, count - filled)
    table[filled:filled + grow] = table[:grow] * step % modulus
    filled += grow
    step = step * step % modulus
  return table[:count]


def _string_hashes(types, delimiter: str, left: np.ndarray, right: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
  """Hashes of the words' UTF-8 bytes, and of the bigrams' left + delimiter + right.

  A string c_0 .. c_n-1 hashes to sum c_i P^i (mod two primes), so that
  hash(x + y) = hash(x) + P^len(x) hash(y): a bigram's hash is its words' hashes combined.

  Returns:
    (words [U] int64, bigrams [B] int64), both under one 62-bit hash.
  """
  encoded = [word.encode("utf-8") for word in types]
  lengths = np.array([len(e) for e in encoded], np.int64)
  data = np.frombuffer(b"".join(encoded), np.uint8).astype(np.int64)
  ends = np.cumsum(lengths)
  starts = ends - lengths
  glue = delimiter.encode("utf-8")
  words, bigrams = np.zeros([len(types)], np.int64), np.zeros([len(left)], np.int64)
  for modulus in _MODULI:
    powers = _powers(_HASH_BASE, len(data) + 1, modulus)
    inverses = _powers(pow(_HASH_BASE, modulus - 2, modulus), len(data) + 1, modulus)
    # sum over the word's bytes of c_i P^(i - start) = P^-start * (prefix[end] - prefix[start]).
    prefix = np.concatenate([[0], np.cumsum(data * powers[:len(data)] % modulus)])
    word = (prefix[ends] - prefix[starts]) % modulus * inverses[starts] % modulus
    glue_hash = sum(byte * pow(_HASH_BASE, i, modulus) for i, byte in enumerate(glue)) % modulus
    left_shift = powers[lengths[left]]  # P^len(a)
    right_shift = left_shift * pow(_HASH_BASE, len(glue), modulus) % modulus  # P^len(a + glue)
    bigram = (word[left] + left_shift * glue_hash % modulus
              + right_shift * word[right] % modulus) % modulus
    words = words * modulus + word
    bigrams = bigrams * modulus + bigram
  return words, bigrams


def vocab_counts(types, type_counts: np.ndarray, keys: np.ndarray, counts: np.ndarray,
                 delimiter: str) -> tuple[np.ndarray, np.ndarray, int]:
  """gensim's `vocab` lookups for the words and bigrams, and `len(vocab)`.

  gensim keeps words and bigrams in one dictionary keyed by string, the bigram (a, b) under
  a + delimiter + b. A bigram whose string is also a word (the bigram ('new', 'york') in a
  corpus that holds new_york), or two bigrams with one string (('new_york', 'city') and
  ('new', 'york_city')), therefore share one count and one entry. That takes a word holding the
  delimiter (none does in a first pass over cleaned text). With a one-character delimiter the
  suspects are the bigrams with such a word in them and those that spell one; with a longer
  one, every bigram. The suspects' strings are compared by hash, built from the words' hashes
  with numpy, and the few whose hashes meet by their text.

  Args:
    types: [U] the corpus's words.
    type_counts: [U] int64 their counts in the stream.
    keys: [B] int64 sorted bigram keys a * (U + 1) + b.
    counts: [B] int64 their counts.
    delimiter: the phrase delimiter.

  Returns:
    (word_counts [U] int64: vocab[word], bigram_counts [B] int64: vocab[a + delimiter + b],
    len_vocab: the number of distinct strings among the words and bigrams).
  """
  num_types = len(types)
  base = num_types + 1
  word_counts = np.array(type_counts, np.int64)
  bigram_counts = np.array(counts, np.int64)
  len_vocab = int(np.count_nonzero(word_counts > 0)) + len(keys)
  # Every bigram string holds the delimiter, so only a word that holds it can be one.
  special = np.array([i for i, word in enumerate(types) if delimiter in word and
                      word_counts[i] > 0], np.int64)
  left, right = keys // base, keys % base
  if len(delimiter) == 1:
    if not len(special) or not len(keys):
      return word_counts, bigram_counts, len_vocab
    # The bigram of two words without the delimiter holds it once: it can only be a word that
    # holds it once, cut there.
    pieces = [types[i].split(delimiter) for i in special.tolist()]
    heads = {delimiter.join(p[:j]) for p in pieces for j in range(1, len(p))}
    tails = {delimiter.join(p[j:]) for p in pieces for j in range(1, len(p))}
    index = {word: i for i, word in enumerate(types) if word in heads or word in tails}
    cuts = np.array([index[p[0]] * base + index[p[1]] for p in pieces
                     if len(p) == 2 and p[0] in index and p[1] in index], np.int64)
    at = np.minimum(np.searchsorted(keys, cuts), len(keys) - 1)
    # A bigram holding it twice or more (a word in it holds it) can only be a word that does, or
    # a bigram cut elsewhere: ('x', 'y_z') and ('x_y', 'z'). Either way, with b holding it, a is
    # a head of some word (what it holds before a delimiter: of the word, or of 'x_y'), and with
    # a holding it, b is a tail of one.
    holds, head, tail = (np.zeros([base], bool) for _ in range(3))
    holds[special] = True
    head[[index[w] for w in heads if w in index]] = True
    tail[[index[w] for w in tails if w in index]] = True
    suspects = np.union1d(at[keys[at] == cuts], np.flatnonzero(
        (holds[right] & head[left]) | (holds[left] & tail[right])))
  else:
    # A longer delimiter can be made of one word's end and the next one's start ('a_' '__' 'b'
    # and 'a' '__' '_b'): every bigram is suspect.
    if not len(keys):
      return word_counts, bigram_counts, len_vocab
    suspects = np.arange(len(keys))
  word_hashes, bigram_hashes = _string_hashes(types, delimiter, left[suspects],
                                              right[suspects])
  hashes = np.concatenate([word_hashes[special], bigram_hashes])
  order = np.argsort(hashes)
  ordered = hashes[order]
  repeated = np.zeros([len(order)], bool)
  repeated[1:] = ordered[1:] == ordered[:-1]
  repeated[:-1] |= repeated[1:]
  # Entries below len(special) are words, the others suspect bigrams; equal hashes are
  # grouped by their text (a hash collision is no string collision).
  groups: dict[str, list[int]] = {}
  for entry in order[repeated].tolist():
    if entry < len(special):
      text = types[special[entry]]
    else:
      k = suspects[entry - len(special)]
      text = types[left[k]] + delimiter + types[right[k]]
    groups.setdefault(text, []).append(entry)
  for entries in groups.values():
    if len(entries) < 2:
      continue
    entries = np.array(entries, np.int64)
    is_word = entries < len(special)
    words, bigrams = special[entries[is_word]], suspects[entries[~is_word] - len(special)]
    total = word_counts[words].sum() + bigram_counts[bigrams].sum()
    word_counts[words] = total
    bigram_counts[bigrams] = total
    len_vocab -= len(entries) - 1
  return word_counts, bigram_counts, len_vocab
