from emulator_harness import emu, http, server  # noqa: F401
