"""The result documents (HTML, JSON, XCCDF) rendered from one run's case records (docs/architecture.md)."""
