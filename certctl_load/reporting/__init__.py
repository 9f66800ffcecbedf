"""What a finished run writes and prints: k6's summary JSON and text, k6's JSON output, JUnit, the
verdict table, failures."""
