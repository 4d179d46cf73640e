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
  root, so a recipe runs from the repository root and from its own folder;
* progress bars are shown only when standard error is a terminal (a log
  file gets none; ``--noprogressbar=False`` forces them);
* a *variant* hparams file (``hparams/nc_1s.yaml``) is a plain mapping that
  names its base (``variant_of: nc_5s.yaml``, found beside it) and the keys
  it changes (``split_length: 1``): the base is loaded with those keys as
  the first overrides (files and the command line win over them), so the
  variants of one method are not copies of it.

* ``--help`` (``-h``) prints the recipe's own options (``RECIPE_OPTIONS``),
  every key of the hparams file given before it (each settable as
  ``--key=value``) and SpeechBrain's run options;
* on an embedded (synthetic) corpus, a split a paper-scale YAML names and
  the corpus lacks (``train_splits: ["960"]``) is an error that says which
  override to add (``--overrides_file overrides/micro.yaml`` or
  ``--train_splits=[...]``), before any preparation runs.

A malformed override (file or command line) is a ``ValueError`` naming it;
a missing override file a ``FileNotFoundError``.

Every override (command line and files, nested mappings key by key) is
checked against the value the hparams YAML gives its key, so that a wrong
type fails here, naming the key, and not deep in torch after the data
preparation. The YAML's plain values are read without resolving its
HyperPyYAML tags: a tagged value (``!ref``, ``!new:``, ``!name:``,
``!apply:``, ``!PLACEHOLDER``, ...) is not checked, nor is a key the YAML
lacks (for a nested key: HyperPyYAML merges it in). The rules, by the
YAML's value:

* ``null``: anything; and a ``null`` override is taken for any key (it
  switches a limit off: ``batch_seconds: null``; the recipe judges it);
* an int: an int, or a number or numeric string of integral value, made
  an int (``--max_updates=1e5`` is 100000; ``2.5`` and booleans fail);
* a float: an int or a float; a string that Python's ``float()`` parses is
  made that float: PyYAML (YAML 1.1) reads ``1e-3``, with no dot, as the
  string ``'1e-3'``, so ``--lr=1e-3`` would otherwise be a string;
* a bool: a bool (``True``/``False``, YAML 1.1's ``yes``/``no``...);
* a string: a string, or any unquoted scalar, taken as the text typed
  (``--train_splits=[960]`` names the split ``'960'``, ``--label=1.10`` is
  ``'1.10'``, not the float 1.1); a list or mapping fails;
* a list: a list; if the YAML's items share one type (``lm_weights``),
  each item is checked against it; if they differ, the list is a record
  (``online_mask: [0.1, 20]``: a probability and a span) and item ``i`` is
  checked against the YAML's item ``i``;
* a mapping: a mapping, checked key by key (``backbone_config.dim``).

A mismatch is a ``ValueError`` naming the key (a dotted path for nested
keys), the value, the file it came from and what the YAML has.

Example
-------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "train.yaml").write_text("lr: 1.0\\nsteps: 10\\n")
>>> _ = (folder / "small.yaml").write_text("steps: 2\\n")
>>> parse_arguments(["train.yaml", "--overrides_file", "small.yaml", "--lr=0.5"], folder)[2]
{'steps': 2, 'lr': 0.5}
>>> parse_arguments(["train.yaml", "--lr=1e-3", "--steps=1e3"], folder)[2]
{'lr': 0.001, 'steps': 1000}
>>> parse_arguments(["train.yaml", "--steps=ten"], folder)
Traceback (most recent call last):
    ...
ValueError: override steps='ten': expected an int (the YAML has steps: 10)
"""
import dataclasses
import logging
import re
import sys
from pathlib import Path

import speechbrain as sb
import yaml

from speechbrain_ext.io.data import DataPreparationError

# installed before anything imports speechbrain.utils.train_logger (its
# "torchvision is not available" import-time warning)
from speechbrain_ext.training.train_logger import silence_figure_saver_warning

silence_figure_saver_warning()
# SpeechBrain's log file takes DEBUG records; matplotlib (the length-split
# figure) would fill it with a hundred font-matching lines per figure
logging.getLogger("matplotlib").setLevel(logging.WARNING)

REPO_ROOT = Path(__file__).resolve().parents[2]  # speechbrain_ext/training/ -> the repository

# The options each kind of recipe documents in --help (every other YAML key
# is set the same way, --key=value); the kind is the recipe folder's name
# (recipes/<kind>/train.py), or "downstream" for recipes/downstream/<task>/.
_COMMON = (
    ("--overrides_file FILE", "a YAML file of key: value overrides (repeatable; later files and "
                              "the command line win); overrides/micro.yaml is the micro scale of "
                              "the embedded corpora (data/mini, made by `make data`)"),
    ("--data_folder DIR", "the corpus folder (the paper YAMLs leave it a !PLACEHOLDER)"),
    ("--output_folder DIR", "where the run writes its log, manifests and save/ checkpoints"),
    ("--max_updates N", "stop after N optimizer updates (a smoke run: --max_updates=2)"),
    ("--seed N", "the run's seed"),
    ("--device=cpu", "SpeechBrain's device (default cuda:0 when a GPU is visible)"),
)
RECIPE_OPTIONS = {
    "pretrain": _COMMON + (
        ("--train_splits=[...]", "LibriSpeech splits to pre-train on; the paper YAMLs use [960], "
                                 "which the embedded corpus lacks: --train_splits=[train-clean-100]"),
        ("--valid_splits=[...]", "validation splits (default [dev-clean])"),
        ("--init_from CKPT", "seq_5s.yaml: start from these weights (our checkpoint, HF folder, "
                             "fairseq .pt); the run logs which"),
        ('--backbone_config="{zoo: NAME}"', "the architecture (python -m speechbrain_ext.models "
                                               "lists the zoo)"),
        ("--batch_seconds S", "seconds of audio per process and step"),
        ("--grad_accumulation_factor K", "steps per update"),
        ("--pretrain_on=utterances", "whole utterances instead of length-split pieces"),
        ("--distributed_backend=gloo", "with torchrun on CPUs (add --device=cpu)"),
    ),
    "finetune": _COMMON + (
        ("--pretrained CKPT", "the backbone to fine-tune (our save/ folder, backbone.ckpt, HF "
                              "folder, fairseq .pt); null + --random_init_architecture="
                              '"{zoo: w2v2_base}" for a random-initialisation baseline'),
        ("--librilight_folder DIR", "the librispeech_finetuning folder (ll10h / ll1h / ll10min)"),
        ("--lm_path ARPA", "an n-gram LM (the official LibriSpeech 4-gram.arpa); null builds a "
                           "Kneser-Ney LM of the training transcripts"),
        ("--lm_decoding False", "greedy and LM-free beam search only"),
    ),
    "downstream": _COMMON[:1] + (
        ("--backbone CKPT", "the pre-trained checkpoint (its architecture is read from it; a "
                            "micro checkpoint needs --overrides_file ../overrides/micro.yaml)"),
        ("--freeze True|False", "frozen weighted sum of the layers, or fine-tuned (CNN frozen)"),
        ("--corpora_root DIR", "the folder holding every corpus (data/mini for the embedded ones)"),
        ("--data_folder DIR", "this task's corpus folder (instead of --corpora_root)"),
        ("--output_root DIR", "where the task writes its run and results.jsonl"),
        ("--max_updates N", "stop training after N updates (SpeechBrain's optimizer_step_limit); "
                            "evaluation still runs"),
        ("--feature_cache DIR", "frozen runs: cache the upstream's features on disk"),
        ("--random_init True", "the backbone's architecture, randomly initialised"),
        ("--device=cpu", "SpeechBrain's device"),
    ),
}


def recipe_kind(recipe_dir):
    """``pretrain``, ``finetune``, ``downstream`` or None, from the recipe's folder."""
    recipe_dir = Path(recipe_dir).resolve()
    for name in (recipe_dir.name, recipe_dir.parent.name):
        if name in RECIPE_OPTIONS:
            return name
    return None


def _wrap(text, indent, width=100):
    import textwrap

    return textwrap.fill(text, width, initial_indent=" " * indent,
                         subsequent_indent=" " * indent)


def recipe_help(argv, recipe_dir, script=None):
    """The text ``--help`` prints: usage, the recipe's own options, the keys of
    the hparams file named in ``argv`` (if any) and SpeechBrain's run options.

    >>> text = recipe_help(["hparams/nc_5s.yaml", "--help"], REPO_ROOT / "recipes" / "pretrain")
    >>> "--overrides_file FILE" in text and "--init_from CKPT" in text and "max_updates:" in text
    True
    """
    recipe_dir = Path(recipe_dir).resolve()
    if script is None:
        folder = recipe_dir.relative_to(REPO_ROOT) if recipe_dir.is_relative_to(REPO_ROOT) else recipe_dir
        script = f"{folder}/train.py"
    lines = [f"usage: python {script} HPARAMS.yaml [--overrides_file FILE ...] [--KEY=VALUE ...] "
             "[SpeechBrain run options]", "",
             _wrap("Every key of the hparams YAML can be set on the command line as --key=value "
                   "(or --key value); nested mappings merge key by key "
                   '(--backbone_config="{dim: 256}"), and a value of the wrong type fails before '
                   "anything runs, naming the key. Paths are found as given, else relative to the "
                   "recipe folder, else to the repository root.", 0), ""]
    options = RECIPE_OPTIONS.get(recipe_kind(recipe_dir), _COMMON)
    lines.append("recipe options (most are YAML keys, set like any other):")
    for flag, text in options:
        lines.append(f"  {flag}")
        lines.append(_wrap(text, 6))
    hparams = next((a for a in argv if not a.startswith("-")), None)
    path = resolve_path(hparams, [recipe_dir]) if hparams else None
    if path is not None and path.is_file():
        base, variant = resolve_variant(path)
        defaults = yaml_defaults(base) or {}
        lines += ["", f"keys of {hparams}" + (f" (a variant of {Path(base).name}: {variant})"
                                               if variant else "") + ", each a --key=value:"]
        for key, default in defaults.items():
            if key.startswith("__"):  # !apply: side effects (seeding), not settings
                continue
            shown = variant[key] if key in variant else default.text
            lines.append(f"  {key}: {shown}")
    else:
        files = sorted((recipe_dir / "hparams").glob("*.yaml"))
        if files:
            lines += ["", "hparams files (give one before --help to list its keys):",
                      *(f"  hparams/{f.name}" for f in files)]
    from speechbrain.utils.run_opts import RunOptions

    sb_help = RunOptions._create_parser().format_help()
    options_at = sb_help.find("options:")
    lines += ["", "SpeechBrain run options:" if options_at < 0 else "SpeechBrain run " + sb_help[options_at:]]
    return "\n".join(lines)


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


class _Unknown:
    """The marker of a tagged YAML value: its type is known only once
    HyperPyYAML resolves it, so it is not checked."""

    def __repr__(self):
        return "<tagged>"


UNKNOWN = _Unknown()


class PlainValuesLoader(yaml.SafeLoader):
    """A HyperPyYAML file's plain values; every tagged node (``!ref``,
    ``!new:...``, ``!PLACEHOLDER``, ``!include``, ...) is ``UNKNOWN``.

    >>> yaml.load("a: 1\\nb: !ref <a>\\nc: !new:torch.nn.ReLU\\n", Loader=PlainValuesLoader)
    {'a': 1, 'b': <tagged>, 'c': <tagged>}
    """


def _unknown(loader, *suffix_and_node):
    return UNKNOWN


# `None`: any tag without a constructor of its own, local (`!`) or not
PlainValuesLoader.add_constructor(None, _unknown)
PlainValuesLoader.add_multi_constructor("!", _unknown)


class _Default:
    """A YAML value as the checker reads it: ``value`` is a scalar,
    ``UNKNOWN``, or a dict / list of ``_Default``; ``text``, as the YAML
    writes it (for the message)."""

    def __init__(self, value, text):
        self.value, self.text = value, text


_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


def _source_text(node, value):
    mark, end = node.start_mark, node.end_mark
    text = mark.buffer[mark.index:end.index].strip() if mark.buffer else ""
    if text and "\n" not in text:
        return text if len(text) <= 60 else text[:57] + "..."
    # a block mapping or list: its lines (and comments) would not read well
    if isinstance(value, dict):
        return f"<a mapping of {len(value)} keys>"
    if isinstance(value, list):
        return f"<a list of {len(value)} items>"
    return repr(value)


def _defaults(loader, node):
    if node.tag == _MAP and isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # `<<: *base` merge keys, as safe_load does
        value = {loader.construct_object(k, deep=True): _defaults(loader, v) for k, v in node.value}
    elif node.tag == _SEQ and isinstance(node, yaml.SequenceNode):
        value = [_defaults(loader, v) for v in node.value]
    else:  # a scalar, or a tagged node: UNKNOWN
        value = loader.construct_object(node, deep=True)
    return _Default(value, _source_text(node, value))


def yaml_defaults(hparams_file):
    """The top-level ``{key: _Default}`` of a HyperPyYAML file, or None if
    it cannot be read (HyperPyYAML then reports it, not the checker)."""
    try:
        loader = PlainValuesLoader(Path(hparams_file).read_text())
        try:
            node = loader.get_single_node()
            root = _defaults(loader, node) if node is not None else None
        finally:
            loader.dispose()
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: e.g. a date out of range
        return None
    return root.value if root is not None and isinstance(root.value, dict) else None


def _load_overrides(text):
    """``(values, raw)`` of a YAML text: ``raw`` mirrors ``values`` (dicts
    and lists), holding the source text of each unquoted scalar, for string
    keys given a number (``--label=1.10`` means ``'1.10'``)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        values = loader.construct_document(node)  # flattens merge keys in `node`

        def raw(node):
            if isinstance(node, yaml.MappingNode):
                return {loader.construct_object(k, deep=True): raw(v) for k, v in node.value}
            if isinstance(node, yaml.SequenceNode):
                return [raw(v) for v in node.value]
            return node.value if node.style is None else None

        return values, raw(node)
    finally:
        loader.dispose()


_KINDS = ((bool, "a bool"), (int, "an int"), (float, "a float"), (str, "a string"),
          (list, "a list"), (dict, "a mapping"))


def _kind(value):
    """The checked type of a YAML value; None (unchecked) for null, tagged
    values and the rarer YAML types (dates, sets, ...)."""
    for kind, _ in _KINDS:  # bool before int: a bool is an int in Python
        if isinstance(value, kind):
            return kind
    return None


class _Mismatch(Exception):
    pass


def _number(value):
    """A numeric string as a number (int if it reads as one), else None."""
    for parse in (int, float):
        try:
            return parse(value)
        except ValueError:
            pass
    return None


def _convert(value, raw, kind):
    """``value`` as the YAML's ``kind`` takes it, or ``_Mismatch``."""
    if kind is int:
        if isinstance(value, str):
            value = _number(value)  # '1e5': a string to YAML 1.1
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 1e5, 1.0e+5: integral, so meant as an int
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, str):
            try:
                return float(value)  # '1e-3': a string to YAML 1.1
            except ValueError:
                raise _Mismatch from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    elif kind is str:
        if isinstance(value, str):
            return value
        if isinstance(raw, str):  # an unquoted number, bool or date: the text typed
            return raw
    elif isinstance(value, kind):  # bool, list, dict
        return value
    raise _Mismatch


def _check(value, raw, default, path, where, shown=None):
    """``value`` (an override of ``path``) converted to the YAML's type;
    a ``ValueError`` if it does not fit. ``shown``: the (path, text) of the
    YAML value the message quotes (a list item quotes its list)."""
    kind = _kind(default.value)
    if value is None or kind is None:
        return value
    try:
        value = _convert(value, raw, kind)
    except _Mismatch:
        shown_path, text = shown or (path, default.text)
        what = dict(_KINDS)[kind]
        raise ValueError(f"override {path}={value!r}{where}: expected {what} "
                         f"(the YAML has {shown_path}: {text})") from None
    if kind is dict:
        raw = raw if isinstance(raw, dict) else {}
        return {k: _check(v, raw.get(k), default.value[k], f"{path}.{k}", where)
                if k in default.value else v for k, v in value.items()}
    if kind is list:
        items = default.value
        if not items or any(item.value is UNKNOWN for item in items):
            return value  # `[]`, or `!new:` objects: nothing to compare with
        raw = raw if isinstance(raw, list) and len(raw) == len(value) else [None] * len(value)
        if len({_kind(item.value) for item in items}) == 1:
            templates = [items[0]] * len(value)  # every item of one type
        else:  # a record: item i as the YAML's item i; items past its end unchecked
            templates = items[:len(value)] + [_Default(None, "")] * (len(value) - len(items))
        return [_check(v, r, t, f"{path}[{i}]", where, (path, default.text))
                for i, (v, r, t) in enumerate(zip(value, raw, templates))]
    return value


def check_overrides(values, raw, defaults, where=""):
    """``values`` (top-level overrides, ``raw`` their source texts) checked
    against ``defaults`` (``yaml_defaults``), converted where the rules of
    the module docstring say; ``where``: `` in FILE`` for the message.
    Keys the YAML lacks pass unchecked (HyperPyYAML judges them)."""
    if defaults is None:
        return values
    raw = raw if isinstance(raw, dict) else {}
    return {k: _check(v, raw.get(k), defaults[k], str(k), where) if k in defaults else v
            for k, v in values.items()}


def _read_overrides(name, bases=()):
    """``(values, raw)`` of an overrides file (see ``_load_overrides``)."""
    path = resolve_path(name, bases) if name else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"--overrides_file: no such file {name!r}")
    try:
        values, raw = _load_overrides(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"malformed override in {name}: {err}") from err
    values = values or {}
    if not isinstance(values, dict):
        raise ValueError(f"overrides in {name} must be 'key: value' pairs, got {values!r}")
    return values, raw


def read_overrides_file(name, bases=()):
    """The ``key: value`` mapping of an overrides file."""
    return _read_overrides(name, bases)[0]


VARIANT_KEY = "variant_of"


def resolve_variant(hparams_file):
    """``(base hparams file, {key: value the variant changes})`` of a variant
    file (module docstring); ``(hparams_file, {})`` for any other file.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "nc_5s.yaml").write_text("split_length: 5\\nlr: 0.1\\n")
    >>> _ = (folder / "nc_1s.yaml").write_text("variant_of: nc_5s.yaml\\nsplit_length: 1\\n")
    >>> base, changes = resolve_variant(folder / "nc_1s.yaml")
    >>> pathlib.Path(base).name, changes
    ('nc_5s.yaml', {'split_length': 1})
    """
    path = Path(hparams_file)
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):  # a HyperPyYAML file (tags): not a variant
        return hparams_file, {}
    if not isinstance(values, dict) or VARIANT_KEY not in values:
        return hparams_file, {}
    base = path.parent / str(values.pop(VARIANT_KEY))
    if not base.is_file():
        raise FileNotFoundError(f"{path}: {VARIANT_KEY}: no such file {base}")
    if VARIANT_KEY in (yaml_defaults(base) or {}):
        raise ValueError(f"{path}: its base {base.name} is itself a variant (one level only)")
    return str(base), values


SPLIT_KEYS = ("train_splits", "valid_splits", "eval_splits", "test_splits")
SYNTHETIC_MARKER = ".synthetic.json"  # data_prep.synthetic's mark on every corpus it writes


def _plain(default):
    """The plain value of a ``_Default`` (None if tagged)."""
    value = default.value if isinstance(default, _Default) else default
    if value is UNKNOWN:
        return None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def check_corpus_splits(hparams_file, defaults, overrides, recipe_dir=None, files=()):
    """On an embedded (synthetic) corpus, the splits the YAML's ``*_splits``
    keys name must be folders of ``data_folder``; else a
    ``DataPreparationError`` that says which override to add (a paper-scale
    YAML names ``960``, which no embedded corpus has; ``files``: the override
    files given, so that the message does not suggest one already there).
    Real corpora are left to the preparation, which knows their shorthands
    and layouts.

    >>> import tempfile, pathlib
    >>> corpus = pathlib.Path(tempfile.mkdtemp())
    >>> (corpus / "train-clean-100").mkdir(); _ = (corpus / SYNTHETIC_MARKER).write_text("{}")
    >>> defaults = {"data_folder": _Default(None, ""), "train_splits": _Default(["960"], "")}
    >>> check_corpus_splits("nc_5s.yaml", defaults, {"data_folder": str(corpus)})
    Traceback (most recent call last):
    ...
    speechbrain_ext.io.data.DataPreparationError: nc_5s.yaml: the embedded corpus ... lacks train_splits ['960'] (it has ['train-clean-100']); for the micro scale add --overrides_file overrides/micro.yaml, or name splits it has: --train_splits=[train-clean-100]
    >>> check_corpus_splits("nc_5s.yaml", defaults, {"data_folder": str(corpus),
    ...                                              "train_splits": ["train-clean-100"]})
    """
    defaults = defaults or {}

    def value(key):
        return overrides[key] if key in overrides else _plain(defaults.get(key))

    folder = value("data_folder")
    if not isinstance(folder, str) or value("skip_prep") is True:
        return
    folder = resolve_path(folder, [recipe_dir] if recipe_dir else [])
    if not (folder / SYNTHETIC_MARKER).is_file():
        return
    has = sorted(p.name for p in folder.iterdir() if p.is_dir())
    missing = {}
    for key in SPLIT_KEYS:
        # Libri-light settings (train_corpus: librilight) name librilight_folder's subsets
        if key == "train_splits" and value("train_corpus") not in (None, "librispeech"):
            continue
        splits = value(key)
        splits = [splits] if isinstance(splits, str) else splits
        if isinstance(splits, list):
            lacking = [str(s) for s in splits if not (folder / str(s)).is_dir()]
            if lacking:
                missing[key] = lacking
    if missing:
        suggestion = [s for s in has if s.startswith("train")][:1] if "train_splits" in missing else []
        example = (f"--train_splits=[{suggestion[0]}]" if suggestion else
                   f"--{next(iter(missing))}=[{', '.join(s for s in has if s[:3] in ('dev', 'tes'))}]")
        micro = any(Path(str(f)).name == "micro.yaml" for f in files)
        advice = (f"name splits it has: {example}" if micro else
                  f"for the micro scale add --overrides_file overrides/micro.yaml, or name splits "
                  f"it has: {example}")
        raise DataPreparationError(
            f"{Path(hparams_file).name}: the embedded corpus {folder} lacks "
            + "; ".join(f"{k} {v}" for k, v in missing.items()) + f" (it has {has}); {advice}")


def parse_arguments(argv, recipe_dir, skip_unknown_file_keys=False, path_keys=()):
    """Returns ``(hparams_file, run_opts, overrides)`` (``overrides`` a dict).

    ``skip_unknown_file_keys``: keys of an overrides file that the hparams
    file lacks are dropped (one file shared by several recipes); a
    command-line key the YAML lacks stays an error (HyperPyYAML: a typo).
    ``path_keys``: override keys naming files or folders, resolved like the
    hparams file. Every override is type-checked against the hparams file
    (module docstring): a ``ValueError`` naming the key, before any
    training or data preparation starts.
    """
    if "-h" in argv or "--help" in argv:
        print(recipe_help(argv, recipe_dir))
        raise SystemExit(0)
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
    hparams_file, variant = resolve_variant(hparams_file)
    # progress bars only on a terminal: in a log file they are runs of
    # carriage returns (--noprogressbar=False forces them back)
    if "noprogressbar" not in run_opts.overridden_args and not sys.stderr.isatty():
        run_opts = dataclasses.replace(run_opts, noprogressbar=True,
                                       overridden_args={*run_opts.overridden_args, "noprogressbar"})
    defaults = yaml_defaults(hparams_file)
    overrides = check_overrides(variant, variant, defaults, f" in {rest[0]}") if variant else {}
    known = yaml_keys(hparams_file) if skip_unknown_file_keys and files else None
    for name in files:
        values, raw = _read_overrides(name, [recipe_dir])
        if known is not None:
            values = {k: v for k, v in values.items() if k in known}
        # each file checked on its own, so that the message names it
        overrides = merge_overrides(overrides, check_overrides(values, raw, defaults, f" in {name}"))
    try:
        cli_values, cli_raw = _load_overrides(cli) if cli else (None, None)
    except yaml.YAMLError as err:
        raise ValueError(f"malformed command-line override: {err}") from err
    cli_values = cli_values or {}
    if not isinstance(cli_values, dict):
        raise ValueError(f"malformed command-line override: expected --key=value, got {cli!r}")
    overrides = merge_overrides(overrides, check_overrides(cli_values, cli_raw, defaults))
    for key in path_keys:
        if isinstance(overrides.get(key), str):
            overrides[key] = str(resolve_path(overrides[key], [recipe_dir]))
    check_corpus_splits(hparams_file, defaults, overrides, recipe_dir, files)
    return hparams_file, run_opts, overrides
