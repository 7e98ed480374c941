"""The lifecycle's async I/O, the one source of the generated sync modules in ``_sync/``.

Each module here is edited by hand; ``.ci/unasync.py`` (``make generate``) writes its sync
twin into ``lifecycle/_sync/`` and ``make lint`` checks that the two agree.
"""
