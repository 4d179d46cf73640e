"""The results file (one JSON record per reproduced cell) and the report.

Example
-------
>>> import tempfile
>>> from speechbrain_ext.reproduce.registry import find_cells
>>> path = tempfile.mkdtemp() + "/results.jsonl"
>>> cell = find_cells("paper002", "table1", "SEW-D-tiny", "params")[0]
>>> append(path, cell, 24.1, "paper", [], None)["difference"]
0.0
>>> lines = report(path).splitlines()
>>> print("\\n".join(l for l in lines if l.startswith("| SEW-D-tiny | params") or l.startswith("| SEW-D-tiny | PT")))
| SEW-D-tiny | params | 24.1 | 24.1 | paper scale | +0 |
| SEW-D-tiny | PT (h) | 23.8 | - | not run | - |
"""
import json
import time
from pathlib import Path

from speechbrain_ext.reproduce.registry import load_paper, load_registry, paper_files


def append(path, cell, ours, scale, plan, checkpoint):
    """Append a record of ``cell``'s value ``ours`` at ``scale``; returns it."""
    paper_value = cell.value
    out_of_memory = ours != ours  # a timing cell's OOM is a NaN (reproduce.timing.OutOfMemory)
    record = {"paper": cell.paper, "table": cell.table, "row": cell.row, "column": cell.column,
              "paper_printed": cell.printed, "paper_value": paper_value,
              "ours": "OOM" if out_of_memory else ours, "scale": scale,
              "difference": None if paper_value is None or out_of_memory else round(ours - paper_value, 6),
              "checkpoint": checkpoint, "steps": [s.command() for s in plan],
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def read(path):
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def report(path, registry=None):
    """One Markdown table per paper table: every cell with the paper's value,
    ours (the newest paper-scale record, else the newest micro one), the
    status (not run / micro only / paper scale, or why it cannot run) and
    the difference."""
    registry = registry or load_registry()
    latest = {}
    for r in read(path):
        key = (r["paper"], r["table"], r["row"], r["column"])
        old = latest.get(key)
        if old is None or r["scale"] == "paper" or old["scale"] != "paper":
            latest[key] = r
    captions = {p.stem: {t: spec.get("caption", "") for t, spec in load_paper(str(p))["tables"].items()}
                for p in paper_files()}
    lines = []
    for paper, tables in registry.items():
        for table, cells in tables.items():
            runs = [latest.get(c.key) for c in cells]
            counts = (f"{len(cells)} cells: {sum(r is not None and r['scale'] == 'paper' for r in runs)} at paper "
                      f"scale, {sum(r is not None and r['scale'] == 'micro' for r in runs)} micro only, "
                      f"{sum(r is None and c.runnable for r, c in zip(runs, cells))} not run, "
                      f"{sum(not c.runnable for c in cells)} without a chain yet")
            lines += [f"### {paper} {table}", "", f"{captions.get(paper, {}).get(table, '')} ({counts})", "",
                      "| row | column | paper | ours | status | difference |", "|---|---|---|---|---|---|"]
            for c in cells:
                r = latest.get(c.key)
                if r is None:
                    status, ours, diff = ("not run" if c.runnable else c.status), "-", "-"
                else:
                    status = "paper scale" if r["scale"] == "paper" else "micro only"
                    ours = r["ours"] if isinstance(r["ours"], str) else f"{r['ours']:g}"
                    diff = "-" if r["difference"] is None else f"{r['difference']:+.4g}"
                printed = "not in the text" if c.printed is None else c.printed
                lines.append(f"| {c.row} | {c.column} | {printed} | {ours} | {status} | {diff} |")
            lines.append("")
    return "\n".join(lines)
