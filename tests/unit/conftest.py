from client_harness import t  # noqa: F401
from emulator_harness import emu, http, server  # noqa: F401
