"""Interchange with HF transformers (``hf``) and fairseq (``fairseq``, read
with ``safe_pickle``), and ``loading.load_backbone``: any supported
checkpoint as a backbone. ``python -m speechbrain_ext.interop`` converts."""
