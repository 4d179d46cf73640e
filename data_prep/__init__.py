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
"""
