"""The capacity search, pure: its options, the search over fleet sizes, each step's verdict from
the files its storm wrote, and the result (lines, JSON, JUnit). ``certctl_load.cli.capacity``
runs the steps."""
