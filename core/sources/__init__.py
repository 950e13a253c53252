"""Data read from SQL databases a workspace connects to: connections, presets and push-down queries."""
