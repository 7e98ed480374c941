"""The two plan drivers: run a plan's steps with a sync or an async client.

They are the only lifecycle code that does I/O. Each step is executed the same way in
both; they differ only in ``await``, so the sync driver is generated from the async one
(``lifecycle/_async/drive.py``). What they share, who a plan runs for and how its state
notes and cluster calls are done, is in ``lifecycle/steps.py``: notes about state
(``Forget``, ``EnterServerless``, ``SkipImplicit``) are handed to a
[`PlanState`][langchain_bytez.lifecycle.drivers.PlanState] (the manager).
"""

from __future__ import annotations

from langchain_bytez.lifecycle._async.drive import adrive
from langchain_bytez.lifecycle._sync.drive import drive
from langchain_bytez.lifecycle.steps import PlanRun, PlanState

__all__ = ["PlanRun", "PlanState", "adrive", "drive"]
