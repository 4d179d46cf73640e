"""Importing a fairseq ``.pt`` reads it as data: a pickle that would run
code is refused before anything is unpickled, while the checkpoint layouts
fairseq writes (legacy ``args`` Namespace, omegaconf ``cfg``) import without
fairseq or omegaconf installed."""
import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import types
import typing
from collections import defaultdict
from enum import Enum
from pathlib import Path

import pytest
import torch

from speechbrain_ext.interop import safe_pickle
from speechbrain_ext.interop.fairseq import load_fairseq_checkpoint
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.registry import backbone_from_state
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config

DATA = Path(__file__).parent / "data"

SMALL = Wav2Vec2Config(conv_layers=[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2,
                       extractor_mode="group_norm", dim=48, num_layers=2, num_heads=4, ffn_dim=96,
                       pos_conv_kernel=16, pos_conv_groups=4, layer_norm_first=True,
                       dropout=0.0, attention_dropout=0.0, dropout_input=0.0, layerdrop=0.0)

# our (HF) names -> fairseq's, for a group-norm wav2vec2
_TO_FAIRSEQ = [
    (r"^feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
    (r"^feature_extractor\.conv_layers\.0\.layer_norm\.", "feature_extractor.conv_layers.0.2."),
    (r"^feature_projection\.layer_norm\.", "layer_norm."),
    (r"^feature_projection\.projection\.", "post_extract_proj."),
    (r"^masked_spec_embed$", "mask_emb"),
    (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0$", "encoder.pos_conv.0.weight_g"),
    (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1$", "encoder.pos_conv.0.weight_v"),
    (r"^encoder\.pos_conv_embed\.conv\.bias$", "encoder.pos_conv.0.bias"),
    (r"^(encoder\.layers\.\d+)\.attention\.", r"\1.self_attn."),
    (r"^(encoder\.layers\.\d+)\.layer_norm\.", r"\1.self_attn_layer_norm."),
    (r"^(encoder\.layers\.\d+)\.feed_forward\.intermediate_dense\.", r"\1.fc1."),
    (r"^(encoder\.layers\.\d+)\.feed_forward\.output_dense\.", r"\1.fc2."),
]


def small_model():
    torch.manual_seed(0)
    return Wav2Vec2Backbone(SMALL)


def fairseq_state(model):
    out = {}
    for key, value in model.state_dict().items():
        for pattern, repl in _TO_FAIRSEQ:
            key = re.sub(pattern, repl, key)
        out[key] = value.clone()
    out["quantizer.vars"] = torch.zeros(1, 8, 4)  # pre-training head, dropped on import
    return out


def fairseq_arch(normalize=False):
    """What fairseq's cfg.model (or args) says about SMALL."""
    return {"_name": "wav2vec2", "conv_feature_layers": repr(SMALL.conv_layers), "extractor_mode": "default",
            "conv_bias": False, "encoder_embed_dim": 48, "encoder_layers": 2, "encoder_attention_heads": 4,
            "encoder_ffn_embed_dim": 96, "conv_pos": 16, "conv_pos_groups": 4, "layer_norm_first": True,
            "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0, "dropout_input": 0.0,
            "encoder_layerdrop": 0.0, "feature_grad_mult": 0.1, "normalize": normalize}


def assert_imports_as(path, model, normalize):
    config, state = load_fairseq_checkpoint(path)
    assert config.to_dict() == {**SMALL.to_dict(), "normalize_waveform": normalize}
    loaded = backbone_from_state(config, state)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert not any(m.split(".")[0] in ("omegaconf", "fairseq") for m in sys.modules)


def save(obj, path, zipped=True):
    torch.save(obj, path, _use_new_zipfile_serialization=zipped)
    return path


@contextlib.contextmanager
def fake_modules(modules):
    """Register ``{module name: {attribute: object}}`` in ``sys.modules``
    (with their parent packages) while pickling, so that pickle can name the
    objects; removed afterwards, so loading cannot use them."""
    names = set()
    for name, attrs in modules.items():
        parts = name.split(".")
        names.update(".".join(parts[:i + 1]) for i in range(len(parts)))
    assert not names & set(sys.modules), "a real module would be shadowed"
    try:
        for name in sorted(names):
            sys.modules[name] = types.ModuleType(name)
        for name, attrs in modules.items():
            for attr, obj in attrs.items():
                obj.__module__, obj.__qualname__ = name, attr
                setattr(sys.modules[name], attr, obj)
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)


class RunsOnLoad:
    """Unpickles as ``func(*args)``: what a malicious checkpoint does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def payloads(pwned):
    return {"os.system": (os.system, f"touch {pwned}", f"{os.system.__module__}.system"),
            "eval": (eval, f"open({str(pwned)!r}, 'w').close()", "builtins.eval"),
            "Popen": (subprocess.Popen, ["touch", str(pwned)], "subprocess.Popen")}


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("payload", ["os.system", "eval", "Popen"])
def test_code_on_load_is_refused(tmp_path, payload, zipped):
    pwned = tmp_path / "pwned"
    func, arg, global_name = payloads(pwned)[payload]
    path = save({"model": fairseq_state(small_model()),
                 "cfg": {"model": {**fairseq_arch(), "extractor_mode": RunsOnLoad(func, arg)}}},
                tmp_path / "evil.pt", zipped)
    with pytest.raises(CheckpointError) as err:
        load_fairseq_checkpoint(path)
    assert str(path) in str(err.value) and global_name in str(err.value)
    assert not pwned.exists()
    # the file is live: an unrestricted torch.load runs it
    loaded = torch.load(path, weights_only=False)
    if payload == "Popen":
        loaded["cfg"]["model"]["extractor_mode"].wait()
    assert pwned.exists()


def test_unlisted_global_is_refused_by_torch_too(tmp_path, monkeypatch):
    """Should the opcode scan miss a global, the unpickler still refuses it."""
    pwned = tmp_path / "pwned"
    for func, arg, name in payloads(pwned).values():
        path = save({"model": {}, "args": RunsOnLoad(func, arg)}, tmp_path / "evil.pt")
        monkeypatch.setattr(safe_pickle, "pickled_globals", lambda path: {})
        with pytest.raises(CheckpointError) as err:
            load_fairseq_checkpoint(path)
        # torch's names: "eval" for builtins.eval, "commands.Popen" (Python 2's) for subprocess.Popen
        assert "evil.pt" in str(err.value) and name.split(".")[-1] in str(err.value)
        assert not pwned.exists()


def test_fairseq_names_are_stand_ins_never_imported(tmp_path):
    """A fairseq function named in the pickle is not looked up, let alone
    called: its call reads as its argument."""
    pwned = tmp_path / "pwned"

    def run(cmd):  # what a (fake) fairseq.evil.run would do
        os.system(cmd)

    with fake_modules({"fairseq.evil": {"run": run}}):
        path = save({"model": fairseq_state(small_model()),
                     "args": argparse.Namespace(**fairseq_arch(), hook=RunsOnLoad(run, f"touch {pwned}"))},
                    tmp_path / "w2v.pt")
    assert not any(m.startswith("fairseq") for m in sys.modules)
    assert vars(safe_pickle.load_plain(path)["args"])["hook"] == f"touch {pwned}"
    assert not pwned.exists()


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_args_namespace_checkpoint_imports(tmp_path, zipped):
    """Older fairseq checkpoints: ``args`` is an argparse.Namespace (task
    options such as ``normalize`` among the model's), no ``cfg``."""
    model = small_model()
    path = save({"args": argparse.Namespace(**fairseq_arch(normalize=True)), "model": fairseq_state(model),
                 "optimizer_history": [{"criterion_name": "Wav2vecCriterion", "num_updates": 10}],
                 "extra_state": {"train_iterator": {"epoch": 2}}}, tmp_path / "w2v.pt", zipped)
    assert_imports_as(path, model, normalize=True)


# --- a faithful stand-in for omegaconf 2.x (not installed here) -----------
# Node.__init__ sets __dict__ = {_metadata, _parent, _flags_cache}; a value
# node adds _val, a container _content (dict of nodes / list of nodes, or
# None / "???" / "${...}"); __getstate__ drops the flags cache; metadata
# are dataclasses (pickled as their __dict__).

class Metadata:
    def __init__(self, **fields):
        self.__dict__.update(fields)


class ContainerMetadata(Metadata):
    pass


class _Node:
    def __init__(self, parent, metadata, **content):
        self.__dict__.update(_metadata=metadata, _parent=parent, _flags_cache=None, **content)

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_flags_cache"]
        return state


class AnyNode(_Node):
    pass


class DictConfig(_Node):
    pass


class ListConfig(_Node):
    pass


class Choices(Enum):  # fairseq.dataclass.constants.ChoiceEnum(["default", "layer_norm"])
    default = "default"
    layer_norm = "layer_norm"


def _metadata(cls, key, object_type, **more):
    return cls(ref_type=typing.Any, object_type=object_type, optional=True, key=key, flags={},
               flags_root=False, resolver_cache=defaultdict(dict), **more)


def omegaconf_like(value, parent=None, key=None):
    """Nested dicts / lists / values -> DictConfig / ListConfig / AnyNode stand-ins."""
    if isinstance(value, dict):
        node = DictConfig(parent, _metadata(ContainerMetadata, key, dict, key_type=typing.Any,
                                            element_type=typing.Any), _content={})
        node._content.update({k: omegaconf_like(v, node, k) for k, v in value.items()})
    elif isinstance(value, list):
        node = ListConfig(parent, _metadata(ContainerMetadata, key, list, element_type=typing.Any), _content=[])
        node._content.extend(omegaconf_like(v, node, i) for i, v in enumerate(value))
    else:
        node = AnyNode(parent, _metadata(Metadata, key, None), _val=value)
    return node


OMEGACONF_MODULES = {"omegaconf.dictconfig": {"DictConfig": DictConfig},
                     "omegaconf.listconfig": {"ListConfig": ListConfig},
                     "omegaconf.nodes": {"AnyNode": AnyNode},
                     "omegaconf.base": {"Metadata": Metadata, "ContainerMetadata": ContainerMetadata},
                     "fairseq.dataclass.constants": {"Choices": Choices}}


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_omegaconf_cfg_checkpoint_imports(tmp_path, zipped):
    model = small_model()
    cfg = {"_name": None, "common": {"seed": 1, "tpu": False},
           "task": {"_name": "audio_pretraining", "normalize": True, "labels": ["ltr"],
                    "tpu": "${common.tpu}"},
           "model": {**fairseq_arch(), "extractor_mode": Choices.default, "mask_length": "${task.missing}",
                     "latent_temp": [2.0, 0.5, 0.999995], "w2v_path": "???"}}
    with fake_modules(OMEGACONF_MODULES):
        path = save({"args": None, "cfg": omegaconf_like(cfg), "model": fairseq_state(model)},
                    tmp_path / "w2v.pt", zipped)
    assert not any(m.split(".")[0] in ("omegaconf", "fairseq") for m in sys.modules)
    plain = safe_pickle.load_plain(path)["cfg"]
    assert type(plain) is dict and type(plain["model"]) is dict and type(plain["task"]["labels"]) is list
    assert plain == {**cfg, "model": {**cfg["model"], "extractor_mode": "default"}}
    assert safe_pickle.resolve_interpolations(plain)["task"]["tpu"] is False
    assert plain["model"]["mask_length"] == "${task.missing}"  # no such key: left as it is
    assert_imports_as(path, model, normalize=True)


def test_real_omegaconf_pickle_imports():
    """A DictConfig pickled by omegaconf 2.3 itself (tests/data, see
    make_fairseq_omegaconf_fixture.py) reads as what omegaconf's own
    to_container gives."""
    path = DATA / "fairseq_omegaconf_cfg.pt"
    assert path.is_file(), f"{path} is missing (tests/data/ matches .gitignore's data/: add it with git add -f)"
    expected = json.loads((DATA / "fairseq_omegaconf_cfg.json").read_text())
    cfg = safe_pickle.load_plain(path)["cfg"]
    assert cfg == expected["unresolved"]
    assert cfg["model"]["extractor_mode"] == "layer_norm"  # an EnumNode holding a fairseq enum member
    assert safe_pickle.resolve_interpolations(cfg) == expected["resolved"]
    config, state = load_fairseq_checkpoint(path)
    assert (config.dim, config.num_layers, config.num_heads, config.ffn_dim) == (48, 3, 4, 96)
    assert config.conv_layers == [(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2
    assert config.extractor_mode == "layer_norm" and config.conv_bias and config.layer_norm_first
    assert config.dropout_input == 0.0  # "${model.dropout}", resolved
    assert config.normalize_waveform  # task.normalize
    torch.manual_seed(0)
    assert torch.equal(state["masked_spec_embed"], torch.randn(48))
    assert state["feature_projection.projection.weight"].shape == (48, 32)
    assert not any(m.split(".")[0] in ("omegaconf", "fairseq") for m in sys.modules)


def test_numpy_scalars_read_as_numbers_arrays_refused(tmp_path):
    np = pytest.importorskip("numpy")
    ckpt = {"model": fairseq_state(small_model()), "args": argparse.Namespace(**fairseq_arch()),
            "extra_state": {"best": np.float64(2.25), "updates": np.int64(7), "flag": np.bool_(True),
                            "lr": np.float32(0.5)}}
    loaded = safe_pickle.load_plain(save(ckpt, tmp_path / "np.pt"))
    assert loaded["extra_state"] == {"best": 2.25, "updates": 7, "flag": True, "lr": 0.5}
    assert [type(v) for v in loaded["extra_state"].values()] == [float, int, bool, float]
    with pytest.raises(CheckpointError, match=r"arr\.pt.*multiarray\._reconstruct"):
        load_fairseq_checkpoint(save({**ckpt, "extra_state": {"a": np.zeros(3)}}, tmp_path / "arr.pt"))


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_fairseq_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no 'model' entry"):
        load_fairseq_checkpoint(save({"cfg": {"model": {}}}, tmp_path / "nomodel.pt"))


def test_layer_norm_mode_checkpoint_imports(tmp_path):
    """fairseq's layer_norm-mode CNN (large / LV-60 / XLSR models; paper 000's
    extractor) names each block's norm ``conv_layers.N.2.1`` (conv, dropout,
    Sequential(transpose, LayerNorm, transpose), GELU)."""
    config = Wav2Vec2Config(**{**SMALL.to_dict(), "extractor_mode": "layer_norm", "conv_bias": True})
    torch.manual_seed(0)
    model = Wav2Vec2Backbone(config)
    state = {}
    for key, value in model.state_dict().items():
        key = re.sub(r"^feature_extractor\.conv_layers\.(\d+)\.layer_norm\.",
                     r"feature_extractor.conv_layers.\1.2.1.", key)
        for pattern, repl in _TO_FAIRSEQ:
            key = re.sub(pattern, repl, key)
        state[key] = value.clone()
    assert "feature_extractor.conv_layers.3.2.1.weight" in state
    arch = {**fairseq_arch(), "extractor_mode": "layer_norm", "conv_bias": True}
    path = save({"model": state, "args": argparse.Namespace(**arch)}, tmp_path / "ln.pt")
    loaded_config, loaded_state = load_fairseq_checkpoint(path)
    assert loaded_config.extractor_mode == "layer_norm" and loaded_config.conv_bias
    loaded = backbone_from_state(loaded_config, loaded_state)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
