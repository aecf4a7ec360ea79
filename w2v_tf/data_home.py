"""Where the commands keep their data by default: ./data, else the user's cache directory.

In a checkout (its data/ folder is tracked) or any working directory that already holds a
data/ folder, the defaults stay the quick start's: data/IMDB_Dataset.csv, data/cache/ for the
tokenised corpus, data/questions-words.txt. Anywhere else the commands would scatter data/cache/
(36 MB for IMDB) into whatever directory the user is in, so they use
`$XDG_CACHE_HOME/w2v_tf` (`~/.cache/w2v_tf` when unset). `$W2V_TF_DATA` names the folder
outright, wherever the command runs. `get_data` writes there too, so what it fetches is what
the other commands find. Every flag that names a path (--train_csv, --cache_dir, --analogies,
--data_dir, ...) still overrides its default.

This module only computes paths (no folder is made until a command writes one).
"""

from __future__ import annotations

import os

ENV_VAR = "W2V_TF_DATA"


def user_data_dir() -> str:
  """`$XDG_CACHE_HOME/w2v_tf`, else `~/.cache/w2v_tf` (the XDG base-directory default)."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "w2v_tf")


def data_dir() -> str:
  """The default data folder: `$W2V_TF_DATA`, else ./data when it exists, else the user's."""
  explicit = os.environ.get(ENV_VAR)
  if explicit:
    return explicit
  return "data" if os.path.isdir("data") else user_data_dir()


def path(name: str) -> str:
  """`name` inside the default data folder (e.g. "cache", "questions-words.txt")."""
  return os.path.join(data_dir(), name)


def describe() -> str:
  """One sentence for --help texts: where the defaults point and how to change that."""
  return (f"Defaults under ./data when the working directory has one (a checkout does), else "
          f"{user_data_dir()}; ${ENV_VAR} names the folder.")
