"""Monitoring: the ``sampler`` (one bulk statistics call per host per cycle, stored),
``metrics`` (the chart series read back) and ``dashboard`` (the pool at a glance)."""
