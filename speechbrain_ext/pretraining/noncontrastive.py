"""The non-contrastive (Barlow-Twins style) pre-training of paper 000.

Online and target networks are each feature extractor -> latent time
masking -> encoder -> Linear projection to 29 dims. Only the online network
is trained; the target follows it by an exponential moving average after
every optimizer update. The online view is masked more (p=0.1, spans of 20)
than the target view (p=0.05, spans of 10). The loss combines the
time-unrolling and time-merging Barlow losses (``objectives.barlow``),
padding excluded, statically or dynamically.

For downstream use the paper keeps the target network without its projection
(``keep_for_downstream="target"``); ``"online"`` keeps the other one.

Choices where the paper is silent (documented in the YAML too): masked frames
take the learned mask embedding as in wav2vec2; the target runs without
dropout or layerdrop (as data2vec's EMA teacher); ``min_masks=0``.

Example
-------
>>> import torch
>>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
>>> model = NonContrastiveModel(Wav2Vec2Config.micro())
>>> out = model(torch.randn(3, 16000))
>>> round(out["loss"].item(), 4)  # dynamic combination: L_U/sg(L_U) + L_M/sg(L_M)
2.0
>>> out["loss"].backward(); model.after_optimizer_step(1)
"""
import copy

import torch
from torch import nn

from speechbrain_ext.models.registry import build_backbone
from speechbrain_ext.pretraining.barlow import combine_losses, time_merged_loss, time_unrolled_loss
from speechbrain_ext.pretraining.ema import ema_update


class NonContrastiveModel(nn.Module):
    """Online / target networks with the sequence Barlow losses.

    Arguments
    ---------
    backbone_config : a backbone config, or a dict (``architecture`` / ``zoo``
        keys choose the backbone, see ``speechbrain_ext.models.registry.backbone_config``)
    projection_dim : output size of the projection (29)
    online_mask, target_mask : (prob, span length) of the latent time masking
    min_masks : minimum number of spans per utterance
    ema_decay : target = decay * target + (1 - decay) * online
    combination : "dynamic" or "static" (with ``w_unrolled``, ``w_merged``)
    keep_for_downstream : "target" (paper) or "online"
    backbone : optional existing backbone to start from (sequentially
        combined method: a wav2vec2 checkpoint); both networks copy it.
    """

    def __init__(self, backbone_config=None, projection_dim=29, online_mask=(0.1, 20),
                 target_mask=(0.05, 10), min_masks=0, ema_decay=0.999, combination="dynamic",
                 w_unrolled=1.0, w_merged=1.0, keep_for_downstream="target", backbone=None):
        super().__init__()
        if keep_for_downstream not in ("target", "online"):
            raise ValueError(f"keep_for_downstream must be 'target' or 'online', got {keep_for_downstream!r}")
        if combination not in ("dynamic", "static"):
            raise ValueError(f"combination must be 'dynamic' or 'static', got {combination!r}")
        self.online = backbone if backbone is not None else build_backbone(backbone_config or {})
        self.online_projection = nn.Linear(self.online.config.dim, projection_dim)
        self.target = copy.deepcopy(self.online)
        self.target_projection = copy.deepcopy(self.online_projection)
        for p in list(self.target.parameters()) + list(self.target_projection.parameters()):
            p.requires_grad_(False)
        self.online_mask, self.target_mask = tuple(online_mask), tuple(target_mask)
        self.min_masks = min_masks
        self.ema_decay = ema_decay
        self.combination, self.w_unrolled, self.w_merged = combination, w_unrolled, w_merged
        self.keep_for_downstream = keep_for_downstream

    @property
    def monitor_key(self):
        """Output that compares validation runs: with the dynamic combination
        ``loss`` is always 2, so checkpoints are compared by ``L_U + L_M``."""
        return "loss" if self.combination == "static" else "unrolled_plus_merged"

    @property
    def backbone(self):
        return self.target if self.keep_for_downstream == "target" else self.online

    def min_frames(self):
        """Shortest utterance (in frames) the masking accepts."""
        return max(self.online_mask[1], self.target_mask[1])

    def train(self, mode=True):
        super().train(mode)
        self.target.eval()  # the EMA target never uses dropout / layerdrop
        return self

    def set_num_updates(self, num_updates):
        """Nothing depends on the update count (the EMA decay is constant)."""

    def after_optimizer_step(self, num_updates):
        """EMA update of the target, once per optimizer update."""
        ema_update(self.target, self.online, self.ema_decay)
        ema_update(self.target_projection, self.online_projection, self.ema_decay)

    def _view(self, network, projection, wav, wav_lens, mask_prob, mask_length):
        out = network(wav, wav_lens, span_mask=(mask_prob, mask_length, self.min_masks))
        return projection(out.last_hidden_state), out.frame_mask, out.time_mask

    def forward(self, wav, wav_lens=None):
        """``wav`` ``[B, samples]`` -> dict with ``loss``, both loss terms and the
        projections' mean per-dimension std (``online_`` / ``target_projection_std``)."""
        if wav.shape[0] < 2:
            raise ValueError("the time-merging Barlow loss needs at least 2 utterances per batch, "
                             f"got a batch of {wav.shape[0]}")
        online, frame_mask, online_mask = self._view(
            self.online, self.online_projection, wav, wav_lens, *self.online_mask)
        with torch.no_grad():
            target, _, _ = self._view(self.target, self.target_projection, wav, wav_lens,
                                      *self.target_mask)
        unrolled = time_unrolled_loss(online.float(), target.float(), frame_mask)
        merged = time_merged_loss(online.float(), target.float(), frame_mask)
        loss = combine_losses(unrolled, merged, self.combination, self.w_unrolled, self.w_merged)
        valid = frame_mask.sum()
        return {"loss": loss, "time_unrolled_loss": unrolled.detach(),
                "time_merged_loss": merged.detach(),
                "unrolled_plus_merged": (unrolled + merged).detach(),
                "mask_rate": ((online_mask & frame_mask).sum() / valid).detach(),
                # collapse check: per-dimension std of the projections over the
                # batch's frames, averaged over dimensions (0 = collapsed)
                "online_projection_std": online.detach()[frame_mask].float().std(0).mean(),
                "target_projection_std": target[frame_mask].float().std(0).mean(),
                "time_mask": online_mask}  # [B, frames]: the recipe compares processes' masks
