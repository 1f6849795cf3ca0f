"""`python -m novacron_sim`: run the stand-in NovaCron service (see novacron_sim.cli)."""

from __future__ import annotations

from novacron_sim.cli import main

raise SystemExit(main())
