"""AWS Systems Manager (Run Command) transport: testinfra backend, result framing, local emulator."""
