#!/usr/bin/env python3
"""LouCloud's command line. `python manage.py --help` lists the commands:
init, run, db (migrations), hosts, users, console-proxy, ..."""
from loucloud.cli import main

if __name__ == "__main__":
    main()
