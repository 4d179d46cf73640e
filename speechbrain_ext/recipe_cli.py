"""The command line every recipe of this project shares.

``python recipes/<recipe>/train.py hparams/X.yaml [--overrides_file F.yaml ...] [--key=value ...]``

* SpeechBrain's own parser (``speechbrain.parse_arguments``): run options
  (``--device``, ``--precision``, ...) and ``--key=value`` overrides;
* ``--overrides_file FILE`` (repeatable): a YAML file of ``key: value``
  overrides, e.g. ``overrides/micro.yaml``, the micro scale; command-line
  overrides win over files, later files over earlier ones; nested mappings
  are merged key by key, as HyperPyYAML merges overrides into the YAML
  (``--backbone_config="{dim: 256}"`` after a file that sets
  ``backbone_config`` changes only ``dim``);
* paths (the hparams file, override files, ``path_keys`` values) are found
  as given, else relative to the recipe's folder, else to the repository
  root, so a recipe runs from the repository root and from its own folder.

A malformed override (file or command line) is a ``ValueError`` naming it;
a missing override file a ``FileNotFoundError``.

Example
-------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "train.yaml").write_text("lr: 1.0\\nsteps: 10\\n")
>>> _ = (folder / "small.yaml").write_text("steps: 2\\n")
>>> parse_arguments(["train.yaml", "--overrides_file", "small.yaml", "--lr=0.5"], folder)[2]
{'steps': 2, 'lr': 0.5}
"""
import re
from pathlib import Path

import speechbrain as sb
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


def resolve_path(path, bases=()):
    """``path`` as given if absolute or existing, else under the first of
    ``bases`` (then the repository root) where it exists; unchanged if none."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    for base in (*bases, REPO_ROOT):
        if (Path(base) / path).exists():
            return Path(base) / path
    return path


def merge_overrides(base, new):
    """``base`` updated with ``new``, nested mappings merged recursively.

    >>> merge_overrides({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}})
    {'a': {'x': 1, 'y': 3}, 'b': 1}
    """
    merged = dict(base)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = value
    return merged


def yaml_keys(hparams_file):
    """Top-level keys of a HyperPyYAML file (read as text: its tags need no
    resolving for this)."""
    return set(re.findall(r"^([A-Za-z_]\w*)\s*:", Path(hparams_file).read_text(), re.MULTILINE))


def read_overrides_file(name, bases=()):
    """The ``key: value`` mapping of an overrides file."""
    path = resolve_path(name, bases) if name else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"--overrides_file: no such file {name!r}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"malformed override in {name}: {err}") from err
    if not isinstance(values, dict):
        raise ValueError(f"overrides in {name} must be 'key: value' pairs, got {values!r}")
    return values


def parse_arguments(argv, recipe_dir, skip_unknown_file_keys=False, path_keys=()):
    """Returns ``(hparams_file, run_opts, overrides)`` (``overrides`` a dict).

    ``skip_unknown_file_keys``: keys of an overrides file that the hparams
    file lacks are dropped (one file shared by several recipes); a
    command-line key the YAML lacks stays an error (HyperPyYAML: a typo).
    ``path_keys``: override keys naming files or folders, resolved like the
    hparams file.
    """
    files, rest = [], []
    args = iter(argv)
    for arg in args:
        if arg == "--overrides_file":
            files.append(next(args, None))
        elif arg.startswith("--overrides_file="):
            files.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    if rest and not rest[0].startswith("-"):
        rest[0] = str(resolve_path(rest[0], [recipe_dir]))
    hparams_file, run_opts, cli = sb.parse_arguments(rest)
    overrides = {}
    known = yaml_keys(hparams_file) if skip_unknown_file_keys and files else None
    for name in files:
        values = read_overrides_file(name, [recipe_dir])
        if known is not None:
            values = {k: v for k, v in values.items() if k in known}
        overrides = merge_overrides(overrides, values)
    try:
        cli_values = (yaml.safe_load(cli) if cli else None) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"malformed command-line override: {err}") from err
    if not isinstance(cli_values, dict):
        raise ValueError(f"malformed command-line override: expected --key=value, got {cli!r}")
    overrides = merge_overrides(overrides, cli_values)
    for key in path_keys:
        if isinstance(overrides.get(key), str):
            overrides[key] = str(resolve_path(overrides[key], [recipe_dir]))
    return hparams_file, run_opts, overrides
