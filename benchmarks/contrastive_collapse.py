#!/usr/bin/env python3
"""Where the contrastive objective stands at small scale, update by update:
its loss and accuracy, and whether the masked frames' contexts and their
quantized targets have collapsed onto one direction.

    python benchmarks/contrastive_collapse.py --data_folder data/mini/LibriSpeech
    python benchmarks/contrastive_collapse.py --data_folder data/mini/LibriSpeech --batches 1   # one batch, repeated
    python benchmarks/contrastive_collapse.py --data_folder D --accumulation 8 --lr=0.001 "--backbone_config={dim: 256}"

The model is the pre-training recipe's (``hparams/w2v2_5s.yaml`` with
``--overrides_file`` files, default ``overrides/micro.yaml``, and any
``--key=value`` override, as the recipe takes them). It trains with AdamW
(the YAML's betas / eps / weight decay, constant ``--lr``, no warm-up) on a
fixed pool of ``--batches`` batches of ``--batch_size`` (8) crops of ``--crop_seconds`` (5 s) of
train-clean-100, cycled, and every ``--every`` updates prints: the training
and held-out (8 other batches, eval mode) contrastive loss and accuracy
against ln(K + 1) and 1 / (K + 1), the codebook perplexity, and on one
held-out batch the mean pairwise cosine of the contexts (after
``project_hid``) and of the targets (after ``project_q``) of the masked
frames, and the std of each frame's logits across its candidates (0 when
the loss can only be ln(K + 1)). ``--batches 1`` shows the model can fit a
repeated batch, i.e. the objective and gradients work.
"""
import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch
import torch.nn.functional as F
from hyperpyyaml import load_hyperpyyaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from speechbrain_ext.analysis.locality import code_agreement, lagged_cosine  # noqa: E402
from speechbrain_ext.training.recipe_cli import parse_arguments  # noqa: E402

RECIPE_DIR = Path(__file__).resolve().parents[1] / "recipes" / "pretrain"


def pieces(folder, count, seed, seconds=5.0):
    """``count`` crops of ``seconds`` ``[samples]`` of train-clean-100, files in a seeded order."""
    piece = int(seconds * 16000)
    files = sorted((Path(folder) / "train-clean-100").rglob("*.flac"))
    if not files:
        sys.exit(f"error: no .flac under {Path(folder) / 'train-clean-100'}")
    random.Random(seed).shuffle(files)
    out = []
    for path in files:
        wav = torch.tensor(sf.read(path, dtype="float32")[0])
        out += [wav[s:s + piece] for s in range(0, len(wav) - piece + 1, piece)]
        if len(out) >= count:
            return out[:count]
    sys.exit(f"error: {folder} holds only {len(out)} {seconds:g} s crops; {count} needed (use fewer --batches)")


@torch.no_grad()
def collapse(model, wav):
    """Mean pairwise cosine of contexts and targets of the masked frames,
    and the mean std of a frame's logits across its candidates."""
    out = model.wav2vec2(wav, None, span_mask=(model.mask_prob, model.mask_length, model.min_masks))
    mask = out.time_mask
    context = F.normalize(model.project_hid(out.last_hidden_state[mask]), dim=-1)
    codes, _ = model.quantizer(out.features[mask])
    target = F.normalize(model.project_q(codes), dim=-1)
    logits = context @ target.T / model.logit_temperature
    return ((context @ context.T).mean().item(), (target @ target.T).mean().item(),
            logits.std(1).mean().item())


@torch.no_grad()
def locality(model, wav):
    """Whether the targets are predictable from neighbouring frames: the
    centred cosine of the quantizer's input frames at lags 1 and 2, and how
    often the argmax codes of adjacent frames agree beside the agreement of
    random frame pairs of the same utterance (speechbrain_ext.analysis.locality)."""
    features = model.wav2vec2(wav, None).features  # [B, T, C], the quantizer's input
    codes = model.quantizer.group_logits(features).argmax(-1)  # [B, T, G]
    cosine = lagged_cosine(features, [1, 2])
    agreement, chance = code_agreement(codes, [1])
    return cosine[1], cosine[2], agreement[1], chance


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_folder", required=True, help="a LibriSpeech folder (train-clean-100/)")
    parser.add_argument("--hparams", default="hparams/w2v2_5s.yaml")
    parser.add_argument("--overrides_file", action="append", default=None,
                        help="recipe override files (default: overrides/micro.yaml)")
    parser.add_argument("--updates", type=int, default=150)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batches", type=int, default=32, help="training batches in the pool")
    parser.add_argument("--crop_seconds", type=float, default=5.0,
                        help="utterance length (the length split: 1, 5, 10, 15 s)")
    parser.add_argument("--batch_size", type=int, default=8, help="crops per batch")
    parser.add_argument("--accumulation", type=int, default=1, help="batches per update")
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--diversity_weight", type=float, default=None,
                        help="ablation: the codebook diversity term's weight (the YAML's, 0.1, by default)")
    parser.add_argument("--feature_penalty_weight", type=float, default=None,
                        help="ablation: the CNN feature penalty's weight (the YAML's, fairseq's 10, by default)")
    parser.add_argument("--freeze_targets", type=int, default=0, metavar="UPDATES",
                        help="diagnostic, not the papers' training: keep the target side (CNN, its "
                             "LayerNorm, quantizer, project_q) at its initial weights for the first "
                             "UPDATES updates (-1: throughout), so that only the context network learns")
    parser.add_argument("--frozen_parts", default="cnn,layer_norm,quantizer,project_q",
                        help="which parts of the target side --freeze_targets freezes (comma-separated "
                             "of cnn, layer_norm, quantizer, project_q)")
    args, rest = parser.parse_known_args(argv)
    files = args.overrides_file or ["overrides/micro.yaml"]
    recipe_argv = [args.hparams, *sum((["--overrides_file", f] for f in files), []), *rest,
                   "--data_folder=unused", f"--seed={args.seed}",
                   f"--output_folder={tempfile.mkdtemp(prefix='collapse_')}"]  # the YAML's loggers write there
    hparams_file, _, overrides = parse_arguments(recipe_argv, RECIPE_DIR, skip_unknown_file_keys=True)
    with open(hparams_file) as f:
        hparams = load_hyperpyyaml(f, overrides)
    model = hparams["model"]
    if not hasattr(model, "quantizer"):
        sys.exit(f"error: {hparams_file} is not a contrastive (wav2vec2) objective")
    if args.diversity_weight is not None:
        model.loss_fn.diversity_weight = args.diversity_weight
    if args.feature_penalty_weight is not None:
        model.loss_fn.feature_penalty_weight = args.feature_penalty_weight
    parts = {"cnn": model.wav2vec2.feature_extractor,
             "layer_norm": model.wav2vec2.feature_projection.layer_norm,
             "quantizer": model.quantizer, "project_q": model.project_q}
    frozen = args.frozen_parts.split(",")
    unknown = set(frozen) - set(parts)
    if unknown:
        sys.exit(f"error: --frozen_parts {args.frozen_parts!r}: unknown {sorted(unknown)}; expected {sorted(parts)}")
    target_side = [parts[name] for name in frozen]
    for part in target_side:  # AdamW skips parameters without a gradient
        part.requires_grad_(not args.freeze_targets)
    opt = hparams["opt_class"](model.parameters())
    for group in opt.param_groups:
        group["lr"] = args.lr
    size = args.batch_size
    crops = pieces(args.data_folder, (args.batches + 8) * size, args.seed, args.crop_seconds)
    batches = [torch.stack(crops[i * size:(i + 1) * size]) for i in range(args.batches + 8)]
    train, held = batches[:args.batches], batches[args.batches:]
    k = model.num_negatives
    print(f"[collapse] {Path(hparams_file).name} + {', '.join(files)} {' '.join(rest)}: lr {args.lr}, "
          f"{args.batches} batches of {size} x {args.crop_seconds:g} s, {args.accumulation} per update; "
          f"diversity weight {model.loss_fn.diversity_weight}, feature penalty weight "
          f"{model.loss_fn.feature_penalty_weight}; "
          f"{'targets FROZEN at init (diagnostic) ' + ('throughout' if args.freeze_targets < 0 else f'for {args.freeze_targets} updates') + '; ' if args.freeze_targets else ''}"
          f"chance: loss ln({k + 1}) = {math.log(k + 1):.3f}, accuracy {1 / (k + 1):.3f}", flush=True)
    print("update  train loss  acc    held loss  acc    code ppl  ctx cos  tgt cos  logit std"
          "  feat lag1  lag2  code agree lag1 (random pairs)", flush=True)
    start = time.time()
    for update in range(args.updates + 1):
        if update % args.every == 0 or update == args.updates:
            model.eval()
            with torch.no_grad():
                held_out = [model(b) for b in held]
            ctx, tgt, spread = collapse(model, held[0])
            lag1, lag2, agree, chance = locality(model, held[0])
            model.train()
            h_loss = sum(float(o["contrastive"]) for o in held_out) / len(held_out)
            h_acc = sum(float(o["accuracy"]) for o in held_out) / len(held_out)
            t_loss, t_acc = (float(out["contrastive"].detach()), float(out["accuracy"].detach())) if update else (h_loss, h_acc)
            print(f"{update:6d}  {t_loss:10.3f}  {t_acc:.3f}  {h_loss:9.3f}  {h_acc:.3f}  "
                  f"{float(held_out[0]['code_perplexity']):8.0f}  {ctx:7.3f}  {tgt:7.3f}  {spread:9.3f}"
                  f"  {lag1:9.3f}  {lag2:4.3f}  {agree:15.3f} ({chance:.3f})", flush=True)
        if update == args.updates:
            break
        if update == args.freeze_targets:
            for part in target_side:
                part.requires_grad_(True)
        opt.zero_grad()
        for step in range(args.accumulation):
            out = model(train[(update * args.accumulation + step) % len(train)])
            (out["loss"] / args.accumulation).backward()
        opt.step()
        model.set_num_updates(update + 1)
    print(f"[collapse] {args.updates} updates in {time.time() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
