"""Inference time of a backbone over utterances, one at a time (paper 002's
protocol: batch 1, fp32, inference mode): shared by ``results/inference_time.py``
(every zoo model side by side) and ``speechbrain_ext.reproduce`` (paper 002's
"Infer. (s)" cells).

Example
-------
>>> from speechbrain_ext.models.registry import build_backbone
>>> from speechbrain_ext.models.zoo import zoo_config
>>> waves, source = load_utterances(None, 2)   # no corpus: fixed random audio
>>> source
'2 random signals of 4-16 s (no LibriSpeech dev-clean under None)'
>>> net = build_backbone(zoo_config("w2v2_micro")).eval()
>>> seconds = time_inference(net, waves, torch.device("cpu"), passes=1)
>>> seconds > 0
True
"""
import statistics
import time
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from speechbrain_ext.analysis.resources import synchronise  # the sweep's: a no-op on the CPU

SAMPLE_RATE = 16000


def load_utterances(data_folder, count):
    """``count`` waveforms ``[samples]`` (the first files of ``dev-clean``
    under ``data_folder``, sorted by path; without it, fixed random audio of
    LibriSpeech-like lengths, 4 to 16 s, seed 0) and where they came from."""
    files = sorted(Path(data_folder, "dev-clean").rglob("*.flac")) if data_folder else []
    if files:
        import soundfile

        waves = []
        for path in files[:count]:
            audio, rate = soundfile.read(str(path), dtype="float32")
            if rate != SAMPLE_RATE:
                raise ValueError(f"{path}: sample rate {rate}, expected {SAMPLE_RATE}")
            waves.append(torch.from_numpy(audio))
        return waves, f"{len(waves)} utterances of {Path(data_folder) / 'dev-clean'}"
    generator = torch.Generator().manual_seed(0)
    seconds = torch.empty(count).uniform_(4.0, 16.0, generator=generator)
    waves = [0.1 * torch.randn(int(s * SAMPLE_RATE), generator=generator) for s in seconds]
    return waves, f"{count} random signals of 4-16 s (no LibriSpeech dev-clean under {data_folder})"


def count_flops(model, waves, device):
    """FLOPs of ``model``'s forward over ``waves`` (each ``[samples]``).

    The math SDPA backend, so that the attention's matrix products are
    counted (fused CPU kernels are not in FlopCounterMode's registry); no_grad,
    not inference_mode: weight-norm parametrizations fail under
    FlopCounterMode + inference_mode (torch 2.11)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        for wav in waves:
            model(wav[None].to(device))
    return counter.get_total_flops()


def warm_up(model, waves, device):
    """One untimed pass on the first 2 s (allocator, kernel selection)."""
    with torch.inference_mode():
        model(waves[0][None, : 2 * SAMPLE_RATE].to(device))


def time_utterances(model, waves, device):
    """Seconds of one timed forward of each of ``waves``, one at a time: ``[utterance]``."""
    times = []
    with torch.inference_mode():
        for wav in waves:
            x = wav[None].to(device)
            synchronise(device)
            start = time.perf_counter()
            model(x)
            synchronise(device)
            times.append(time.perf_counter() - start)
    return times


def time_inference(model, waves, device, passes):
    """Seconds to run ``model`` over ``waves``: after a warm-up, per
    utterance the median of ``passes`` timed passes, summed over the
    utterances."""
    warm_up(model, waves, device)
    per_pass = [time_utterances(model, waves, device) for _ in range(passes)]  # [pass][utterance]
    return sum(statistics.median(t) for t in zip(*per_pass))
