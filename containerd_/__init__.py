"""The container server: the LMDB container broker (``broker``), its in-memory twin
(``memory``) and, on top, a thin aiohttp app."""
