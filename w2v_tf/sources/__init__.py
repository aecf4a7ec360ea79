"""Input formats of the corpus pass: one module per format, registered here by name.

  csv   `--train_csv`: a CSV with a header row, one document a row (`sources.csv`)
  text  `--train_text`: plain text files, a folder or a glob, one document a line (`sources.text`)

Each format (`base.InputFormat`) checks and resolves its files, gives its part of the corpus
cache key and streams batches of raw documents; `corpus` cleans, counts and caches them. A new
format is a module with an `InputFormat`, a line in `FORMATS`, and the `config.DataConfig` field
(its flag) that names its input, with its format name and default cleaning in the metadata.
"""

from __future__ import annotations

import dataclasses

from w2v_tf.config import DataConfig
from w2v_tf.sources import csv, text
from w2v_tf.sources.base import CorpusSpec, InputFormat

FORMATS: dict[str, InputFormat] = {"csv": csv.CsvFormat(), "text": text.TextFormat()}


def format_of(spec: CorpusSpec) -> InputFormat:
  """The format that reads `spec`'s input."""
  return FORMATS[spec.input_format]


def config_fields() -> tuple[str, ...]:
  """Every format's own `config.DataConfig` fields (`InputFormat.config_fields`), in the config's
  order."""
  wanted = {name for input_format in FORMATS.values() for name in input_format.config_fields}
  return tuple(field.name for field in dataclasses.fields(DataConfig) if field.name in wanted)
