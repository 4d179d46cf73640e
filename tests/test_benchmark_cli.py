"""The benchmarks' command lines say what they do (issue 20): a complete
``--help`` with a ``--quick`` mode, and the paper-size defaults named."""
import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ["benchmarks/downstream_frozen_vs_unfrozen.py", "benchmarks/finetune_lm.py",
           "results/inference_time.py"]


def load(path):
    spec = importlib.util.spec_from_file_location(f"bench_{Path(path).stem}", REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", SCRIPTS)
def test_help_is_complete(path, capsys):
    with pytest.raises(SystemExit) as done:
        load(path).main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "--quick" in text
    description = text.split("\n\n")[1]  # after the usage lines
    # the first paragraph of the docstring, not its first line cut mid-sentence
    assert re.search(r"[.):]\s*$", description.strip()), description
    if "finetune_lm" not in path:
        assert "paper-size" in text  # the defaults' cost is said


def test_finetune_lm_names_a_missing_checkpoint(capsys, tmp_path):
    with pytest.raises(SystemExit):
        load("benchmarks/finetune_lm.py").main([str(tmp_path / "nowhere")])
    assert "make demo" in capsys.readouterr().err


def test_inference_time_quick_times_the_micro_models(capsys):
    load("results/inference_time.py").main(["--quick", "--data_folder", "/nonexistent"])
    captured = capsys.readouterr()
    rows = [line.split()[0] for line in captured.out.splitlines() if line.endswith(tuple("0123456789"))
            and not line.startswith("#")]
    assert rows == ["w2v2_micro", "sew_micro", "sewd_micro"], captured.out
    assert "[inference_time] repeat 1/1" in captured.err
