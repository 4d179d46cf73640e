"""The registry of paper table cells (``registry/paper00N.yaml``) as cells.

A registry file holds one paper: its ``tables``, each with ``columns``
(label, printed header, params), ``rows`` (label, params, ``values``: the
paper's cells as printed, one per column, ``null`` where the text copy does
not give it) and the chain template that produces a cell. A chain is a list
of steps (``pretrain``, ``released``, ``finetune``, ``downstream``,
``metric``); strings are formatted with the row's and column's params
(``"w2v2_{length}s.yaml"``), ``{step: method}`` / ``{step: what}`` steps are
replaced by the table's ``method_chains`` / ``what_chains`` entry, and a
row's own ``chain`` replaces the table's. ``calc(2*3/4)`` in an argument is
evaluated (plain arithmetic only).

Example
-------
>>> cells = find_cells("paper003", "table1", "5s", "KWS-12 frozen")
>>> len(cells), cells[0].printed, cells[0].value
(1, '95.97', 95.97)
>>> [s["step"] for s in cells[0].chain]
['pretrain', 'downstream', 'metric']
>>> cells[0].chain[0]["hparams"]
'w2v2_5s.yaml'
>>> find_cells("paper003", "table1", "6s")
Traceback (most recent call last):
...
speechbrain_ext.reproduce.registry.RegistryError: paper003 table1 has no row '6s'; nearest: 5s, 1s, 15s
"""
import ast
import difflib
import operator
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

REGISTRY_DIR = Path(__file__).resolve().parent / "registry"
RUN_STEPS = ("pretrain", "released", "finetune", "downstream")


class RegistryError(ValueError):
    """A paper, table, row or column that is not registered (names the nearest)."""


@dataclass
class Cell:
    """One registered cell: a (row, column) of a paper's table.

    ``printed`` is the paper's text (None: not in the text copy), ``value``
    its leading number (None if it has none, e.g. ``OOM``); ``chain`` the
    expanded steps; ``status`` ``runnable``, ``needs issue 18/19`` or
    ``no chain: ...``.
    """
    paper: str
    table: str
    row: str
    column: str
    printed: object
    chain: list
    status: str
    needs: dict
    architecture: object = None
    note: str = ""
    params: dict = field(default_factory=dict)
    aliases: list = field(default_factory=list)  # other names of the row (paper 002 Table 6: model names)

    @property
    def value(self):
        return parse_number(self.printed)

    @property
    def key(self):
        return (self.paper, self.table, self.row, self.column)

    @property
    def runnable(self):
        return self.status == "runnable" and bool(self.chain)


def parse_number(printed):
    """The leading number of a printed cell, or None.

    >>> parse_number("7.5 ± 0.04"), parse_number("102.4(73.5)"), parse_number("OOM"), parse_number("6.04e-5")
    (7.5, 102.4, None, 6.04e-05)
    >>> parse_number("133 k")  # paper 001's hours
    133000.0
    >>> round(parse_number("1d 13h"), 4)  # paper 001's runtimes, in days
    1.5417
    """
    if printed is None:
        return None
    days = re.match(r"^\s*(\d+)d\s*(\d+)h\s*$", str(printed))
    if days:
        return int(days.group(1)) + int(days.group(2)) / 24
    m = re.match(r"^\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)(\s*k\b)?", str(printed))
    if not m:
        return None
    return float(m.group(1)) * (1000 if m.group(2) else 1)


def normalise(name):
    """Name as matched: lower case, without spaces, brackets or dashes.

    >>> normalise("KWS (12) Frozen") == normalise("kws-12 frozen")
    True
    """
    return re.sub(r"[\s()\-_/,]+", "", str(name).lower())


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _arith(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_arith(node.left), _arith(node.right))
    raise ValueError(f"calc(): only numbers and + - * / are allowed, got {ast.dump(node)}")


def _calc(text):
    """``calc(EXPR)`` replaced by its value.

    >>> _calc("--batch_seconds=calc(24*5/3)")
    '--batch_seconds=40.0'
    """
    return re.sub(r"calc\(([^)]*)\)", lambda m: repr(float(_arith(ast.parse(m.group(1), mode="eval").body))), text)


def _fmt_value(value):
    return "null" if value is None else ("True" if value is True else "False" if value is False else str(value))


class _Params(dict):
    """Format mapping: a param the row and column do not set reads null."""

    def __missing__(self, key):
        return "null"


def _format(obj, params):
    """``obj`` with every string formatted with ``params`` (None as null)."""
    if isinstance(obj, str):
        text = obj.format_map(_Params({k: _fmt_value(v) for k, v in params.items()})) if "{" in obj else obj
        text = _calc(text) if "calc(" in text else text
        # a whole-string placeholder keeps the param's type (freeze: True)
        if re.fullmatch(r"\{(\w+)\}", obj):
            return params.get(obj[1:-1])
        return text
    if isinstance(obj, list):
        return [_format(x, params) for x in obj]
    if isinstance(obj, dict):
        return {k: _format(v, params) for k, v in obj.items()}
    return obj


def _expand(chain, table, params):
    """The chain template with method / what steps replaced, formatted."""
    steps = []
    for step in chain:
        if step.get("step") in ("method", "what"):
            kind = step["step"]
            key = _format(step[kind], params)
            entries = table.get(f"{kind}_chains", {})
            if key not in entries:
                raise RegistryError(f"{kind} {key!r} has no chain in {kind}_chains")
            steps += _expand(entries[key], table, params)
        else:
            step = _format(step, params)
            if "overrides_files" in step:  # an empty placeholder ("{ft_extra}") adds no file
                step["overrides_files"] = [f for f in step["overrides_files"] if f]
            steps.append(step)
    return steps


@lru_cache(maxsize=None)
def load_paper(path):
    with open(path) as f:
        return yaml.safe_load(f)


def paper_files(folder=REGISTRY_DIR):
    return sorted(Path(folder).glob("paper*.yaml"))


def load_registry(folder=REGISTRY_DIR):
    """``{paper name: {table name: [Cell, ...]}}`` of every registry file
    (paper name ``paper003``), cells in row-major order."""
    registry = {}
    for path in paper_files(folder):
        data = load_paper(str(path))
        name = path.stem
        registry[name] = {t: table_cells(data, name, t, spec) for t, spec in data["tables"].items()}
    return registry


def table_cells(data, paper, table_name, table):
    cells = []
    columns = table["columns"]
    for row in table["rows"]:
        values = row.get("values", [])
        if len(values) != len(columns):
            raise RegistryError(f"{paper} {table_name} row {row['label']!r}: {len(values)} values "
                                f"for {len(columns)} columns")
        for column, printed in zip(columns, values):
            params = {**table.get("params", {}), **row.get("params", {}), **column.get("params", {})}
            for key, mapping in table.get("column_params", {}).items():
                for value in list(params.values()):
                    if isinstance(value, str) and value in mapping:
                        params[key] = mapping[value]
            template = row["chain"] if "chain" in row else table.get("chain", [])
            chain = _expand(template, table, params)
            status = (row.get("cell_status", {}).get(column["label"])
                      or table.get("cell_status", {}).get(column["label"]) or row.get("status"))
            if status is None and any(s["step"] in RUN_STEPS for s in chain):
                status = table.get("row_status", {}).get(row["label"])
            status = status or table.get("status", "runnable")
            if not chain and status == "runnable":
                status = "no chain"
            needs = _format(dict(table.get("needs", {})), params)
            needs["corpora"] = sorted({c for c in needs.get("corpora", []) if c and "{" not in c})
            architecture = _format(table.get("architecture"), params)
            note = " ".join(x for x in (table.get("note", ""), row.get("note", ""),
                                        table.get("status_note", "") if status != "runnable" else "") if x)
            cells.append(Cell(paper, table_name, str(row["label"]), str(column["label"]), printed, chain,
                              status, needs, architecture, note, params,
                              [str(a) for a in row.get("aliases", [])]))
    return cells


def _pick(kind, wanted, names, where):
    """The name of ``names`` that ``wanted`` denotes (exact, then normalised)."""
    if wanted in names:
        return wanted
    by_norm = {}
    for n, aliases in names.items():
        for a in (n, *aliases):
            by_norm.setdefault(normalise(a), n)
    if normalise(wanted) in by_norm:
        return by_norm[normalise(wanted)]
    nearest = difflib.get_close_matches(wanted, list(names), n=3, cutoff=0.3) or \
        [by_norm[m] for m in difflib.get_close_matches(normalise(wanted), list(by_norm), n=3, cutoff=0.3)]
    nearest = list(dict.fromkeys(nearest))
    hint = f"nearest: {', '.join(nearest)}" if nearest else f"one of: {', '.join(names)}"
    raise RegistryError(f"{where} has no {kind} {wanted!r}; {hint}")


def paper_name(wanted, registry):
    """``paper003`` from ``paper003``, ``003``, ``3`` or ``p3``."""
    digits = re.sub(r"\D", "", str(wanted))
    if digits and f"paper{int(digits):03d}" in registry:
        return f"paper{int(digits):03d}"
    return _pick("paper", str(wanted), {p: [] for p in registry}, "the registry")


def table_name(wanted, tables, paper):
    """``table1`` from ``table1``, ``Table 1``, ``1`` or ``t1``."""
    digits = re.sub(r"\D", "", str(wanted))
    if digits and f"table{int(digits)}" in tables and normalise(wanted).rstrip("0123456789") in ("", "t", "table", "tab"):
        return f"table{int(digits)}"
    return _pick("table", str(wanted), {t: [] for t in tables}, paper)


def find_cells(paper, table=None, row=None, column=None, registry=None):
    """The cells of a paper (table, row, column: each optional, matched by
    :func:`normalise`d name); a name that matches nothing is a
    ``RegistryError`` naming the nearest ones."""
    registry = registry or load_registry()
    paper = paper_name(paper, registry)
    tables = registry[paper]
    if table is None:
        return [c for cells in tables.values() for c in cells]
    table = table_name(table, tables, paper)
    cells = tables[table]
    if row is not None:
        rows = {}
        for c in cells:
            rows.setdefault(c.row, c.aliases)
        row = _pick("row", str(row), rows, f"{paper} {table}")
        cells = [c for c in cells if c.row == row]
    if column is not None:
        columns = {c.column: [] for c in cells}
        column = _pick("column", str(column), columns, f"{paper} {table}" + (f" row {row!r}" if row else ""))
        cells = [c for c in cells if c.column == column]
    return cells
