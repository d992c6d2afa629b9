"""MAVLink 2 signing on both ends: signed commands are obeyed; unsigned, wrongly signed and replayed ones
are dropped by the simulated vehicle and counted; key files fail with clear errors."""
import os
import stat

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from fb_helpers import vehicle_and_link, wait_for
from firmware_bridge import CommandTimeout, MavLink, SigningKeyError, VehicleNotFoundError, signing
from firmware_bridge.sim.cli import main as vehicle_main


class _Buf:
    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data += b


def arm_frame(key: bytes | None, timestamp: int | None = None, link_id: int = 1) -> bytes:
    """An arm command as some other transmitter on the radio link would send it."""
    out = _Buf()
    mav = mavlink.MAVLink(out, srcSystem=255, srcComponent=mavlink.MAV_COMP_ID_MISSIONPLANNER)
    if key is not None:
        signing.enable(mav, key, link_id=link_id)
        if timestamp is not None:
            mav.signing.timestamp = timestamp
    mav.send(mav.command_long_encode(1, 1, mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 21196, 0, 0, 0, 0, 0))
    return bytes(out.data)


@pytest.fixture
def key_file(tmp_path):
    p = tmp_path / "vehicle.key"
    signing.save_key(p, signing.new_key())
    return p


def test_signed_commands_accepted_others_rejected_and_counted(key_file):
    key = signing.load_key(key_file)
    with vehicle_and_link("pty", firmware="ardupilot", signing_key=str(key_file),
                          link_kwargs={"signing_key": key_file}) as (vehicle, link):
        assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        cmd = link.commands
        cmd.arm()
        assert vehicle.ap.armed
        cmd.disarm()
        good = vehicle.stats.frames_ok
        assert vehicle.mav.signing.goodsig_count >= good - 1 and link.mav.signing.goodsig_count > 10

        # other transmitters on the same line (a second radio): open the same serial device raw
        fd = os.open(vehicle.transport.slave_path, os.O_RDWR | os.O_NOCTTY)
        try:
            for _ in range(3):
                os.write(fd, arm_frame(None))                            # unsigned
            for _ in range(3):
                os.write(fd, arm_frame(signing.new_key()))               # signed with the wrong key
            os.write(fd, arm_frame(key, timestamp=1000))                 # right key, old timestamp: a replay
            assert wait_for(lambda: sum(vehicle.rejected.values()) >= 7, 2.0), vehicle.rejected
        finally:
            os.close(fd)
        assert vehicle.rejected[("unsigned", "COMMAND_LONG")] == 3
        assert vehicle.rejected[("bad signature", "COMMAND_LONG")] == 4
        assert vehicle.stats.unsigned_rejected == 3 and vehicle.stats.bad_signature == 4
        assert not vehicle.ap.armed
        # the forged frames (newer timestamps, same link id and sender) did not lock the real GCS out
        cmd.arm()
        assert vehicle.ap.armed
        cmd.disarm()


def test_unsigned_gcs_sees_the_vehicle_but_cannot_command_it(key_file):
    with vehicle_and_link("pty", firmware="px4", signing_key=str(key_file)) as (vehicle, link):
        assert link.info.firmware.value == "px4"      # signed telemetry is readable without the key
        assert vehicle.wait_until(lambda v: v.ap.ekf_ready, 3.0)
        link.commands.retries = 1
        with pytest.raises(CommandTimeout, match="no COMMAND_ACK"):
            link.commands.arm(force=True)
        assert not vehicle.ap.armed
        assert vehicle.rejected[("unsigned", "COMMAND_LONG")] >= 2
        assert vehicle.stats.unsigned_rejected >= 2


def test_signing_gcs_rejects_an_unsigned_vehicle(key_file):
    with vehicle_and_link("pty", firmware="ardupilot", link_kwargs={"signing_key": key_file},
                          connect=False) as (vehicle, link):
        link.open()
        with pytest.raises(VehicleNotFoundError, match="unsigned frames rejected"):
            link.wait_vehicle(timeout=1.5)


def test_setup_signing_turns_signing_on_in_the_vehicle(key_file):
    key = signing.load_key(key_file)
    with vehicle_and_link("pty", firmware="ardupilot") as (vehicle, link):
        link.setup_vehicle_signing(key)                 # over the trusted (USB) link
        assert vehicle.wait_until(lambda v: v.mav.signing.secret_key == key, 2.0)
        link.commands.retries = 1
        with pytest.raises(CommandTimeout):
            link.commands.arm(force=True)               # this link does not sign: now ignored
        assert vehicle.stats.unsigned_rejected >= 2


def test_key_files(tmp_path, capsys):
    with pytest.raises(SigningKeyError, match="not found"):
        signing.load_key(tmp_path / "missing.key")
    short = tmp_path / "short.key"
    short.write_text("abcd\n")
    with pytest.raises(SigningKeyError, match=r"short\.key.*64 hex"):
        signing.load_key(short)
    nothex = tmp_path / "nothex.key"
    nothex.write_text("z" * 64)
    with pytest.raises(SigningKeyError, match="not hex digits"):
        signing.load_key(nothex)
    empty = tmp_path / "empty.key"
    empty.write_text("")
    with pytest.raises(SigningKeyError, match="empty"):
        signing.load_key(empty)
    raw = tmp_path / "raw.key"
    raw.write_bytes(bytes(range(32)))
    assert signing.load_key(raw) == bytes(range(32))
    good = tmp_path / "good.key"
    assert signing.main(["key-from-passphrase", str(good), "correct horse"]) == 0
    assert signing.load_key(good) == signing.key_from_passphrase("correct horse")
    assert stat.S_IMODE(good.stat().st_mode) == 0o600
    os.chmod(good, 0o644)
    assert "readable by other users" in signing.key_permissions_warning(good)
    with pytest.raises(SigningKeyError, match="short.key"):
        MavLink("udpin:127.0.0.1:0", signing_key=short)
    assert vehicle_main(["--signing-key", str(short), "--duration", "0.1"]) == 2
    assert "short.key" in capsys.readouterr().err
