"""The run second by second: per-second figures in bounded memory, and thresholds judged in every
window of W seconds (``{threshold: "p(95)<500", window: "30s"}``) as the seconds become final."""
