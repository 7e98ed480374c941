"""Shared fixtures: the local Bytez-compatible server (see ``langchain_bytez.pytest_plugin``)."""

pytest_plugins = ["langchain_bytez.pytest_plugin"]
