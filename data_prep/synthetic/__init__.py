"""Synthetic corpora in the real datasets' on-disk layouts.

``python -m data_prep.synthetic --out data/mini --seed 0`` writes every
corpus of ``DEFAULT_CORPORA`` (``CORPORA`` but the ``ON_REQUEST`` transfer
corpora of paper 002, which ``--only tedlium3 voxpopuli_en fisher_swbd``
builds); each is deterministic for a seed and is skipped when it is already
complete with the same options.
"""
import importlib

from .core import GENERATOR_VERSION, CorpusFolderError, Renderer, build_corpus, check_writable

# corpus key -> (module, folder under --out, build function name)
CORPORA = {
    "librispeech": ("librispeech", "LibriSpeech", "build_librispeech"),
    "librilight": ("librispeech", "librispeech_finetuning", "build_librilight"),
    "speech_commands": ("speech_commands", "speech_commands_v0.02", "build"),
    "timers_and_such": ("timers_and_such", "timers-and-such", "build"),
    "iemocap": ("iemocap", "IEMOCAP_full_release", "build"),
    "voxceleb1": ("voxceleb", "VoxCeleb1", "build"),
    "fluent_speech_commands": ("fluent_speech", "fluent_speech_commands_dataset", "build"),
    "common_voice_zh": ("common_voice", "cv-corpus-zh-CN", "build"),
    # paper 002 Table 5's transfer corpora: built on request only (``--only``)
    "tedlium3": ("tedlium3", "TEDLIUM_release-3", "build"),
    "voxpopuli_en": ("voxpopuli", "voxpopuli", "build"),
    "fisher_swbd": ("fisher_swbd", "fisher_swbd", "build"),
}
# what ``corpora=None`` (``make data``, the tests' ``mini_corpus``) builds
ON_REQUEST = ("tedlium3", "voxpopuli_en", "fisher_swbd")
DEFAULT_CORPORA = tuple(k for k in CORPORA if k not in ON_REQUEST)
SIZE_PRESETS = ("tiny", "mini")


def corpus_module(key):
    return importlib.import_module(f".{CORPORA[key][0]}", __name__)


def generate(out, seed=0, size="mini", corpora=None, hours_librispeech=None,
             jobs=None, log=print):
    """Generate ``corpora`` (default: ``DEFAULT_CORPORA``) under ``out``.

    Returns ``{key: marker dict}`` with each corpus's statistics."""
    if size not in SIZE_PRESETS:
        raise ValueError(f"unknown size {size!r}; expected one of {SIZE_PRESETS}")
    keys = list(DEFAULT_CORPORA) if corpora is None else list(corpora)
    unknown = [k for k in keys if k not in CORPORA]
    if unknown:
        raise ValueError(f"unknown corpus {unknown}; expected some of {list(CORPORA)}")
    check_writable(out)
    results = {}
    with Renderer(jobs) as renderer:
        for key in keys:
            module_name, folder, fn_name = CORPORA[key]
            module = corpus_module(key)
            preset = dict(module.SIZES[size])
            if key == "librispeech" and hours_librispeech:
                preset = module.scale_librispeech(preset, hours_librispeech)
            options = {"version": GENERATOR_VERSION, "seed": seed, "size": size,
                       "preset": preset}
            build = getattr(module, fn_name)
            results[key] = build_corpus(
                out, folder, options,
                lambda root, b=build, p=preset: b(root, seed, p, renderer), log=log)
    return results


__all__ = ["CORPORA", "DEFAULT_CORPORA", "ON_REQUEST", "CorpusFolderError", "generate"]
