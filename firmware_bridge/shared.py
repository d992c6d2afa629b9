"""One endpoint, several MAVLink systems: a telemetry radio or a UDP port that carries a whole swarm.

A vehicle on a shared link hears every frame and acts on those addressed to its system id; a ground station
hears every vehicle and routes frames by the sender's system id. Both sides need the same thing from the
endpoint: one reader, whose bytes every user sees (each MAVLink parser drops the systems it does not want),
and writes that go out whole, one frame at a time, so that two users' frames never interleave.

A vehicle's side broadcasts the bytes: what a ground station sends is addressed inside the message
(target_system), so every vehicle must see every frame. A ground station's side routes by the sender
(`route_by_sender`): its reader parses each frame once with the robust parser (framing.FrameParser: CRC
checks, resynchronisation after garbage, which is counted in `stats`) and hands the parsed message (or, to
a link that checks signatures itself, the frame's bytes) only to the link of that system id. Broadcasting
instead made every link parse every vehicle's frames, N times the work on the laptop for N vehicles.

A ground station that commands every vehicle in the same instant (drone-deploy --swarm, once per tick) can hold
the writes and send them as one (`hold_writes` / `flush_writes`): a UDP port that answers every peer it hears
otherwise makes one system call per command and peer, each delivering and waking the receiver there and then.
MAVLink parsers read a stream, so several frames in one datagram or one serial write are read as if they had
come one by one.

The ground station's side re-opens a failed port itself (a USB radio unplugged and plugged back): the users'
reads report the failure once (LinkDownError), and the next view() after the port is back works again.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from .framing import FrameParser, LineStats
from .gate import ReaderGate
from .transport import LinkDownError, Transport


class SharedTransport:
    """One endpoint for several users: a reader thread hands every received chunk to each user's view; writes go
    out whole, one at a time.

    reopen: how to open the endpoint again after it failed (ground station side); None: the endpoint is never
    re-opened (a vehicle's served endpoint), failures are only reported. close_when_unused: close the endpoint
    when the last view is closed (a vehicle swarm), or keep it until close() (the ground station, whose links
    close their view and take a new one when they re-connect)."""

    def __init__(self, inner: Transport, reopen: Callable[[], Transport] | None = None,
                 close_when_unused: bool = True, reopen_interval: float = 0.25, route_by_sender: bool = False):
        self.inner: Transport | None = inner
        self.name = inner.name
        self.reopen = reopen
        self.close_when_unused = close_when_unused
        self.reopen_interval = reopen_interval
        self.reopened = 0
        self.route_by_sender = route_by_sender
        self.stats = LineStats()       # routing only: garbage and frames on the shared port
        self._parser = FrameParser(mavlink.MAVLink(None), self.stats) if route_by_sender else None
        self._views: list[SharedView] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._held: list[bytes] | None = None   # writes collected between hold_writes() and flush_writes()
        self._held_bytes = 0
        self._held_ok = True                     # False once part of the held batch failed to go out early
        self._running = True
        self.gate: ReaderGate | None = None   # set by a control loop (firmware_bridge/gate.py)
        self._reader = threading.Thread(target=self._read_loop, name=f"shared {inner.name}", daemon=True)

    @property
    def up(self) -> bool:
        return self.inner is not None

    def view(self, sysid: int | None = None) -> "SharedView":
        """A user's side of the endpoint; with route_by_sender, only the frames system `sysid` sends (None:
        every frame). LinkDownError while the endpoint is down."""
        if self.inner is None:
            raise LinkDownError(f"{self.name}: the shared port is down")
        v = SharedView(self, sysid)
        with self._lock:
            self._views.append(v)
            if not self._reader.is_alive() and self._running:
                self._reader.start()
        return v

    def _broadcast(self, item) -> None:
        with self._lock:
            views = list(self._views)
        for v in views:
            v.inbox.put(item)

    def _route(self, data: bytes) -> None:
        """Each parsed frame's bytes to the view of its sender (and to the views that take everything)."""
        with self._lock:
            views = list(self._views)
        for msg in self._parser.feed(data):
            if msg.get_type() == "BAD_DATA":
                continue
            src = msg.get_srcSystem()
            buf = None
            for v in views:
                if v.sysid is None or v.sysid == src:
                    if v.deliver is not None and v.sysid == src:
                        v.deliver(msg)          # already parsed and checked here: no second parse
                        continue
                    buf = buf if buf is not None else bytes(msg.get_msgbuf())
                    v.inbox.put(buf)

    def _read_loop(self) -> None:
        while self._running:
            inner = self.inner
            if inner is None:
                self._try_reopen()
                continue
            try:
                data = inner.read(0.05)
            except LinkDownError as exc:
                self._broadcast(exc)
                if self.reopen is None:
                    time.sleep(0.05)
                    continue
                with self._write_lock:
                    self.inner = None
                inner.close()
                continue
            if data:
                gate = self.gate
                if gate is not None:
                    gate.wait()
                if self._parser is not None:
                    self._route(data)
                else:
                    self._broadcast(data)

    def _try_reopen(self) -> None:
        time.sleep(self.reopen_interval)
        if not self._running or self.reopen is None:
            return
        try:
            t = self.reopen()
        except (LinkDownError, OSError):
            return
        with self._write_lock:
            self.inner = t
        self.reopened += 1

    MAX_BATCH = 1400   # bytes held before they go out anyway: one datagram that fits an Ethernet frame

    def write(self, data: bytes) -> bool:
        with self._write_lock:
            if self.inner is None:
                return False
            if self._held is None:
                return self.inner.write(data)
            if self._held and self._held_bytes + len(data) > self.MAX_BATCH:
                self._held_ok = self._write_held() and self._held_ok
            self._held.append(data)
            self._held_bytes += len(data)
            return True

    def _write_held(self) -> bool:
        """The held frames in one write (the caller holds the write lock); the hold goes on, empty."""
        batch, self._held, self._held_bytes = b"".join(self._held), [], 0
        if self.inner is None:
            return False
        try:
            return self.inner.write(batch)
        except LinkDownError:
            return False   # the reader reports the failure to every link and re-opens the port

    def hold_writes(self) -> None:
        """Collect every user's writes from now until flush_writes() (each returns True: queued)."""
        with self._write_lock:
            if self._held is None:
                self._held, self._held_bytes, self._held_ok = [], 0, True

    def flush_writes(self) -> bool:
        """Send what was held, in one write; False if the port is down or a write of the batch failed (those
        frames are then lost, as each would have been on its own). Writes go straight out again afterwards."""
        with self._write_lock:
            if self._held is None:
                return True
            ok = (self._write_held() if self._held else True) and self._held_ok
            self._held = None
            return ok

    def release(self, view: "SharedView") -> None:
        with self._lock:
            if view in self._views:
                self._views.remove(view)
            last = not self._views
        if last and self.close_when_unused:
            self.close()

    def close(self) -> None:
        if not self._running:
            return
        self._running = False
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            self._reader.join(timeout=1.0)
        with self._write_lock:
            inner, self.inner = self.inner, None
        if inner is not None:
            inner.close()


class SharedView(Transport):
    """One user's side of a SharedTransport: reads what the endpoint received since the last read.

    deliver: set by a link that takes its system's messages already parsed (MavLink does, when it does not
    check signatures itself): the shared reader then hands them over instead of their bytes."""

    def __init__(self, shared: SharedTransport, sysid: int | None = None):
        self.shared = shared
        self.sysid = sysid
        self.deliver = None
        self.name = shared.name
        self.inbox: "queue.Queue[bytes | LinkDownError]" = queue.Queue()

    @property
    def path(self):
        return getattr(self.shared.inner, "path", None)

    def read(self, timeout: float) -> bytes:
        try:
            item = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return b""
        if isinstance(item, LinkDownError):
            raise item
        chunks = [item]
        while True:   # everything already waiting, in one go
            try:
                more = self.inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(more, LinkDownError):
                self.inbox.put(more)
                break
            chunks.append(more)
        return b"".join(chunks)

    def write(self, data: bytes) -> bool:
        return self.shared.write(data)

    def close(self) -> None:
        self.shared.release(self)


def discover_vehicles(shared: SharedTransport, seconds: float) -> list[int]:
    """System ids of the vehicles heard on a shared port within `seconds` (their heartbeats: not ground
    stations, radios, cameras or gimbals), in ascending order."""
    not_vehicles = (mavlink.MAV_TYPE_GCS, mavlink.MAV_TYPE_ONBOARD_CONTROLLER, mavlink.MAV_TYPE_ADSB,
                    mavlink.MAV_TYPE_GIMBAL, mavlink.MAV_TYPE_CAMERA)
    view = shared.view()
    parser = FrameParser(mavlink.MAVLink(None))
    found: set[int] = set()
    t_end = time.monotonic() + seconds
    try:
        while time.monotonic() < t_end:
            try:
                data = view.read(min(0.1, max(0.0, t_end - time.monotonic())))
            except LinkDownError:
                continue
            for m in parser.feed(data) if data else ():
                if (m.get_type() == "HEARTBEAT" and m.type not in not_vehicles
                        and m.autopilot != mavlink.MAV_AUTOPILOT_INVALID):
                    found.add(m.get_srcSystem())
    finally:
        view.close()
    return sorted(found)
