#!/usr/bin/env python3
"""The telemetry-link budget of flying N vehicles from one laptop: bytes per second each way, and how many
vehicles each kind of link carries.

    python3 scripts/link_budget.py                 # the table hardware.md shows ("Flying several vehicles")
    python3 scripts/link_budget.py --rate 100 --signed

Computed, not measured: every message drone-deploy asks each vehicle for (deploy.flight.deploy_streams at the
loop rate) and what it sends (a SET_ATTITUDE_TARGET per tick, a heartbeat a second), at the size of a full
MAVLink 2 frame of that message in pymavlink's own definitions (10 header bytes + the whole payload with
extensions + 2 CRC bytes, + 13 with signing; MAVLink 2 trims trailing zero bytes, so real frames are at most
this). A serial byte is 10 bits (8N1). A SiK radio's air rate is shared by both directions (half duplex,
time-division) and about 70% of it carries payload after framing and error correction (the SiK firmware's
own overhead); that factor is an estimate, stated as such in the output.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymavlink.dialects.v20 import ardupilotmega as mavlink  # noqa: E402

from deploy.flight import deploy_streams  # noqa: E402

HEADER, CRC, SIGNATURE = 10, 2, 13
UPLINK = {"SET_ATTITUDE_TARGET": None, "HEARTBEAT": 1.0}   # None: once per control tick
SIK_EFFICIENCY = 0.7                                       # estimate: see the module docstring


def frame_bytes(name: str, signed: bool) -> int:
    """The largest MAVLink 2 frame of a message: its whole payload (extensions included, as pymavlink packs it)."""
    cls = mavlink.mavlink_map[getattr(mavlink, f"MAVLINK_MSG_ID_{name}")]
    return HEADER + cls.unpacker.size + CRC + (SIGNATURE if signed else 0)


def budget(rate_hz: float, signed: bool) -> tuple[dict[str, tuple[float, int]], dict[str, tuple[float, int]]]:
    """Per vehicle: {message: (Hz, frame bytes)} down (vehicle -> laptop) and up."""
    down = {n: (hz, frame_bytes(n, signed)) for n, hz in deploy_streams(rate_hz).items()}
    up = {n: (rate_hz if hz is None else hz, frame_bytes(n, signed)) for n, hz in UPLINK.items()}
    return down, up


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=50.0, help="control loop rate (Hz), default 50")
    ap.add_argument("--signed", action="store_true", help="MAVLink 2 signing on (13 more bytes a frame)")
    ap.add_argument("--vehicles", default="1,2,4,8,16")
    args = ap.parse_args(argv)
    down, up = budget(args.rate, args.signed)
    bd = sum(hz * b for hz, b in down.values())
    bu = sum(hz * b for hz, b in up.values())
    print(f"per vehicle at a {args.rate:g} Hz loop{' (signed)' if args.signed else ''}:")
    for label, table in (("down (vehicle -> laptop)", down), ("up (laptop -> vehicle)", up)):
        print(f"  {label}:")
        for name, (hz, b) in table.items():
            print(f"    {name:<22} {hz:5.1f} Hz x {b:3d} B = {hz * b:7.0f} B/s")
    print(f"  total: {bd:.0f} B/s down, {bu:.0f} B/s up, {bd + bu:.0f} B/s both ways\n")
    links = [("serial 57600 baud (full duplex, per direction)", 57600 / 10, False),
             ("serial 115200 baud", 115200 / 10, False),
             ("serial 230400 baud", 230400 / 10, False),
             ("serial 921600 baud (USB, or a shared UART to a companion)", 921600 / 10, False),
             ("SiK radio, 64 kbps air rate (half duplex, both directions share it)", 64000 / 8 * SIK_EFFICIENCY, True),
             ("SiK radio, 128 kbps air rate", 128000 / 8 * SIK_EFFICIENCY, True),
             ("SiK radio, 250 kbps air rate", 250000 / 8 * SIK_EFFICIENCY, True)]
    counts = [int(v) for v in args.vehicles.split(",")]
    print("| link | capacity (B/s) | vehicles it carries | " + " | ".join(f"{n} vehicles: load" for n in counts) + " |")
    print("|---|---:|---:|" + "---:|" * len(counts))
    for name, cap, half in links:
        need = (bd + bu) if half else max(bd, bu)
        fits = math.floor(cap / need)
        loads = [f"{100 * n * need / cap:.0f}%" for n in counts]
        print(f"| {name} | {cap:,.0f} | {fits} | " + " | ".join(loads) + " |")
    print(f"\n(SiK rows: {SIK_EFFICIENCY:.0%} of the air rate assumed usable; serial rows: the busier direction)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
