"""absl flags generated from the config's fields, and the config back from parsed flags.

`define_flags` defines one flag per field of `w2v_tf.config` (a field with `choices` metadata
becomes an enum flag; a renamed field's old names become aliases), with the help text of its
class's `Attributes:` docstring; `from_flags` builds the `ExperimentConfig` the parsed flags
describe, refusing flags that exclude each other (two inputs; an old name and its new name with
different values). This module imports absl only when called, and defines no flag at import.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Iterable

from w2v_tf import data_home
from w2v_tf.config import _OWNER, _RENAMED, _SECTIONS, DataConfig, ExperimentConfig
from w2v_tf.errors import UsageError


def field_help(config_class: type) -> dict[str, str]:
  """{field: help} from the class docstring's `Attributes:` section (continuations joined)."""
  helps: dict[str, str] = {}
  in_attributes, name = False, None
  for line in (config_class.__doc__ or "").splitlines():
    if line.strip() == "Attributes:":
      in_attributes = True
      continue
    if not in_attributes or not line.strip():
      continue
    match = re.match(r"^    (\w+): (.*)$", line)
    if match:
      name = match.group(1)
      helps[name] = match.group(2).strip()
    elif name and line.startswith("      "):
      helps[name] += " " + line.strip()
  return helps


def _all_fields() -> list[tuple[dataclasses.Field, str]]:
  result = []
  for section in _SECTIONS.values():
    helps = field_help(section)
    result += [(field, helps[field.name]) for field in dataclasses.fields(section)]
  return result


def define_flags(flag_values=None, names: Iterable[str] | None = None,
                 defaults: dict[str, Any] | None = None) -> None:
  """Defines one absl flag per config field (or per field in `names`).

  A renamed field's old names (`_field`) are defined too, as aliases of its flag.

  Args:
    flag_values: where to define them (default: absl's global FLAGS).
    names: only these fields (a benchmark that shares a few settings; old names work).
    defaults: other default values for some fields (default: the dataclass's).
  """
  from absl import flags  # pylint: disable=import-outside-toplevel
  flag_values = flag_values if flag_values is not None else flags.FLAGS
  wanted = {_RENAMED.get(name, name) for name in names} if names is not None else None
  # The paths of the data folder (`data_home`: ./data when it exists, else the user's cache).
  defaults = {"train_csv": data_home.path("IMDB_Dataset.csv"), "cache_dir": data_home.path("cache"),
              **{_RENAMED.get(name, name): value for name, value in (defaults or {}).items()}}
  for field, help_text in _all_fields():
    if wanted is not None and field.name not in wanted:
      continue
    default = defaults.get(field.name, field.default)
    kind = field.type.replace(" | None", "")
    choices = field.metadata.get("choices")
    if choices:
      flags.DEFINE_enum(field.name, default, choices, help_text, flag_values=flag_values)
    else:
      define = {"str": flags.DEFINE_string, "int": flags.DEFINE_integer,
                "float": flags.DEFINE_float, "bool": flags.DEFINE_bool}[kind]
      define(field.name, default, help_text, flag_values=flag_values)
    for alias in field.metadata.get("aliases", ()):
      _define_alias(alias, flag_values[field.name], flag_values)


def _define_alias(alias: str, flag, flag_values) -> None:
  """Defines --`alias` for `flag` as absl's DEFINE_alias does (same value, same help), and
  remembers what the alias said, so that `from_flags` can refuse it disagreeing with the name."""
  from absl import flags  # pylint: disable=import-outside-toplevel

  class _Alias(flags.Flag):
    """Parsing --alias parses its flag; `disagreement` holds (the name's value, the alias's)
    when the flag was given under its own name with another value."""

    def parse(self, argument):
      given_by_name, before = flag.present > self.present, flag.value
      flag.parse(argument)
      self.present += 1
      self.given_value = flag.value
      if given_by_name and before != flag.value:
        self.disagreement = (before, flag.value)

    def _parse_from_default(self, value):
      return value  # parsed by the aliased flag already (see absl's DEFINE_alias)

    @property
    def value(self):
      return flag.value

    @value.setter
    def value(self, value):
      flag.value = value

  alias_flag = _Alias(flag.parser, flag.serializer, alias, flag.default,
                      f"Alias for --{flag.name}.", boolean=flag.boolean)
  alias_flag.given_value, alias_flag.disagreement = None, None
  flags.DEFINE_flag(alias_flag, flag_values)


def check_exclusive(flag_values) -> None:
  """Raises UsageError for flags given together that exclude each other.

  Two inputs (--train_csv and --train_text: only one would be read), or a field's old name and
  its name with different values (--max_reviews=5 --max_documents=9: only the last would count).
  """
  inputs = [field.name for field in dataclasses.fields(DataConfig)
            if "input_format" in field.metadata and field.name in flag_values
            and flag_values[field.name].present]
  if len(inputs) > 1:
    raise UsageError(f"{' and '.join('--' + name for name in inputs)} each name the input: "
                     "give one")
  for alias, name in _RENAMED.items():
    if alias not in flag_values or not flag_values[alias].present:
      continue
    alias_flag, flag = flag_values[alias], flag_values[name]
    by_name = flag.present > alias_flag.present
    disagreement = alias_flag.disagreement or (
        (flag.value, alias_flag.given_value) if by_name and flag.value != alias_flag.given_value
        else None)
    if disagreement:
      raise UsageError(f"--{name}={disagreement[0]} and --{alias}={disagreement[1]} disagree: "
                       f"--{alias} is the old name of --{name}; give one")


def from_flags(flag_values=None, base: ExperimentConfig | None = None,
               names: Iterable[str] | None = None) -> ExperimentConfig:
  """The config the parsed flags describe (fields without a flag keep `base`'s values).

  Flags are read, never mutated. The result is not yet `resolved()`.

  Raises:
    UsageError: flags that exclude each other were given together (`check_exclusive`).
  """
  from absl import flags  # pylint: disable=import-outside-toplevel
  flag_values = flag_values if flag_values is not None else flags.FLAGS
  check_exclusive(flag_values)
  wanted = {_RENAMED.get(name, name) for name in names} if names is not None else set(_OWNER)
  values = {name: flag_values[name].value for name in _OWNER
            if name in wanted and name in flag_values}
  return (base or ExperimentConfig()).replace(**values)
