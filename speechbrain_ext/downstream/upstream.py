"""The upstream every downstream task shares: a pre-trained backbone, frozen
or fine-tuned, turned into one feature sequence per utterance.

``Upstream(source, freeze=True)`` loads anything ``load_backbone`` reads (a
checkpoint of our pre-training recipe, whatever its objective, a backbone
file, an HF folder) or a fairseq ``.pt``, whatever its architecture
(wav2vec2, SEW, SEW-D, any size: it comes from the checkpoint; the YAML's
``backbone_config`` only sets training-time dropouts), and returns
``[batch, frames, dim]`` features:

* **frozen** (SUPERB protocol, reference notes section 5): the backbone runs in
  eval mode under ``no_grad`` and the features are a learned softmax-weighted
  sum over the hidden states (CNN projection + every layer output), one
  scalar per state, initialised to zero (uniform weights). Optionally the
  backbone's per-layer outputs are cached on disk per utterance id, keyed by
  the checkpoint's identity, so that later epochs skip the backbone.
* **unfrozen** (paper 003's "Unfroz."): the whole network is trained except
  the CNN feature extractor (frozen as in the papers and SpeechBrain's
  wav2vec2 recipes); the features are the last layer's output by default
  (SpeechBrain's fine-tuning recipes, which paper 003 follows), or the
  weighted sum with ``combine="weighted"``.

Example
-------
>>> import tempfile, torch
>>> from speechbrain_ext.models.registry import save_backbone
>>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config
>>> path = save_backbone(Wav2Vec2Backbone(Wav2Vec2Config.micro()), tempfile.mkdtemp() + "/b.ckpt")
>>> upstream = Upstream(path, freeze=True)
>>> feats, lens = upstream(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
>>> feats.shape, upstream.output_dim, lens
(torch.Size([2, 49, 64]), 64, tensor([1.0000, 0.4898]))
>>> [name for name, p in upstream.named_parameters() if p.requires_grad]
['layer_sum.weights']
"""
import hashlib
import logging
import os
import re
from pathlib import Path

import torch
from torch import nn

from speechbrain_ext.interop.loading import init_backbone
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.registry import architecture_of

logger = logging.getLogger(__name__)

COMBINE_MODES = ("auto", "weighted", "last")


class WeightedLayerSum(nn.Module):
    """Softmax-weighted sum over stacked hidden states (s3prl's featurizer):
    one learned scalar per state, zero-initialised, so training starts from
    the plain average.

    Arguments
    ---------
    num_states : int
        Number of hidden states (``num_layers + 1``).

    Example
    -------
    >>> layer_sum = WeightedLayerSum(3)
    >>> states = torch.stack([torch.zeros(2, 5, 4), torch.ones(2, 5, 4), 2 * torch.ones(2, 5, 4)])
    >>> layer_sum(states)[0, 0].detach()
    tensor([1., 1., 1., 1.])
    """

    def __init__(self, num_states):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_states))

    def forward(self, states):
        """``states`` ``[num_states, batch, frames, dim]`` -> ``[batch, frames, dim]``."""
        if states.shape[0] != self.weights.numel():
            raise ValueError(f"expected {self.weights.numel()} hidden states, got {states.shape[0]}")
        weights = torch.softmax(self.weights, dim=0).to(states.dtype)
        return torch.einsum("l,lbtd->btd", weights, states)


def checkpoint_identity(backbone):
    """A short hash of the backbone's architecture and weights: the cache key,
    so that features of another checkpoint (or of a random init) are never
    reused."""
    digest = hashlib.sha1(repr(sorted(backbone.config.to_dict().items())).encode())
    for name, tensor in sorted(backbone.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class FeatureCache:
    """Per-utterance hidden states ``[num_states, frames, dim]`` on disk, one
    file per utterance id under ``folder/<checkpoint identity>/``. Files are
    written atomically (a killed run leaves no partial file).

    Only valid for deterministic inputs: the same id must always mean the same
    audio (no augmentation, no random crop)."""

    def __init__(self, folder, identity, dtype=torch.float16):
        self.folder = Path(folder) / identity
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dtype = dtype

    def path(self, uid):
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(uid))
        if safe != str(uid):  # keep distinct ids distinct after sanitising
            safe += "-" + hashlib.sha1(str(uid).encode()).hexdigest()[:8]
        return self.folder / f"{safe}.pt"

    def load(self, uid):
        path = self.path(uid)
        if not path.is_file():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def save(self, uid, states):
        path = self.path(uid)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        torch.save(states.detach().to("cpu", self.dtype).clone(), tmp)
        os.replace(tmp, path)


class Upstream(nn.Module):
    """A backbone turned into downstream features (see the module docstring).

    Arguments
    ---------
    source : str or Path
        Anything ``speechbrain_ext.load_backbone`` reads (a pre-training save
        folder or ``CKPT+*`` folder, a ``backbone.ckpt`` file, an HF folder),
        or a fairseq ``.pt``. Its architecture is the backbone's.
    freeze : bool
        Frozen (no_grad, eval mode, weighted sum) or fine-tuned (everything but
        the CNN feature extractor is trained).
    backbone_config : dict, optional
        The YAML's training-time settings of the backbone (dropouts,
        layerdrop: used while fine-tuning), applied to the checkpoint's
        architecture by ``speechbrain_ext.interop.loading.init_backbone``.
        An architecture key given here (e.g. ``dim``, or ``zoo``) must agree
        with the checkpoint: one that does not is a ``CheckpointError``
        naming it. None keeps the checkpoint's own settings.
    combine : str
        ``"weighted"`` (softmax-weighted sum of all hidden states),
        ``"last"`` (last layer) or ``"auto"``: weighted when frozen, last when
        unfrozen.
    cache_folder : str or Path, optional
        Frozen only: cache the backbone's hidden states here, per utterance
        id (pass ``ids`` to ``forward``) and checkpoint identity.
    cache_dtype : torch.dtype
        Precision of cached states (float16 halves the disk space; the
        weighted sum is computed in float32).
    random_init : bool
        Replace the checkpoint's weights by a random initialisation of the
        same architecture (the "random network" baseline row), seeded by
        ``seed``.
    seed : int
        Seed of ``random_init``.
    """

    def __init__(self, source, freeze=True, backbone_config=None, combine="auto",
                 cache_folder=None, cache_dtype=torch.float16, random_init=False, seed=0):
        super().__init__()
        if combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {COMBINE_MODES}, got {combine!r}")
        if cache_folder is not None and not freeze:
            raise ValueError("cache_folder needs freeze=True: a fine-tuned backbone's "
                             "features change at every step")
        self.source = str(source)
        self.freeze = bool(freeze)
        backbone = init_backbone(backbone_config, source)
        if random_init:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                backbone = type(backbone)(backbone.config)
        self.random_init = bool(random_init)
        self.backbone = backbone
        self.combine = ("weighted" if self.freeze else "last") if combine == "auto" else combine
        self.layer_sum = WeightedLayerSum(backbone.num_hidden_states) \
            if self.combine == "weighted" else None
        self.output_dim = backbone.config.dim
        if self.freeze:
            self.backbone.requires_grad_(False)
        else:  # the papers fine-tune everything but the CNN
            self.backbone.feature_extractor.requires_grad_(False)
        self.cache = None
        if cache_folder is not None:
            self.cache = FeatureCache(cache_folder, checkpoint_identity(backbone), cache_dtype)
        self.reset_cache_stats()
        self.train(self.training)

    def train(self, mode=True):
        """Keep a frozen backbone (and the CNN always) in eval mode."""
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
        self.backbone.feature_extractor.eval()
        return self

    def backbone_parameters(self):
        """Trainable backbone parameters (none when frozen)."""
        return [p for p in self.backbone.parameters() if p.requires_grad]

    def reset_cache_stats(self):
        self.cache_hits = 0
        self.cache_misses = 0

    def _backbone_states(self, wav, wav_lens):
        """Hidden states ``[num_states, B, T, D]`` and valid frames ``[B]``."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            out = self.backbone(wav, wav_lens)
            # the last layer alone needs no stacking (saves memory unfrozen)
            states = (out.hidden_states[-1][None] if self.combine == "last" and self.cache is None
                      else torch.stack(out.hidden_states))
            # padded frames hold zeros, as cached batches do
            states = states * out.frame_mask[None, :, :, None].to(states.dtype)
        return states, out.frame_mask.sum(dim=1)

    def _cached_states(self, wav, wav_lens, ids):
        """As ``_backbone_states``, reading cached utterances and running the
        backbone only if some utterance of the batch is not cached."""
        if len(ids) != wav.shape[0]:
            raise ValueError(f"got {len(ids)} ids for a batch of {wav.shape[0]} waveforms")
        per_utt = [self.cache.load(uid) for uid in ids]
        # a cached entry of another length (e.g. written under another crop
        # of the audio) is stale: recomputed and overwritten
        samples = torch.round(wav_lens.float() * wav.shape[1]).long() if wav_lens is not None \
            else torch.full((len(ids),), wav.shape[1])
        expected = self.backbone.frame_lengths(samples.cpu())
        for i, states in enumerate(per_utt):
            if states is not None and states.shape[1] != int(expected[i]):
                logger.warning(f"feature cache: {ids[i]} holds {states.shape[1]} frames, the audio "
                               f"gives {int(expected[i])}; recomputed")
                per_utt[i] = None
        missing = [i for i, states in enumerate(per_utt) if states is None]
        if missing:
            states, frames = self._backbone_states(wav, wav_lens)
            for i in missing:
                per_utt[i] = states[:, i, :int(frames[i])]
                self.cache.save(ids[i], per_utt[i])
        self.cache_hits += len(ids) - len(missing)
        self.cache_misses += len(missing)
        frames = torch.tensor([s.shape[1] for s in per_utt], device=wav.device)
        padded = torch.zeros(per_utt[0].shape[0], len(ids), int(frames.max()), per_utt[0].shape[2],
                             device=wav.device)
        for i, states in enumerate(per_utt):
            padded[:, i, :states.shape[1]] = states.to(padded)
        return padded, frames

    def forward(self, wav, wav_lens=None, ids=None):
        """``wav`` ``[B, samples]``, ``wav_lens`` ``[B]`` relative in (0, 1],
        ``ids`` (list of B utterance ids, used by the cache). Returns
        (features ``[B, T, D]``, zero on padded frames; relative lengths
        ``[B]``)."""
        if self.cache is not None and ids is not None:
            states, frames = self._cached_states(wav, wav_lens, ids)
        else:
            states, frames = self._backbone_states(wav, wav_lens)
        features = self.layer_sum(states.float()) if self.layer_sum is not None else states[-1]
        return features, frames.float() / features.shape[1]

    def describe(self):
        """One line for the log."""
        mode = "frozen" if self.freeze else "unfrozen (CNN frozen)"
        origin = "random init shaped like " if self.random_init else ""
        cache = f", feature cache {self.cache.folder}" if self.cache is not None else ""
        return (f"upstream: {origin}{self.source} (a {architecture_of(self.backbone)} backbone), "
                f"{mode}, {self.combine} features of {self.backbone.num_hidden_states} hidden "
                f"states x {self.output_dim}{cache}")


__all__ = ["Upstream", "WeightedLayerSum", "FeatureCache", "checkpoint_identity", "CheckpointError"]
