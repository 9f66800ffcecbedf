"""The Locust plugin: the only code that imports locust or flask. Options, the user class, the shape,
the event listeners that forward to the run, the web UI tab, and every use of a Locust internal."""
