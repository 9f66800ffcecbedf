"""A run in one process: the run object and its life cycle, the HTTP client, recording, preflight, the
distributed coordinator and the judgement. Nothing here imports locust or flask."""
