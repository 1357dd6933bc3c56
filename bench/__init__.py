"""LouCloud's benchmarks: LouCloud against the raw libvirt floor, on real libvirtd hosts.

``python -m bench.run`` (``make bench``) starts what it needs, runs every benchmark and
prints one table, also written to ``bench/results/<date>.md``. Benchmarks print figures;
they never fail on a time. See docs/performance.md."""
