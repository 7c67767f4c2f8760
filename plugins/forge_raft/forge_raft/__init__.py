"""forge-raft: RAFT training data from a repository's own code.

The ``synthesize`` hook lives in :mod:`forge_raft.plugin`; the work is in
:mod:`forge_raft.synthesis` and the modules beside it.
"""

__version__ = "0.1.0"
