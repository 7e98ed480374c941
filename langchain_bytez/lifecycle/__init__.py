"""The model lifecycle: load, wait, status, stop; one room per job.

* [`settings`][langchain_bytez.lifecycle.settings]: constants and the checked ``LoadSpec``.
* [`plans`][langchain_bytez.lifecycle.plans]: every cluster decision, as pure generators.
* [`drivers`][langchain_bytez.lifecycle.drivers]: run a plan with a sync or async client.
* [`flight`][langchain_bytez.lifecycle.flight]: concurrent loads of one model share one.
* [`coordinator`][langchain_bytez.lifecycle.coordinator]: per-endpoint state, single
  flight, implicit auto-load, the in-flight limits.
* [`manager`][langchain_bytez.lifecycle.manager]: ``ModelManager`` and the model handles.
* [`progress`][langchain_bytez.lifecycle.progress]: ``LoadProgress`` events as plain data.

Nothing here imports LangChain: progress display and LangChain custom events live in
[`langchain_bytez.progress`][langchain_bytez.progress]. The clients are imported only for
type checking.
"""
