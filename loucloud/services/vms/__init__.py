"""VMs, by concern: ``lifecycle`` (create, act, delete), ``state`` (live state,
listing, reconciliation with the hosts) and ``placement`` (which host takes a new VM)."""
