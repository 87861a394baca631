"""Host I/O: the probe, transports, sessions, SSM, and every host-side script (docs/architecture.md)."""
