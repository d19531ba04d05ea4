"""The account server: the LMDB account broker (``broker``), its in-memory twin (``memory``)
and, on top, a thin aiohttp app."""
