"""Process exit codes, k6's where k6 has one."""

OK = 0
HARNESS_ERROR = 1
TARGET_NOT_READY = 2
INCONCLUSIVE = 3  # the load generator was saturated and the verdict would have failed
THRESHOLDS_CROSSED = 99
INVALID_CONFIG = 104
INTERRUPTED = 105
