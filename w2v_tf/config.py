"""One experiment config: data, model, train and runtime dataclasses; JSON round trip.

Each field is written once, here: its type and default in the dataclass, its help text in the
class's `Attributes:` docstring. `w2v_tf.config_flags` turns the fields into absl flags and
back, so the training binary and the benchmarks share one path from the command line to an
`ExperimentConfig`. Defaults that depend on other settings (`num_sampled` per loss, the learning
rate per optimizer and model) are resolved by `ExperimentConfig.resolved`, not by binaries.

This module imports no TensorFlow and defines no flag at import.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Iterable

from w2v_tf import losses
from w2v_tf.errors import UsageError, UserError

MODELS = ("skipgram", "cbow")
LOSSES = losses.NAMES  # each loss's module is in w2v_tf/losses/
OPTIMIZERS = ("sgd", "adagrad", "adam")
STRATEGIES = ("default", "mirrored", "multi_worker", "parameter_server")
SAMPLERS = ("unigram", "log_uniform", "uniform")
NEGATIVE_SHARINGS = ("window", "center", "pair")
CLEANINGS = ("auto", "imdb", "none")
PHRASE_SCORINGS = ("default", "word2phrase")

# Initial learning rates of (optimizer, model): word2vec's 0.025 / 0.05 for SGD.
DEFAULT_LEARNING_RATES = {("sgd", "skipgram"): 0.025, ("sgd", "cbow"): 0.05,
                          ("adagrad", "skipgram"): 0.1, ("adagrad", "cbow"): 0.1,
                          ("adam", "skipgram"): 0.001, ("adam", "cbow"): 0.001}


def _choices(default: str, choices: tuple[str, ...]) -> Any:
  return dataclasses.field(default=default, metadata={"choices": choices})


def _field(default: Any, **metadata: Any) -> Any:
  """A field with `aliases` (its names of earlier versions: their flags and config.json keys
  work) or `input_format` (it names an input of that format of `w2v_tf.sources`, cleaned by the
  rules `cleaning` under --cleaning=auto)."""
  return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Where the corpus comes from and how it becomes training examples.

  Attributes:
    train_csv: Training CSV or CSV.gz with a header row (one review a row).
    train_text: Plain-text corpus instead of --train_csv: a file (.txt, .gz, .bz2), a folder of
      such files (read in sorted order) or a glob of shards ('shards/*.gz'); one document a
      line.
    text_column: Column holding the review text.
    max_documents: Use only the first N documents (CSV rows, text lines; 0 = all).
    cleaning: imdb (strip <br />, punctuation and non-alphabetic tokens, lowercase, drop
      one-letter words) or none (split on whitespace, keep tokens as they are: for corpora
      tokenised already, as text8); auto = imdb for --train_csv, none for --train_text.
    lowercase: With --cleaning=none, lowercase the tokens (imdb always lowercases).
    max_document_tokens: Cut longer documents (lines) into documents of this many tokens, as
      gensim does (0 = never); windows never cross a document boundary.
    max_vocab_size: Bound on the word table while counting: when it holds more words, the
      rarest are pruned as gensim's max_vocab_size does (with a warning; 10M words take about
      1.5 GB; 0 = no bound).
    phrases: Passes of phrase detection before training (Mikolov et al. 2013, section 4): pass
      1 joins 'new york' into new_york, pass 2 can form new_york_city (0 = none).
    phrase_min_count: Phrase detection: ignore words and bigrams seen fewer times.
    phrase_threshold: Phrase detection: join a bigram whose score is above this.
    phrase_scoring: default (gensim's original_scorer: (count(ab) - min_count) / (count(a) *
      count(b)) * number of distinct words and bigrams) or word2phrase (the C tool's: times
      the total word count instead).
    stopwords: 'nltk' (NLTK English list), 'none', or a file with one word per line.
    min_count: Drop words seen fewer times.
    max_vocab: Keep at most this many words (0 = no limit).
    subsample: Subsampling threshold t of frequent words (0 = off); word2vec's default 1e-3.
    window: Maximum window; each center draws its effective window from 1..window.
    batch_size: Center words per step (each with up to 2*window contexts).
    heldout_documents: Documents held out of training for the held-out full-softmax loss: a
      fraction if < 1, else a count.
    cache_dir: Tokenized-corpus cache ('' = none).
    seed: Seed of every random draw (reproducible runs).
    strict_utf8: Refuse a CSV with bytes that are not UTF-8 (default: replace them with
      U+FFFD, which forms no token, and warn once with the count).
  """
  # The input is the first field naming one without a default that is set (--train_text), else
  # the one with a default (--train_csv).
  train_csv: str = _field("data/IMDB_Dataset.csv", input_format="csv", cleaning="imdb")
  train_text: str = _field("", input_format="text", cleaning="none")
  text_column: str = "review"
  max_documents: int = _field(0, aliases=("max_reviews",))
  cleaning: str = _choices("auto", CLEANINGS)
  lowercase: bool = False
  max_document_tokens: int = 10_000
  max_vocab_size: int = 10_000_000
  phrases: int = 0
  phrase_min_count: int = 5
  phrase_threshold: float = 10.0
  phrase_scoring: str = _choices("default", PHRASE_SCORINGS)
  stopwords: str = "nltk"
  min_count: int = 5
  max_vocab: int = 0
  subsample: float = 1e-3
  window: int = 5
  batch_size: int = 4096
  heldout_documents: float = _field(0.01, aliases=("heldout_reviews",))
  cache_dir: str = "data/cache"
  seed: int = 0
  strict_utf8: bool = False

  def problems(self) -> list[str]:
    """What is out of range in the data fields (every binary that reads data checks these)."""
    problems = []
    for name, value, low in (("min_count", self.min_count, 1),
                             ("max_documents", self.max_documents, 0),
                             ("max_vocab", self.max_vocab, 0), ("seed", self.seed, 0),
                             ("max_document_tokens", self.max_document_tokens, 0),
                             ("max_vocab_size", self.max_vocab_size, 0),
                             ("phrases", self.phrases, 0),
                             ("phrase_min_count", self.phrase_min_count, 1)):
      if value < low:
        problems.append(f"--{name} must be >= {low} (got {value})")
    if self.seed >= 2 ** 63:  # TensorFlow's stateless seeds are int64
      problems.append(f"--seed must be < 2**63 (got {self.seed})")
    for field in dataclasses.fields(self):
      choices = field.metadata.get("choices")
      if choices and getattr(self, field.name) not in choices:
        problems.append(f"--{field.name} must be one of {', '.join(choices)} "
                        f"(got {getattr(self, field.name)!r})")
    if self.lowercase and self.resolved_cleaning == "imdb":
      problems.append("--lowercase is for --cleaning=none (the imdb rules lowercase already)")
    if not self.phrase_threshold == self.phrase_threshold:  # NaN
      problems.append("--phrase_threshold must be a number")
    if not 0 <= self.subsample < 1:
      problems.append(f"--subsample must be in [0, 1) (got {self.subsample})")
    if self.heldout_documents < 0 or (self.heldout_documents >= 1
                                      and self.heldout_documents != int(self.heldout_documents)):
      problems.append("--heldout_documents must be a fraction in [0, 1) or a whole count "
                      f"(got {self.heldout_documents:g})")
    return problems

  @property
  def input_field(self) -> dataclasses.Field:
    """The field that names the input (see the fields' comment)."""
    inputs = [field for field in dataclasses.fields(self) if "input_format" in field.metadata]
    chosen = [field for field in inputs if not field.default and getattr(self, field.name)]
    return chosen[0] if chosen else next(field for field in inputs if field.default)

  @property
  def input_format(self) -> str:  # its name in `w2v_tf.sources.FORMATS`: 'csv', 'text'
    return self.input_field.metadata["input_format"]

  @property
  def input_source(self) -> str:  # the value of `input_field`: a CSV; a text file, folder, glob
    return getattr(self, self.input_field.name)

  @property
  def resolved_cleaning(self) -> str:
    """The cleaning rules used: --cleaning, with auto = the input format's (imdb: a CSV)."""
    return self.input_field.metadata["cleaning"] if self.cleaning == "auto" else self.cleaning

  def __getattr__(self, name: str) -> Any:
    """A field's name of earlier versions (`_field`; the benchmarks read max_reviews)."""
    if name in _RENAMED:
      return getattr(self, _RENAMED[name])
    raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Model shape and objective (the vocabulary size comes from the data).

  Attributes:
    model: skipgram (center -> each context) or cbow (mean of contexts -> center).
    loss: Training loss; the exact full softmax is always measured alongside
      (hierarchical_softmax, word2vec's Huffman tree, is normalised itself: its own exact
      cross-entropy is measured).
    embedding_dim: Vector size d.
    num_sampled: Candidates shared by each group of --sample_group_centers centers for
      sampled_softmax / nce (default 64); negatives per pair for negative_sampling (default 5).
    sample_group_centers: Centers sharing one set of sampled candidates (sampled_softmax,
      nce); --batch_size must be a multiple of it.
    sampler: Distribution the candidates (and negative_sampling's negatives) are drawn from:
      unigram (counts^--sampler_power, word2vec's), log_uniform (Zipfian over frequency ranks,
      tf.nn.sampled_softmax_loss's default) or uniform.
    sampler_power: Exponent of the counts for --sampler=unigram (0.75: word2vec's).
    negatives_per: How skip-gram's negative_sampling orients a pair and draws its
      --num_sampled negatives: window (the default: each context's row against the center's
      output row and negatives drawn once per window: word2vec.c's orientation, pWord2Vec's
      sharing; 11.5% analogies after 2 IMDB epochs against 6.3% for center, at half its speed),
      center (the center's row against each context's and negatives drawn once per center)
      or pair (the center's row, negatives drawn for every pair, as gensim).
  """
  # Why groups: sharing one candidate set across a whole batch of thousands of pairs multiplies
  # each candidate's summed update by the number of pairs, which diverged at word2vec's
  # learning rate; groups of 64 centers (~380 pairs) train like small-batch SGD.
  model: str = _choices("skipgram", MODELS)
  loss: str = _choices(losses.DEFAULT, LOSSES)
  embedding_dim: int = 100
  num_sampled: int | None = None
  sample_group_centers: int = 64
  sampler: str = _choices("unigram", SAMPLERS)
  sampler_power: float = 0.75
  negatives_per: str = _choices("window", NEGATIVE_SHARINGS)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How to train and where to write.

  Attributes:
    model_dir: Checkpoints, events, config and vectors.
    epochs: Passes over the corpus.
    learning_rate: Initial learning rate, decayed linearly to 1e-4 of it (default: 0.025
      skip-gram / 0.05 CBOW with sgd, 0.1 adagrad, 0.001 adam).
    optimizer: sgd (word2vec's), adagrad or adam (lazy); all update only the rows used.
    checkpoint_every_steps: Checkpoint interval (also at each epoch end and on Ctrl-C /
      SIGTERM).
    keep_checkpoints: Checkpoints to keep.
    eval_every_steps: Interval of the exact full-softmax comparison (batch and held-out, and
      the gradient cosine); it also runs at the first step, mid first epoch, each epoch end
      and the last step.
    log_every_steps: Interval of the training-loss points (TensorBoard and console).
    heldout_centers: Center words in the fixed held-out set (with their contexts).
    analogies: Analogy file (questions-words.txt) evaluated at each epoch end (default:
      data/questions-words.txt when it exists; 'none' = no evaluation).
    overwrite: Replace a model_dir that holds another run.
  """
  model_dir: str = "checkpoints/imdb"
  epochs: int = 5
  learning_rate: float | None = None
  optimizer: str = _choices("sgd", OPTIMIZERS)
  checkpoint_every_steps: int = 5000
  keep_checkpoints: int = 3
  # 4000: the exact comparison costs ~1.1 s (IMDB, 42k words); 8 of them in the 5-epoch quick
  # start are 3.8% of its ~230 s of training (2000 cost 5.1%). See docs/loss_study.md.
  eval_every_steps: int = 4000
  log_every_steps: int = 100
  heldout_centers: int = 1000
  analogies: str | None = None
  overwrite: bool = False


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
  """Where and how steps run; none of it changes what is learned.

  Attributes:
    strategy: default: one device. mirrored: tf.distribute.MirroredStrategy over the local
      GPUs (or --cpu_devices logical CPUs). multi_worker: MultiWorkerMirroredStrategy, cluster
      from TF_CONFIG; only the chief writes. parameter_server: tables sharded across the
      TF_CONFIG "ps" tasks; the "chief" task trains, "worker" and "ps" tasks serve.
    cpu_devices: With --strategy=mirrored: split the CPU into this many logical devices (for
      testing without GPUs; 0 = don't).
    jit_compile: Compile the loss and gradient with XLA.
    steps_per_call: Steps run in one tf.function call between Python's checks of signals and
      progress (calls also end at each loss comparison and checkpoint).
    progress: Show the per-epoch progress bar.
  """
  strategy: str = _choices("default", STRATEGIES)
  cpu_devices: int = 0
  jit_compile: bool = True
  steps_per_call: int = 50
  progress: bool = True


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
             "runtime": RuntimeConfig}


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """Everything a training run is given: `data`, `model`, `train` and `runtime` configs."""
  data: DataConfig = DataConfig()
  model: ModelConfig = ModelConfig()
  train: TrainConfig = TrainConfig()
  runtime: RuntimeConfig = RuntimeConfig()

  def replace(self, **changes: Any) -> "ExperimentConfig":
    """A copy with fields changed by name, whatever section holds them: replace(epochs=2)."""
    sections = {name: {} for name in _SECTIONS}
    for key, value in changes.items():
      key = _RENAMED.get(key, key)
      sections[_section_of(key)][key] = value
    return ExperimentConfig(**{name: dataclasses.replace(getattr(self, name), **fields)
                               for name, fields in sections.items()})

  def resolved(self) -> "ExperimentConfig":
    """Fills the defaults that depend on other fields: num_sampled and learning_rate."""
    changes = {}
    if self.model.num_sampled is None:
      # The loss's own default (importing its module, so TensorFlow, only here); a loss that
      # draws none keeps the sampled losses' 64, which nothing reads.
      changes["num_sampled"] = losses.get(self.model.loss).default_num_sampled or 64
    if self.train.learning_rate is None:
      changes["learning_rate"] = DEFAULT_LEARNING_RATES.get(
          (self.train.optimizer, self.model.model))
    return self.replace(**changes) if changes else self

  def validate(self) -> None:
    """Raises UsageError naming every value that cannot work (before any data is read)."""
    data, model, train, runtime = self.data, self.model, self.train, self.runtime
    problems = []
    for name, value in (("window", data.window), ("embedding_dim", model.embedding_dim),
                        ("batch_size", data.batch_size), ("epochs", train.epochs),
                        ("num_sampled", model.num_sampled),
                        ("keep_checkpoints", train.keep_checkpoints),
                        ("checkpoint_every_steps", train.checkpoint_every_steps),
                        ("eval_every_steps", train.eval_every_steps),
                        ("log_every_steps", train.log_every_steps),
                        ("steps_per_call", runtime.steps_per_call)):
      if value is not None and value <= 0:
        problems.append(f"--{name} must be positive (got {value})")
    if not train.model_dir.strip():
      problems.append("--model_dir must name a directory (got an empty one)")
    if train.learning_rate is not None and not train.learning_rate > 0:
      problems.append(f"--learning_rate must be > 0 (got {train.learning_rate})")
    if not model.sampler_power >= 0:
      problems.append(f"--sampler_power must be >= 0 (got {model.sampler_power})")
    problems += data.problems()
    if model.sample_group_centers <= 0 or data.batch_size % model.sample_group_centers:
      problems.append(f"--batch_size ({data.batch_size}) must be a multiple of "
                      f"--sample_group_centers ({model.sample_group_centers})")
    for section in (model, train, runtime):
      for field in dataclasses.fields(section):
        choices = field.metadata.get("choices")
        value = getattr(section, field.name)
        if choices and value not in choices:
          problems.append(f"--{field.name} must be one of {', '.join(choices)} (got {value!r})")
    if runtime.cpu_devices < 0 or (runtime.cpu_devices and runtime.strategy != "mirrored"):
      problems.append(f"--cpu_devices ({runtime.cpu_devices}) must be >= 0, and is for "
                      "--strategy=mirrored only")
    if problems:
      raise UsageError("; ".join(problems))

  def to_dict(self) -> dict:
    return {name: dataclasses.asdict(getattr(self, name)) for name in _SECTIONS}

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

  @classmethod
  def from_dict(cls, payload: dict, ignore: Iterable[str] = ()) -> "ExperimentConfig":
    """Builds a config from `to_dict` output; each field is found by name in any section.

    Looking fields up by name (they are unique across sections) also reads the layout of
    earlier versions, which kept strategy, jit_compile and progress under "train". Keys in
    `ignore` are skipped; any other unknown key is an error (a config from a newer version).
    """
    fields = flat_fields(payload)
    unknown = sorted(set(fields) - set(_OWNER) - set(ignore))
    if unknown:
      raise UserError(f"unknown config keys {', '.join(unknown)}: written by another version "
                      "of w2v-tf?")
    return cls().replace(**{key: value for key, value in fields.items() if key in _OWNER})

  @classmethod
  def from_json(cls, text: str, ignore: Iterable[str] = ()) -> "ExperimentConfig":
    return cls.from_dict(json.loads(text), ignore)


def flat_fields(payload: dict) -> dict:
  """{field: value} of every section of a `to_dict`-style payload (old names read as today's)."""
  fields = {}
  for section in payload.values():
    if isinstance(section, dict):
      fields.update({_RENAMED.get(key, key): value for key, value in section.items()})
  return fields


_OWNER = {field.name: name for name, section in _SECTIONS.items()
          for field in dataclasses.fields(section)}
# {old name: field name} of the renamed fields (`_field`).
_RENAMED = {alias: field.name for section in _SECTIONS.values()
            for field in dataclasses.fields(section) for alias in field.metadata.get("aliases", ())}


def _section_of(key: str) -> str:
  if key not in _OWNER:
    raise TypeError(f"no config field named {key!r}")
  return _OWNER[key]
