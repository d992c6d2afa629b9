"""The operator window's colours, sizes and speeds, and its help line."""

TARGET_COLOR = (240, 240, 240)
REFUSED = (255, 70, 60)
FENCE = (235, 190, 60)
GHOST = (150, 200, 255)
OK_GREEN = (90, 220, 110)
WARN = (255, 190, 60)
HEIGHT_STEP = 0.1           # metres per wheel notch / key press
SEND_PERIOD = 0.1           # the target is sent at most this often while it moves (10 Hz)
TARGET_SPEED = 1.5          # m/s: how fast the sent target walks to where the operator put it (0: jump there)
GRAB_PX = 24                # how close (pixels) a press must be to the target to grab it

_HELP = ("drag target: move   wheel/Up/Down: height   drag: orbit   right drag: pan   shift+wheel: zoom   "
         "T takeoff  L land  H hold  Tab task  K KILL  C camera  P screenshot  ESC land+close")
