"""benchmarks/contrastive_collapse.py runs and prints its columns (2 updates)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_collapse_benchmark_prints_loss_and_cosines(mini_corpus):
    data = mini_corpus[0] / "LibriSpeech"
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "contrastive_collapse.py"),
                          "--data_folder", str(data), "--updates", "2", "--every", "1", "--batches", "1"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [int(r[0]) for r in rows] == [0, 1, 2]
    for row in rows:
        values = [float(v.strip("()")) for v in row[1:]]
        loss, accuracy, held_loss, held_accuracy, ppl, ctx, tgt, spread, lag1, lag2, agree, chance = values
        assert 3.0 < held_loss < 6.0 and 0 <= held_accuracy <= 1
        assert -1 <= ctx <= 1 and -1 <= tgt <= 1 and spread >= 0
        assert -1 <= lag2 <= 1 and -1 <= lag1 <= 1 and 0 < chance <= 1 and 0 <= agree <= 1
    assert "ln(101) = 4.615" in out.stdout


def test_collapse_benchmark_refuses_a_non_contrastive_yaml(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "contrastive_collapse.py"),
                          "--data_folder", str(tmp_path), "--hparams", "hparams/nc_5s.yaml"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode != 0 and "not a contrastive" in out.stderr
