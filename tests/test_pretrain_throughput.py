"""The faster contrastive step (issue 19) and the throughput benchmark around
it: masks and negatives drawn ahead of the step give the step they would have
given inside it, the compile option keeps the checkpoint names, and
benchmarks/pretrain_throughput.py runs its peers (SpeechBrain's lobes, HF)
and its old-vs-new comparison. No timing is asserted: speed is measured by
the benchmark, side by side, not by tests."""
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
import torch

from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
from speechbrain_ext.pretraining.wav2vec2 import Wav2Vec2ContrastiveModel

REPO = Path(__file__).resolve().parents[1]


def micro_model(**kwargs):
    torch.manual_seed(0)
    return Wav2Vec2ContrastiveModel(Wav2Vec2Config.micro(), num_negatives=7, codevector_dim=32,
                                    final_dim=16, num_vars=8, **kwargs)


def load_benchmark():
    spec = importlib.util.spec_from_file_location("pretrain_throughput",
                                                  REPO / "benchmarks" / "pretrain_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_predrawn_masks_give_the_same_step_as_drawn_inside(monkeypatch):
    import speechbrain_ext.pretraining.wav2vec2 as w2v

    model = micro_model().eval()  # eval: no dropout / Gumbel draws, so only the masks are random
    wav = torch.randn(3, 8000)
    lens = torch.tensor([1.0, 0.8, 0.55])
    drawn = {}
    original = w2v.sample_negatives

    def keep(*args, **kwargs):
        drawn["negatives"] = original(*args, **kwargs)
        return drawn["negatives"]

    monkeypatch.setattr(w2v, "sample_negatives", keep)
    torch.manual_seed(5)
    inside = model(wav, lens)
    inside["loss"].backward()
    grads_inside = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    given = model(wav, lens, time_mask=inside["time_mask"], negative_index=drawn["negatives"])
    given["loss"].backward()
    assert torch.equal(given["loss"], inside["loss"])
    assert torch.equal(given["accuracy"], inside["accuracy"])
    for name, grad in grads_inside.items():
        assert torch.equal(dict(model.named_parameters())[name].grad, grad), name


def test_draw_masks_follow_each_utterances_length():
    model = micro_model()
    samples = torch.tensor([16000, 9000, 4000])
    time_mask, negatives = model.draw_masks(samples, torch.Generator().manual_seed(0))
    frames = model.backbone.frame_lengths(samples)
    assert time_mask.shape == (3, int(frames[0]))
    for b in range(3):
        assert not time_mask[b, int(frames[b]):].any()
        assert int(time_mask[b].sum()) >= model.mask_length
    assert negatives.shape == (int(time_mask.sum()), 7)
    out = model(torch.randn(3, 16000), samples / 16000, time_mask=time_mask,
                negative_index=negatives)
    assert torch.isfinite(out["loss"])


def test_predrawn_masks_are_checked():
    model = micro_model()
    wav = torch.randn(2, 8000)
    time_mask, negatives = model.draw_masks(torch.tensor([8000, 8000]))
    with pytest.raises(ValueError, match="both"):
        model(wav, time_mask=time_mask)
    with pytest.raises(ValueError, match="does not fit"):
        model(wav, time_mask=time_mask, negative_index=negatives[1:])


def test_compile_option_keeps_the_checkpoint_names():
    plain = micro_model()
    compiled = micro_model(compile_backbone=True)  # compiles lazily: nothing is compiled here
    assert list(compiled.state_dict()) == list(plain.state_dict())
    assert compiled.backbone.encoder._compiled_call_impl is not None
    assert plain.backbone.encoder._compiled_call_impl is None


def test_help_describes_every_variant_and_option(capsys):
    bench = load_benchmark()
    with pytest.raises(SystemExit) as stop:
        bench.main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for word in ("--quick", "--compare", "--compile", "--device", "--json", "OMP_NUM_THREADS",
                 "(e) sb", "(d) hf", "(b') contrast_pre", "where the lobes"):
        assert word in text, word


def git_has_head():
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "HEAD"],
                            capture_output=True)
    return result.returncode == 0


@pytest.mark.skipif(not git_has_head(), reason="needs the git history (--compare REV)")
def test_quick_run_with_both_peers_and_the_old_code_path(tmp_path, capsys, monkeypatch):
    pytest.importorskip("transformers")
    pytest.importorskip("speechbrain")
    bench = load_benchmark()
    threads = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    out = tmp_path / "run.json"
    try:
        bench.main(["--quick", "--batch", "2", "--seconds", "2", "--repeats", "1",
                    "--precision", "fp32", "--models", "backbone", "contrast", "contrast_pre",
                    "sb", "hf", "--compare", "HEAD", "--syncs", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    text = capsys.readouterr().out
    assert "torch threads 3" in text  # OMP_NUM_THREADS is honoured
    assert "left about" in text  # progress lines with an estimate
    record = json.loads(out.read_text())
    models = {row["model"] for row in record["steps"]}
    assert models == {"backbone", "contrast", "contrast_pre", "contrast_old", "sb", "hf"}
    assert all(row["ms_per_step"] > 0 for row in record["steps"])
    syncs = {row["model"]: sum(row["syncs"].values()) for row in record["steps"]}
    # masks and negatives drawn before the step take their host synchronisations with them
    assert syncs["contrast_pre"] < syncs["contrast"]
    # HEAD's step and this one: the same loss and gradients from the same random state
    assert record["same_step_check"]["fp32"] == {"loss": 0.0, "grad": 0.0}
    names = [row["ratio"] for row in record["ratios"]]
    assert any("SpeechBrain lobes" in n for n in names) and any("HF" in n for n in names)


def test_speechbrain_peer_trains_every_lobe():
    pytest.importorskip("speechbrain")
    bench = load_benchmark()
    cfg = bench.backbone_config("micro", 0.0)
    torch.manual_seed(0)
    model = bench.SpeechBrainWav2Vec2(cfg, final_dim=64, num_negatives=10)
    # 2 s: w2v_mask_collate_fn can ask for more masked frames than a 1 s clip has
    wav = 0.1 * torch.randn(2, 32000)
    mask = model.draw_mask(wav)
    assert mask.shape == (2, int(bench.cfg_frames(cfg, 32000)))
    assert len(set(mask.sum(dim=1).tolist())) == 1  # SpeechBrain masks as many frames per row
    loss = model(wav, mask)
    loss.backward()
    assert torch.isfinite(loss)
    for part in (model.latent_extractor, model.latent_encoder, model.target_quantiser,
                 model.feat_proj):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
