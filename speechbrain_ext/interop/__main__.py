"""Command line of the interchange with HF transformers and fairseq
(wav2vec2, SEW / SEW-D from HF, HuBERT from either, as a wav2vec2 backbone)::

    python -m speechbrain_ext.interop import-hf  HF_FOLDER   OUT.ckpt
    python -m speechbrain_ext.interop import-fairseq  MODEL.pt  OUT.ckpt
    python -m speechbrain_ext.interop export-hf  CKPT  HF_FOLDER
"""
import argparse
import sys

from speechbrain_ext.interop.fairseq import load_fairseq_checkpoint
from speechbrain_ext.interop.hf import export_hf_folder
from speechbrain_ext.interop.loading import load_backbone
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.registry import backbone_from_state, save_backbone


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m speechbrain_ext.interop",
                                     description="Checkpoint interchange with HF transformers and fairseq.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("import-hf", "HF folder -> our backbone checkpoint"),
                            ("import-fairseq", "fairseq .pt -> our backbone checkpoint"),
                            ("export-hf", "our checkpoint (or HF folder) -> HF folder")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("source")
        p.add_argument("destination")
    args = parser.parse_args(argv)
    try:
        if args.command == "import-fairseq":
            config, state = load_fairseq_checkpoint(args.source)
            model = backbone_from_state(config, state)
        else:
            model = load_backbone(args.source)
        if args.command == "export-hf":
            export_hf_folder(model, args.destination)
        else:
            save_backbone(model, args.destination)
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
