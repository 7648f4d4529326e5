"""Everything on chain (DESIGN §6): the LedgerAnchor contract, its pinned compiler and node
(``package.json``), the committed artifact and the web3 client that deploys, anchors and reads anchors.

web3 pulls in ``py_ecc``, whose import raises the interpreter's recursion limit to 100,000 for the
whole process. With such a limit, deeply nested input overflows the C stack (a crash) instead of
raising ``RecursionError`` in the parsers that bound it, so it is imported here once, first, and the
limit put back.
"""

import sys as _sys

_limit = _sys.getrecursionlimit()
import py_ecc  # noqa: E402, F401  (see above)

_sys.setrecursionlimit(_limit)
