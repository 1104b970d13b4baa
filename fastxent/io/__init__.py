"""Reading prediction sources and writing per-row outputs."""
