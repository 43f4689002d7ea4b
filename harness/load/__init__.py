"""Load tools: `harness load`, the pipeline under a Locust load, judged on what it made of it."""
