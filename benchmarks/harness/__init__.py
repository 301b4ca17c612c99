"""The comparison harness behind ``benchmarks/compare.py``: train each system, measure it, report.

One module per job: ``systems_*`` train one family of systems into a work directory,
``predict_worker`` loads one trained model in a fresh one-thread process and measures its
predictions, ``measure`` drives that worker, ``stages`` times the textproj runtime stage by
stage, ``report`` writes the Markdown tables and the plots.
"""
