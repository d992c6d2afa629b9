"""Byte pipes under the MAVLink link: serial ports (pyserial), UDP, TCP, and the simulated vehicle's pty.

Endpoint strings follow pymavlink/MAVProxy conventions so that what works there works here:
  /dev/ttyUSB0 (with a baud rate), COM3, /dev/pts/7      serial port (a pty is a serial port to pyserial)
  udpin:0.0.0.0:14550   listen on a UDP port; reply to whoever last sent to us (QGC's default port)
  udpout:127.0.0.1:14550 send to a fixed UDP address (bind an ephemeral local port)
  udp:HOST:PORT          same as udpin (pymavlink's default direction for "udp:")
  tcp:127.0.0.1:5760     connect to a TCP server (ArduPilot SITL's serial0)
  tcpin:0.0.0.0:5760     accept one TCP client at a time (what the simulated vehicle offers)
  pty, pty:LINK          (vehicle only, serve_endpoint) create a pseudo-terminal; its slave path is what a GCS
                         opens; LINK: a symlink kept pointing at it

A transport either returns bytes, returns b"" when nothing came within the timeout, or raises
LinkDownError when the port itself is gone (USB unplugged, pty closed, TCP peer closed). It never
decides what a silence means; the link does (staleness).
"""
from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
import tty
from pathlib import Path


class LinkDownError(ConnectionError):
    """The port or socket under the link failed; the message says which and why."""


class EndpointError(ValueError):
    """An endpoint string that names no usable port."""


class Transport:
    name = "transport"

    def read(self, timeout: float) -> bytes:
        raise NotImplementedError

    def write(self, data: bytes) -> bool:
        """Send bytes; False when they could not go anywhere yet (no peer), LinkDownError when broken."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _host_port(spec: str, endpoint: str) -> tuple[str, int]:
    host, sep, port = spec.rpartition(":")
    if not sep or not host:
        raise EndpointError(f"{endpoint!r}: expected HOST:PORT after the scheme")
    try:
        p = int(port)
    except ValueError:
        raise EndpointError(f"{endpoint!r}: port {port!r} is not a number") from None
    if not 0 <= p <= 65535:
        raise EndpointError(f"{endpoint!r}: port {p} out of range")
    return host, p


class SerialTransport(Transport):
    """A serial port through pyserial. A pty is opened exactly like /dev/ttyUSB0."""

    def __init__(self, path: str, baud: int = 57600):
        import serial  # pyserial

        self.name = path
        self.baud = int(baud)
        try:
            self.port = serial.Serial(path, self.baud, timeout=0, write_timeout=0.5, exclusive=True,
                                      rtscts=False, dsrdtr=False, xonxoff=False)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkDownError(f"{path}: cannot open serial port at {baud} baud: {exc}") from None
        try:
            self.port.reset_input_buffer()  # bytes queued before we opened belong to no one
        except (serial.SerialException, OSError, AttributeError):
            pass
        self._serial = serial

    def read(self, timeout: float) -> bytes:
        try:
            r, _, _ = select.select([self.port.fileno()], [], [], timeout)
            if not r:
                return b""
            n = max(1, self.port.in_waiting)
            data = self.port.read(n)
        except (self._serial.SerialException, OSError, TypeError, ValueError) as exc:
            raise LinkDownError(f"{self.name}: serial port failed: {exc}") from None
        if not data:
            # select said readable but nothing came: the device went away (pyserial raises for most,
            # some drivers just return nothing)
            raise LinkDownError(f"{self.name}: serial port returned no data (device disconnected?)")
        return data

    def write(self, data: bytes) -> bool:
        try:
            self.port.write(data)
        except self._serial.SerialTimeoutException:
            return False
        except (self._serial.SerialException, OSError, TypeError, ValueError) as exc:
            raise LinkDownError(f"{self.name}: serial write failed: {exc}") from None
        return True

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:
            pass


class UdpTransport(Transport):
    """UDP. udpout has a fixed peer. Listening (udpin) learns its peers from the datagrams it receives and sends
    to every peer heard from in the last PEER_TIMEOUT_S seconds: several vehicles (SITL instances, WiFi bridges,
    a second simulator process) sending to one ground-station port from their own addresses all hear it, as
    with QGroundControl or mavlink-router; answering only the last sender would leave the others deaf."""

    PEER_TIMEOUT_S = 10.0

    def __init__(self, bind: tuple[str, int] | None, peer: tuple[str, int] | None, name: str):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if bind is not None:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self.sock.bind(bind)
            else:
                self.sock.bind(("0.0.0.0" if peer is None or peer[0] not in ("127.0.0.1", "localhost")
                                else "127.0.0.1", 0))
        except OSError as exc:
            self.sock.close()
            raise LinkDownError(f"{name}: cannot bind UDP socket: {exc.strerror or exc}") from None
        self.sock.setblocking(False)
        self.peer = peer                 # the last peer (fixed for udpout)
        self.fixed_peer = peer is not None and bind is None
        self.peers: dict[tuple[str, int], float] = {}   # listening: address -> when last heard

    @property
    def local_address(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def read(self, timeout: float) -> bytes:
        try:
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                return b""
            data, addr = self.sock.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            return b""
        except ConnectionRefusedError:
            return b""  # ICMP port unreachable from an earlier send: the peer is not up (yet)
        except OSError as exc:
            raise LinkDownError(f"{self.name}: UDP receive failed: {exc.strerror or exc}") from None
        if not self.fixed_peer:
            self.peer = addr
            self.peers[addr] = time.monotonic()
        return data

    def _destinations(self) -> list[tuple[str, int]]:
        if self.fixed_peer or len(self.peers) <= 1:
            return [] if self.peer is None else [self.peer]
        now = time.monotonic()
        recent = [a for a, t in self.peers.items() if now - t <= self.PEER_TIMEOUT_S]
        return recent or [self.peer]

    def write(self, data: bytes) -> bool:
        dests = self._destinations()
        if not dests:
            return False
        ok = False
        for dest in dests:
            try:
                self.sock.sendto(data, dest)
                ok = True
            except (BlockingIOError, ConnectionRefusedError):
                continue
            except OSError as exc:
                if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENOBUFS):
                    continue
                raise LinkDownError(f"{self.name}: UDP send failed: {exc.strerror or exc}") from None
        return ok

    def close(self) -> None:
        self.sock.close()


class TcpClientTransport(Transport):
    def __init__(self, host: str, port: int, name: str, connect_timeout: float = 2.0):
        self.name = name
        try:
            self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        except OSError as exc:
            raise LinkDownError(f"{name}: cannot connect: {exc.strerror or exc}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)

    def read(self, timeout: float) -> bytes:
        try:
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                return b""
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            raise LinkDownError(f"{self.name}: TCP receive failed: {exc.strerror or exc}") from None
        if not data:
            raise LinkDownError(f"{self.name}: TCP connection closed by the other end")
        return data

    def write(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
        except BlockingIOError:
            return False
        except OSError as exc:
            raise LinkDownError(f"{self.name}: TCP send failed: {exc.strerror or exc}") from None
        return True

    def close(self) -> None:
        self.sock.close()


class TcpServerTransport(Transport):
    """Accepts one client at a time; a newer client replaces the older one (like a flight controller's
    TCP port in SITL). While no client is connected reads time out and writes go nowhere."""

    def __init__(self, host: str, port: int, name: str):
        self.name = name
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.server.bind((host, port))
        except OSError as exc:
            self.server.close()
            raise LinkDownError(f"{name}: cannot listen: {exc.strerror or exc}") from None
        self.server.listen(1)
        self.server.setblocking(False)
        self.client: socket.socket | None = None

    @property
    def local_address(self) -> tuple[str, int]:
        return self.server.getsockname()

    def read(self, timeout: float) -> bytes:
        socks = [self.server] + ([self.client] if self.client is not None else [])
        r, _, _ = select.select(socks, [], [], timeout)
        if self.server in r:
            try:
                conn, _ = self.server.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.setblocking(False)
                if self.client is not None:
                    self.client.close()
                self.client = conn
            except OSError:
                pass
            return b""
        if self.client is not None and self.client in r:
            try:
                data = self.client.recv(65536)
            except (BlockingIOError, InterruptedError):
                return b""
            except OSError:
                data = b""
            if not data:
                self.client.close()
                self.client = None
            return data
        return b""

    def write(self, data: bytes) -> bool:
        if self.client is None:
            return False
        try:
            self.client.sendall(data)
        except BlockingIOError:
            return False
        except OSError:
            self.client.close()
            self.client = None
            return False
        return True

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.server.close()


class PtyTransport(Transport):
    """The vehicle's end of a pseudo-terminal pair; a GCS opens `slave_path` as a serial port.

    The slave stays open here too (as socat does) so that a GCS closing and re-opening the port does not
    tear the pty down; writes that nobody reads are dropped instead of blocking (a UART transmits into
    the void as well). `link_path`, when given, is a symlink to the slave that is kept pointing at the
    current pty, so a re-plugged vehicle keeps its name the way /dev/ttyUSB0 or /dev/serial/by-id does.
    """

    def __init__(self, link_path: str | None = None):
        self._lock = threading.Lock()
        self.link_path = link_path
        self._open()

    def _open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.master, self.slave = master, slave
        self.slave_path = os.ttyname(slave)
        self.name = self.slave_path
        if self.link_path:
            tmp = f"{self.link_path}.tmp{os.getpid()}"
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            os.symlink(self.slave_path, tmp)
            os.replace(tmp, self.link_path)

    @property
    def path(self) -> str:
        return self.link_path or self.slave_path

    def read(self, timeout: float) -> bytes:
        with self._lock:
            fd = self.master
        if fd < 0:
            raise LinkDownError("pty closed")
        try:
            r, _, _ = select.select([fd], [], [], timeout)
            if not r:
                return b""
            return os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            if exc.errno == errno.EBADF and self.master < 0:
                raise LinkDownError("pty closed") from None
            if exc.errno == errno.EIO:
                return b""  # no slave open at the moment
            raise LinkDownError(f"{self.slave_path}: pty read failed: {exc.strerror}") from None

    def write(self, data: bytes) -> bool:
        fd = self.master
        if fd < 0:
            return False
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):
                return False
            raise LinkDownError(f"{self.slave_path}: pty write failed: {exc.strerror}") from None
        return n == len(data)

    def unplug(self) -> None:
        """Close both ends: to the GCS this is a USB cable pulled out."""
        with self._lock:
            for fd in (self.master, self.slave):
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.master = self.slave = -1
        if self.link_path:
            try:
                os.unlink(self.link_path)
            except FileNotFoundError:
                pass

    def replug(self) -> str:
        """A new pty (a new /dev/pts/N); the link path, if any, follows it. Returns the path to open."""
        self.unplug()
        with self._lock:
            self._open()
        return self.path

    def close(self) -> None:
        self.unplug()


def open_endpoint(endpoint: str, baud: int = 57600) -> Transport:
    """A GCS-side transport for an endpoint string (see the module docstring)."""
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise EndpointError("empty endpoint; give a serial port like /dev/ttyUSB0 or udpin:0.0.0.0:14550")
    e = endpoint.strip()
    if e.startswith("udpin:") or e.startswith("udp:"):
        host, port = _host_port(e.split(":", 1)[1], e)
        return UdpTransport((host, port), None, e)
    if e.startswith("udpout:"):
        host, port = _host_port(e.split(":", 1)[1], e)
        return UdpTransport(None, (host, port), e)
    if e.startswith("tcp:"):
        host, port = _host_port(e.split(":", 1)[1], e)
        return TcpClientTransport(host, port, e)
    if e.startswith("tcpin:"):
        host, port = _host_port(e.split(":", 1)[1], e)
        return TcpServerTransport(host, port, e)
    if ":" in e and not e.upper().startswith("COM") and not Path(e).exists():
        raise EndpointError(f"{e!r}: unknown endpoint; use a serial port path, udpin:, udpout:, tcp: or tcpin:")
    return SerialTransport(e, baud)


def serve_endpoint(endpoint: str, baud: int = 115200) -> Transport:
    """The vehicle-side transport for an endpoint string: `pty` or `pty:LINK` (a new pseudo-terminal, LINK a
    symlink kept to it), else the same forms as open_endpoint, seen from the vehicle (udpout: sends to a
    ground station listening there, udpin: and tcpin: listen for one, a serial path is a UART)."""
    e = endpoint.strip() if isinstance(endpoint, str) else ""
    if e == "pty" or e.startswith("pty:"):
        return PtyTransport(e[4:] or None)
    return open_endpoint(e, baud)


def connect_hint(transport: Transport) -> str:
    """The endpoint string a ground station opens to reach a vehicle served on `transport`."""
    if isinstance(transport, PtyTransport):
        return transport.slave_path
    if isinstance(transport, TcpServerTransport):
        host, port = transport.local_address
        return f"tcp:{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
    if isinstance(transport, UdpTransport):
        if transport.fixed_peer:
            return f"udpin:0.0.0.0:{transport.peer[1]}"
        host, port = transport.local_address
        return f"udpout:{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
    return transport.name
