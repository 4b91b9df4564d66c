# A MicroPython firmware image with the charger frozen in: its bytecode runs from flash instead of
# being loaded into the heap, which leaves the RAM to the OCPP engine. Only main.py and
# settings.json stay on the board's file system. Build from a MicroPython checkout
# (docs/hardware.md):
#   ESP32:  make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=$REPO/firmware/manifest.py
#   Pico W: make -C ports/rp2 BOARD=RPI_PICO_W FROZEN_MANIFEST=$REPO/firmware/manifest.py
# Paths are relative to this file; the port's own manifest brings asyncio and the rest.
include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821 (makemanifest's functions)
require("aiorepl")  # noqa: F821  the debug REPL (firmware/debug.py) uses it when present

package("ocpp", base_path="../lib")  # noqa: F821
package("hal")  # noqa: F821
module("startup.py")  # noqa: F821
module("charger.py")  # noqa: F821
module("settings.py")  # noqa: F821
module("memstat.py")  # noqa: F821
module("debug.py")  # noqa: F821
module("linerepl.py")  # noqa: F821  (used only without aiorepl; tiny)
# Every shipped board (data only, a few hundred bytes each); settings.json picks one.
package("boards", files=["esp32_devkitc.py", "pico_w.py"], base_path="..")  # noqa: F821
