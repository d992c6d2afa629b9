"""drone-deploy's exit codes, one source for the program, the operator window and the flight log's end record.

0 flown as planned (or landed by the operator), 1 a safety trigger ended the flight (landed or disarmed),
2 refused before arming, 3 still armed when drone-deploy stopped watching (the firmware's failsafe is in
charge), 4 killed (disarmed at once).
"""
EXIT_OK, EXIT_SAFETY, EXIT_REFUSED, EXIT_ARMED, EXIT_KILLED = 0, 1, 2, 3, 4
