"""The pure model: rules, the kernel's filter, the boot-time load, verdicts and plans. No I/O (docs/architecture.md)."""
