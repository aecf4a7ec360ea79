"""The README and docs/: the quick start matches .ci/run (CI runs the README's test command
verbatim), the layout table names every module and page, the README stays short and its links
to docs/ pages resolve, and no page cites an issue tracker number."""

import glob
import os
import re

import pytest

from tests.conftest import REPO_ROOT

README_MAX_LINES = 300
# "issue 17", "issues 5 and 16", "#26": numbers of a tracker the reader cannot see.
ISSUE_NUMBER = re.compile(r"\bissues?\s+#?\d+|(?<![\w&/])#\d+\b", re.IGNORECASE)
# [text](target): the target up to a space or the closing parenthesis.
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _read(path):
  with open(os.path.join(REPO_ROOT, path), encoding="utf-8") as f:
    return f.read()


def _readme_section(title):
  return _read("README.md").split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _pages():
  """README.md, benchmarks/README.md and every Markdown page under docs/."""
  docs = sorted(os.path.relpath(path, REPO_ROOT)
                for path in glob.glob(os.path.join(REPO_ROOT, "docs", "**", "*.md"),
                                      recursive=True))
  return ["README.md", os.path.join("benchmarks", "README.md"), *docs]


def _links(text):
  """The link targets of Markdown text, code blocks and `code spans` left out."""
  prose = re.sub(r"```.*?```", "", text, flags=re.S)
  return LINK.findall(re.sub(r"`[^`\n]*`", "", prose))


def _quick_start_commands():
  return re.findall(r"```sh\n(.*?)\n```", _readme_section("Quick start"), re.S)


def test_quick_start_has_two_commands_and_ci_runs_the_second():
  commands = _quick_start_commands()
  assert len(commands) == 2, commands
  assert all("\n" not in c for c in commands)
  train, test = commands
  assert "w2v_tf.train" in train and "eval.analogy" in train
  assert "pytest" in test
  with open(os.path.join(REPO_ROOT, ".ci", "run"), encoding="utf-8") as f:
    ci_lines = [line.strip() for line in f]
  assert test in ci_lines


def test_layout_names_every_module_and_docs_page():
  layout = _readme_section("Layout")
  packages = ["w2v_tf", "eval", "benchmarks"]
  packages += sorted(f"w2v_tf/{name}" for name in os.listdir(os.path.join(REPO_ROOT, "w2v_tf"))
                     if os.path.isfile(os.path.join(REPO_ROOT, "w2v_tf", name, "__init__.py")))
  assert "w2v_tf/losses" in packages and "w2v_tf/sources" in packages
  for folder in packages:
    if folder.count("/"):  # a subpackage has its own row
      assert f"`{folder}/`" in layout, f"{folder}/ is missing from the README's layout table"
    for name in sorted(os.listdir(os.path.join(REPO_ROOT, folder))):
      if name.endswith(".py") and name != "__init__.py":
        assert name in layout, f"{folder}/{name} is missing from the README's layout table"
  pages = sorted(os.listdir(os.path.join(REPO_ROOT, "docs")))
  assert any(name.endswith(".md") for name in pages)
  for name in pages:  # the pages and the result folders
    assert name in layout, f"docs/{name} is missing from the README's layout table"


def test_readme_is_short():
  lines = _read("README.md").count("\n")
  assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


def test_readme_links_every_docs_page_and_each_link_exists():
  targets = {target.split("#", 1)[0] for target in _links(_read("README.md"))}
  docs_links = {t for t in targets if t.startswith("docs/") and t.endswith(".md")}
  for target in docs_links:
    assert os.path.isfile(os.path.join(REPO_ROOT, target)), f"README links {target}: no such page"
  pages = {f"docs/{name}" for name in os.listdir(os.path.join(REPO_ROOT, "docs"))
           if name.endswith(".md")}
  assert pages <= docs_links, f"docs pages the README does not link: {sorted(pages - docs_links)}"
  for page in ("training", "data", "evaluation", "loss_study", "performance", "reliability",
               "scaling"):
    assert f"docs/{page}.md" in docs_links


@pytest.mark.parametrize("page", _pages())
def test_relative_links_of_a_page_exist(page):
  folder = os.path.dirname(os.path.join(REPO_ROOT, page))
  for target in _links(_read(page)):
    path = target.split("#", 1)[0]
    if not path or re.match(r"[a-z]+:", path):  # an anchor on the page, or a URL
      continue
    assert os.path.exists(os.path.join(folder, path)), f"{page} links {target}: not found"


@pytest.mark.parametrize("page", _pages())
def test_no_page_cites_an_issue_number(page):
  found = [m.group(0) for m in ISSUE_NUMBER.finditer(_read(page))]
  assert not found, f"{page} cites issue numbers: {found}"


def test_issue_numbers_are_recognised():
  for text in ("as issue 17 asks", "issue 16's targets", "(Issues 5)", "see #26", "issue #3"):
    assert ISSUE_NUMBER.search(text), text
  for text in ("one issue with it", "[link](#quick-start)", "&#8212;", "8 issues"):
    assert not ISSUE_NUMBER.search(text), text


def test_scaling_out_section_exists_where_the_errors_send_users():
  # w2v_tf/cluster.py's TF_CONFIG errors say: see the README's "Scaling out".
  assert "## Scaling out" in _read("README.md")
  assert "docs/scaling.md" in _readme_section("Scaling out")
