"""Test helpers: fakes that behave like Bytez models, for local servers and tests."""
