"""The lifecycle's sync I/O, generated from ``lifecycle/_async/`` by ``.ci/unasync.py``.

Do not edit the modules here: edit their async source and run ``make generate``.
"""
