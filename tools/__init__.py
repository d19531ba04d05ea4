"""Command-line tools: the `torus` CLI, the ring-builder admin tool, the test runner."""
