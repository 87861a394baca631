"""Independent QEMU test hosts (own kernel, own audit subsystem) for the project's own tests."""
