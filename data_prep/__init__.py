"""Corpus preparations: ``prepare_X(data_folder, save_folder, ..., skip_prep)``
writes SpeechBrain CSV manifests of corpus X (``python -m data_prep.X`` from
the command line).

Every preparation is built from the same pieces:

* :mod:`data_prep.audio_scan` -- checks and measures the audio files, in
  parallel (headers; samples too where NaN / Inf can hide).
* :mod:`data_prep.problems` -- the bad-input policy: every problem is
  collected and, before anything is written, either raised (listing them
  all) or skipped with ``skip_bad_files=True``.
* :mod:`data_prep.done_record` -- skip-if-done: an output prepared with the
  same options is not prepared again.
* :mod:`data_prep.manifests` -- metadata tables read, manifests written
  atomically with ``$data_root``-relative paths.
* :mod:`data_prep.runner` -- :func:`~data_prep.runner.run_preparation`
  drives these for a corpus module, which supplies only how to read its
  metadata.
* :mod:`data_prep.cli` -- the command line they share.

Paper 002 Table 5's transfer corpora (letter CTC, ``train-10h`` subsets):

* :mod:`data_prep.tedlium3` -- TED-LIUM 3 (legacy ``.sph`` + ``.stm``): one
  row per STM segment of a talk (``start``/``stop`` and a ``read_piece``
  ``segments`` string); also the helpers the three share (letter
  normalisation, SPHERE header check, whole-unit subset selection).
* :mod:`data_prep.voxpopuli` -- VoxPopuli transcribed data (one ``.ogg`` per
  utterance, ``asr_*.tsv``).
* :mod:`data_prep.fisher_swbd` -- Fisher + Switchboard-1: each side of a
  two-channel 8 kHz conversation converted to a 16 kHz mono FLAC, rows are
  segments of it.

:mod:`data_prep.length_distributions` draws the downstream datasets'
utterance-length distributions from prepared manifests (paper 003, Fig. 1
below; the upper panel is :mod:`data_prep.length_splits`).
"""
