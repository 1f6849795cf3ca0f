"""pytest-xdist fan-out: every worker drives a shard of each load test at the same moment.

One role per module (lowest first; ``wire`` and ``merge`` import neither pytest nor xdist):

- ``wire``: the side channel's messages and how they travel (builtins only, as execnet wants);
- ``merge``: many shards' measurements as one run (digests merged, never averaged);
- ``worker``: the session's ``Shard`` on a worker (barrier wait, abort, results out);
- ``controller``: every load test's fan-out on the controller (barrier, ranks, merge, verdict);
- ``scheduler``: ``FanoutScheduling``, every load test to every worker first;
- ``plugin``: the hooks on the controller and on the workers.

Side-channel messages (tuples; the controller knows which worker a message came from):
  worker -> controller: ("meta", {nodeid: meta}), ("arrive", nodeid), ("progress", nodeid, d),
                        ("result", nodeid, d), ("done", nodeid, d)
  controller -> worker: ("go", nodeid, rank, world), ("cancel", nodeid, reason),
                        ("abort", nodeid, reason), ("merged", nodeid, d)
A worker sends only from its main thread, so a shard's messages reach the controller before
xdist's own ``runtest_protocol_complete`` for the same item (same gateway, same order).
"""
