"""What a finished run writes and prints: k6's summary JSON and text, JUnit, the verdict table, failures."""
