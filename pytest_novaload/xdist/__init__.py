"""pytest-xdist fan-out: every worker drives a shard of each load test at the same moment.

One role per module (lowest first). Only ``scheduler``, ``report`` and ``plugin`` import
pytest, xdist or execnet (a test proves the others do not):

- ``wire``: the side channel's typed messages and their tuples (builtins, as execnet wants);
- ``merge``: many shards' measurements as one run (digests merged, never averaged);
- ``fanout``: one load test's fan-out on the controller, as a state machine;
- ``controller``: the ``Coordinator`` moving every ``Fanout`` (barrier, ranks, merge, the
  one ``judge``) and doing the I/O;
- ``worker``: the session's ``Shard`` on a worker (barrier wait, abort, results out);
- ``scheduler``: ``FanoutScheduling``, every load test to every worker first;
- ``report``: the one pytest report per load test, logged on the controller;
- ``plugin``: the hooks on the controller and on the workers.

A worker sends only from its main thread, so a shard's messages reach the controller before
xdist's own ``runtest_protocol_complete`` for the same item (same gateway, same order).
"""
