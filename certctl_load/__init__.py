"""certctl-load: a Locust harness for certctl's agent-fleet heartbeat storm.

Module map (docs/ARCHITECTURE.md follows one heartbeat through it). Lower layers never import
higher ones, and only ``plugin`` imports locust or flask (import-linter checks both):

- ``locustfile``, ``cli/``: entry points: ``locust -f locustfile.py`` and the ``certctl-load``
  command (``demo``, ``target``, ``seed``, ``unseed``, ``capacity``).
- ``plugin/``: the Locust plugin: options, the user class (one agent), the fleet-sized shape, the
  harness's listeners on Locust's events, the web UI tab, and every Locust internal used.
- ``target/``: the reference target, certctl's heartbeat contract over SQLite or PostgreSQL.
- ``runtime/``: a run in one process: the run object and its life cycle, one agent's call loop,
  the HTTP client, recording, preflight, early stop, the distributed coordinator, the judgement.
- ``capacity/``: the capacity search, pure: its options, the fleet of each step, a step's verdict
  from its storm's summary, the result, its lines, JSON and JUnit (``cli/capacity.py`` runs it).
- ``reporting/``: what a finished run writes: k6's summary JSON and text, k6's JSON output, JUnit,
  the verdict table, the failure breakdown, the HTML report and its charts (the vendored uPlot in
  ``reporting/assets/``, shared with the web UI's live page), figures for people, atomic files.
- ``db/``: certctl's database: DSNs, the seed SQL files, seeding and unseeding the fleet.
- ``model/``: the scenario model: scenario files, calls, the resolved configuration, the target
  URL, the fleet's seed values, the absolute schedule, the value checks behind every option.
- ``timeline/``: the run second by second: per-second rows in bounded memory, merged across
  workers, and thresholds judged over windows of W seconds.
- ``k6/``: k6's semantics: metrics and their store, percentiles, thresholds, durations, abortOnFail.
- ``errors``, ``exitcodes``: the errors that carry an exit code, and the codes.
"""

__version__ = "0.1.0"
