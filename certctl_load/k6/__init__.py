"""k6's model: metrics and their exact store, percentiles, the threshold grammar, durations, abortOnFail."""
