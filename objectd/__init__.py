"""The object server: its storage engine ("diskfile") and, on top, a thin aiohttp app.

``objectd.engine.ObjectEngine`` keeps objects on a device's LMDB index and data files;
``objectd.memory.MemoryObjectEngine`` is its in-memory twin.  Both pass
tests/contract/test_object_engine.py.
"""
