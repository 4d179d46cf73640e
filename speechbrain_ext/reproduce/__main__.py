"""Reproduce a cell (or a row) of the four papers' tables with one command.

    python -m speechbrain_ext.reproduce paper003 table1 "5s" "KWS-12 frozen"
    python -m speechbrain_ext.reproduce paper003 table1 5s "KWS-12 frozen" --scale micro
    python -m speechbrain_ext.reproduce paper000 table1 W2V-2 dev-clean --checkpoint /models/wav2vec_small.pt
    python -m speechbrain_ext.reproduce --list [paper] [table]
    python -m speechbrain_ext.reproduce paper002 table6 8 dev-other --dry-run
    python -m speechbrain_ext.reproduce --report

Without a column, every column of the row runs (their steps shared). Each
cell prints our value beside the paper's with the difference and is
appended to ``results/reproduce/results.jsonl`` (``--results``); every
step whose output exists is reused (``speechbrain_ext.reproduce.chain``).
"""
import argparse
import sys
import time

from speechbrain_ext.reproduce import report as report_mod
from speechbrain_ext.reproduce.chain import ChainError, Options, missing_corpora, plan_cell, run_step
from speechbrain_ext.reproduce.checks import check_checkpoint
from speechbrain_ext.reproduce.metrics import MetricError, cell_value, value_note
from speechbrain_ext.reproduce.registry import RegistryError, find_cells, load_registry

MICRO_NOTE = ("micro scale: a few-million-parameter model on synthetic corpora; the number only shows "
              "that the chain runs, it is not comparable with the paper's")


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m speechbrain_ext.reproduce", description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="PAPER TABLE ROW [COLUMN] (e.g. paper003 table1 5s 'KWS-12 frozen')")
    p.add_argument("--list", action="store_true", help="the registered rows with what each needs")
    p.add_argument("--report", action="store_true", help="Markdown tables: paper vs ours, status, difference")
    p.add_argument("--dry-run", action="store_true", help="print the commands in order, run nothing")
    p.add_argument("--checkpoint", help="start from this checkpoint (ours, an HF folder, a fairseq .pt)")
    p.add_argument("--scale", choices=("paper", "micro"), default="paper")
    p.add_argument("--quick", action="store_true", help="micro only: the registry's smallest settings (tests)")
    p.add_argument("--corpora_root", help="folder holding the corpora (micro: $SB_EXT_DATA or data/mini)")
    p.add_argument("--output_root", default="results/reproduce/runs")
    p.add_argument("--results", default="results/reproduce/results.jsonl")
    p.add_argument("--lm_path", help="paper scale: the official LibriSpeech 4-gram ARPA for LM decoding")
    args = p.parse_args(argv)
    if args.quick and args.scale != "micro":
        p.error("--quick needs --scale micro")
    if not (args.list or args.report) and len(args.names) < 3:
        p.error("give PAPER TABLE ROW [COLUMN], or --list / --report")
    if len(args.names) > 4:
        p.error(f"at most PAPER TABLE ROW COLUMN, got {args.names}")
    return args


def list_rows(names, out=print):
    registry = load_registry()
    cells = find_cells(*names[:2], registry=registry) if names else \
        [c for t in registry.values() for cs in t.values() for c in cs]
    rows = {}
    for c in cells:
        rows.setdefault((c.paper, c.table, c.row), []).append(c)
    out("| paper | table | row | columns (with a paper value) | status | GPUs | GPU hours | corpora |")
    out("|---|---|---|---|---|---|---|---|")
    for (paper, table, row), cs in rows.items():
        statuses = sorted({c.status for c in cs})
        needs = cs[0].needs
        hours = needs.get("gpu_hours")
        hours = f"{hours}" if hours is not None else (needs.get("hours_note") or "not stated")
        corpora = sorted({k for c in cs for k in c.needs.get("corpora", [])})
        out(f"| {paper} | {table} | {row} | {len(cs)} ({sum(c.printed is not None for c in cs)}) | "
            f"{'; '.join(statuses)} | {needs.get('gpus')} | {hours} | {', '.join(corpora) or '-'} |")
    return rows


def reproduce(args, out=print):
    cells = find_cells(*args.names)
    options = Options(scale=args.scale, output_root=args.output_root, corpora_root=args.corpora_root,
                      checkpoint=args.checkpoint, quick=args.quick, lm_path=args.lm_path)
    runnable = [c for c in cells if c.runnable]
    for c in cells:
        if not c.runnable:
            printed = c.printed if c.printed is not None else "not in the text"
            out(f"[reproduce] {c.paper} {c.table} {c.row!r} {c.column!r}: {c.status} (paper: {printed}); "
                f"{c.note}".rstrip("; "))
    if not runnable:
        return []
    # every check before anything runs: checkpoint architecture, chains, corpora
    if args.checkpoint:
        for c in runnable:
            check_checkpoint(args.checkpoint, c, args.scale)
    plans = [(c, plan_cell(c, options)) for c in runnable]
    steps = {}
    for _, plan in plans:
        for s in plan:
            if s.argv is not None:
                steps.setdefault(s.command(), s)
    missing = missing_corpora(list(steps.values()), options)
    if missing and args.dry_run:
        for k, folder, cmd in missing:
            out(f"# warning: missing corpus {k} (expected {folder}); make it with: {cmd}")
    elif missing:
        raise ChainError("missing corpus: " + "; ".join(f"{k} (expected {folder}); make it with: {cmd}"
                                                      for k, folder, cmd in missing))
    if args.dry_run:
        if args.scale == "paper" and not args.lm_path and any(s.kind == "finetune" for s in steps.values()):
            out("# note: without --lm_path the fine-tuning recipe decodes with an n-gram LM of the training "
                "transcripts; the papers use the official LibriSpeech 4-gram (--lm_path 4-gram.arpa)")
        for s in steps.values():
            out(("# done, reused: " if s.done else "") + s.command())
        for c, plan in plans:
            out(f"# {c.paper} {c.table} {c.row!r} {c.column!r}: {plan[-1].command()}")
        return []
    for s in steps.values():
        if s.done:
            out(f"[reproduce] reusing {s.kind} output {s.output}")
        else:
            run_step(s, log=out)
    records = []
    for c, plan in plans:
        try:
            ours = cell_value(plan, options)
        except MetricError as err:  # e.g. dev-other at micro scale: the other cells still report
            printed = c.printed if c.printed is not None else "not in the text"
            out(f"{c.paper} {c.table} | {c.row} | {c.column} | paper {printed} | no value: {err}")
            continue
        # a value computed from the code (parameter counts, LR heuristics) is
        # the paper-scale one whatever --scale says; a timing cell is measured at --scale
        scale = "paper" if [s.kind for s in plan] == ["metric"] and plan[-1].spec["source"] != "timing" \
            else args.scale
        record = report_mod.append(args.results, c, ours, scale, plan, args.checkpoint)
        diff, note = record["difference"], value_note(plan)
        out(f"{c.paper} {c.table} | {c.row} | {c.column} | paper {c.printed if c.printed is not None else 'not in the text'}"
            f" | ours {ours:g} ({scale} scale{'; ' + note if note else ''})"
            + (f" | difference {diff:+.4g}" if diff is not None else ""))
        records.append(record)
    if args.scale == "micro":
        out(f"[reproduce] {MICRO_NOTE}")
    return records


def main(argv=None, out=print):
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        if args.list:
            list_rows(args.names, out)
        elif args.report:
            out(report_mod.report(args.results))
        else:
            start = time.time()
            records = reproduce(args, out)
            if records:
                out(f"[reproduce] {len(records)} cell(s) in {time.time() - start:.0f} s, appended to {args.results}")
            return records
    except (RegistryError, ChainError) as err:
        out(f"error: {err}")
        raise SystemExit(2)


if __name__ == "__main__":
    main()
