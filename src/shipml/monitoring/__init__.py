"""Model monitoring: payload logging into the store, live signals, drift reports.

- :mod:`.profile` builds, when a version is saved, what live traffic is later compared
  with: a sample of training records, each field's kind and range, the model's answers
  to the sample, and for text fields the training vocabulary.
- :mod:`.recorder` (in each serving worker) samples answered requests, writes them into
  the store in compressed batches off the request path (:mod:`.sink`) and keeps the live
  counters of :mod:`.live` up to date.
- :mod:`.reading`, :mod:`.drift`, :mod:`.report` and :mod:`.html` make
  ``shipml monitor report`` (its command is in :mod:`shipml.cli.monitor`).

docs/monitoring.md describes the whole; every decision taken here is written down there.
"""
