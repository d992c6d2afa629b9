"""A swarm flight's start: connect every vehicle, place each in the swarm frame, lay out the formation and run
every vehicle's preflight (the SwarmFlight mixin for the steps before anything is armed; deploy/swarm/flight.py
describes the whole sequence)."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

import drone_sim
from firmware_bridge import CommandError, MavLink
from firmware_bridge.frames import enu_offset, ned_to_enu
from firmware_bridge.modes import Firmware
from firmware_bridge.shared import SharedTransport, discover_vehicles
from firmware_bridge.transport import open_endpoint

from ..command_map import CommandMapper
from ..config import vec_list
from ..flight import Refused, deploy_streams
from ..flightlog import FlightLog
from ..preflight import FAIL, OK, WARN, Check, PreflightRefused, read_param, run_preflight, summary_of
from ..safety import SafetyMonitor
from ..targets import Fence
from .config import SwarmConfig
from .formation import NEIGHBOURS, Formation, FormationError
from .member import Member

FORMATION_MIN_HEIGHT_M = 1.5   # the swarm task's lowest formation centre (drone_env.h env_build_formation)


class SwarmSetup:
    """Mixin of SwarmFlight: everything before the first vehicle arms."""

    def _connect(self) -> None:
        cfg, d = self.config, self.config.deploy
        streams = deploy_streams(float(d.rate_hz or self.policy.control_hz))
        if len(cfg.ports) == 1 and (cfg.sysids is None or len(cfg.sysids) > 1):
            port = cfg.ports[0]
            try:
                inner = open_endpoint(port, d.baud)
            except Exception as exc:
                raise Refused(f"link: {port}: {type(exc).__name__}: {exc}") from None
            self.shared = SharedTransport(inner, reopen=lambda: open_endpoint(port, d.baud), close_when_unused=False,
                                          route_by_sender=True)
            sysids = cfg.sysids
            if sysids is None:
                self.say(f"listening {cfg.discover_s:g} s for vehicles on {port}")
                sysids = discover_vehicles(self.shared, cfg.discover_s)
                if not sysids:
                    raise Refused(f"link: no vehicle heartbeat on {port} within {cfg.discover_s:g} s")
                self.say(f"vehicles on {port}: system ids {', '.join(map(str, sysids))}")
            shared = self.shared
            links = [MavLink(port, d.baud, target_system=s, signing_key=d.signing_key, streams=streams,
                             opener=lambda s=s: shared.view(s)) for s in sysids]
            for link in links[1:]:   # one ground-station heartbeat on the shared link is enough for all
                link.heartbeat_enabled = False
        else:
            links = [MavLink(p, d.baud, signing_key=d.signing_key, streams=streams,
                             target_system=None if cfg.sysids is None else cfg.sysids[0]) for p in cfg.ports]
        for k, link in enumerate(links):
            log = FlightLog(self.dir / f"connecting-{k + 1}.jsonl")   # renamed vehicle-SYSID.jsonl once known
            self.members.append(Member(k, link, log))
        futures = [self.pool.submit(m.link.connect, d.connect_timeout_s) for m in self.members]
        errors = []
        for m, f in zip(self.members, futures):
            try:
                info = f.result()
            except Exception as exc:
                errors.append(f"{m.link.endpoint}"
                              f"{'' if m.link.target_system is None else f' sysid {m.link.target_system}'}: "
                              f"{type(exc).__name__}: {exc}")
                continue
            m.sysid = info.system_id
            m.log.event("vehicle", firmware=info.firmware.value, version=info.version_text, sysid=info.system_id,
                        endpoint=m.link.endpoint)
            m.log.event("streams", requested=m.link.streams)
        if len(self.members) < NEIGHBOURS + 1:
            errors.append(f"{len(self.members)} vehicles: a swarm flight needs at least {NEIGHBOURS + 1}. Each vehicle's "
                          f"observation carries its {NEIGHBOURS} nearest neighbours, and the swarm policies were trained "
                          "with all of them present; with fewer the policy sees what it never saw (tilt past 60 deg "
                          "with 3 simulated vehicles)")
        seen = [m.sysid for m in self.members if m.sysid is not None]
        if len(set(seen)) != len(seen):
            errors.append(f"two endpoints reach the same system id ({seen}): give each vehicle its own SYSID_THISMAV "
                          "/ MAV_SYS_ID")
        for m in self.members:   # per-vehicle log names by system id, now that they are known
            if m.sysid is not None:
                m.log = _renamed(m.log, self.dir / f"vehicle-{m.sysid}.jsonl")
        if errors:
            raise Refused("link: " + "; ".join(errors))
        fws = {m.link.info.firmware for m in self.members}
        if fws != {Firmware.ARDUPILOT}:
            raise Refused("drone-deploy --swarm flies ArduPilot vehicles (GUIDED position hold between ticks); "
                          f"found {', '.join(sorted(f.value for f in fws))}")

    def _place(self) -> None:
        """Every vehicle's local frame in the swarm frame (ENU from the first vehicle's home)."""
        homes = list(self.pool.map(lambda m: m.link.commands.request_message("HOME_POSITION", timeout=2.0),
                                   self.members))
        missing = [m.name for m, h in zip(self.members, homes) if h is None]
        if missing:
            raise Refused(f"no HOME_POSITION from {', '.join(missing)}: without a home the vehicles cannot be placed "
                          "in one frame (wait for a GPS fix, or set the home with a ground station)")
        ref = (homes[0].latitude * 1e-7, homes[0].longitude * 1e-7, homes[0].altitude * 1e-3)
        for m, h in zip(self.members, homes):
            home_swarm = enu_offset(ref, (h.latitude * 1e-7, h.longitude * 1e-7, h.altitude * 1e-3))
            home_local = ned_to_enu((h.x, h.y, h.z))
            m.home_swarm = home_swarm
            m.origin_local = home_local - home_swarm
            m.log.header(config=_config_dict(self.config), limits=self.config.deploy.limits.as_dict(),
                         rate_hz=float(self.config.deploy.rate_hz or self.policy.control_hz),
                         policy={"path": str(self.policy.path), "metadata": {k: self.policy.metadata[k] for k in (
                             "obs_layout_version", "obs_size", "action_mode", "action_scaling", "control_hz",
                             "tasks", "training_steps", "project_version", "recurrent")}},
                         swarm={"sysid": m.sysid, "index": m.index, "home_swarm": vec_list(home_swarm, 3),
                                "vehicles": [x.sysid for x in self.members]})
            m.log.event("place", home_swarm=vec_list(home_swarm, 3), origin_local=vec_list(m.origin_local, 3))

    def _make_formation(self) -> None:
        cfg, d = self.config, self.config.deploy
        n = len(self.members)
        homes = np.array([m.home_swarm for m in self.members])
        centre = homes.mean(axis=0)
        if d.targets:
            first = np.array(d.targets[0], dtype=float)
        else:
            first = np.array([centre[0], centre[1], 0.0])
        if cfg.formation_file:
            f = Formation.from_file(cfg.formation_file, n, first)
        else:
            f = Formation.shape(cfg.formation, n, cfg.spacing_m, first, cfg.yaw_deg, cfg.orbit_omega)
        if not d.targets:
            # as high as the swarm task puts a formation's centre: its lowest slot 1 m up, the centre at least
            # 1.5 m (env_build_formation); the policy has not learnt formations nearer the ground
            lowest = float(np.min(f.slots(0.0)[0][:, 2] - first[2]))
            f.move_to((first[0], first[1], max(FORMATION_MIN_HEIGHT_M, 1.0 - lowest, d.takeoff_alt_m - lowest)))
        self.centres = [np.array(t, dtype=float) for t in d.targets] or [f.center.copy()]
        self.centre_index = 0
        if f.min_spacing() <= cfg.min_separation_m:
            raise FormationError(f"the {f.name} formation's slots are {f.min_spacing():.2f} m apart, not more than the "
                                 f"separation guard's minimum {cfg.min_separation_m:g} m")
        self.formation = f
        self.fence = Fence.around((centre[0], centre[1], float(np.min(homes[:, 2]))), d.limits)

    def _check_slots(self) -> list[str]:
        """Problems with the formation at every centre it will fly to: each slot inside the fence."""
        problems = []
        f = self.formation
        for c in self.centres:
            saved = f.center
            f.move_to(c)
            for s, p in enumerate(f.slots(0.0)[0]):
                try:
                    self.fence.check_target(p)
                except Exception as exc:
                    problems.append(f"slot {s + 1} at centre {tuple(round(float(x), 2) for x in c)}: {exc}")
            f.move_to(saved)
        return problems

    def _preflight_all(self) -> list[str]:
        """Every vehicle's preflight, at once; the failures as 'vehicle N: check: detail'."""
        d = self.config.deploy
        slot_problems = self._check_slots()
        hover = self.policy.hover_action
        max_rate = self.policy.max_rate if self.policy.action_mode == "ctbr" else None

        def one(m: Member):
            policy = self.policy.clone(f"preflight {m.sysid}")

            def first_action(pos_local, frame):
                est = m.estimate(time.monotonic())
                slots = self.formation.slots(0.0)[0]
                near = slots[int(np.argmin(np.linalg.norm(slots - est.position, axis=1)))]
                obs = drone_sim.observe(est.position, est.velocity, est.quaternion, est.rates, hover, near,
                                        task="swarm", drone=self.drone)
                return policy(obs)

            lines: list[str] = []
            pre = run_preflight(m.link, m.counter, policy, d, check_targets=lambda _h, _f: list(slot_problems),
                                first_action=first_action,
                                hover_thrust=drone_sim.hover_thrust_fraction(self.drone)
                                if self.policy.action_mode == "ctbr" else None,
                                say=lambda s: lines.append(s))
            return pre

        futures = [self.pool.submit(one, m) for m in self.members]
        problems = []
        for m, f in zip(self.members, futures):
            try:
                pre = f.result()
            except PreflightRefused as exc:
                m.log.event("preflight", ok=False, checks=summary_of(exc.checks))
                bad = [c for c in exc.checks if c.status == FAIL]
                problems.extend(f"{m.name}: {c.name}: {c.detail}" for c in bad)
                continue
            except Exception as exc:
                m.log.event("preflight", ok=False, checks=[], error=f"{type(exc).__name__}: {exc}")
                problems.append(f"{m.name}: {type(exc).__name__}: {exc}")
                continue
            checks = list(pre.checks) + self._swarm_checks(m)
            m.log.event("preflight", ok=True, checks=summary_of(checks), frame=pre.frame,
                        semantics=pre.semantics, command_path=pre.command_path)
            m.preflight = pre
            m.guid_options_to_set = pre.guid_options_to_set
            m.safety = SafetyMonitor(d.limits, self.fence, pre.cells)
            m.mapper = CommandMapper(m.link.commands, self.policy.action_mode, max_rate)
            for c in checks:
                if c.status == WARN:
                    self.say(f"{m.name}: {c}")
        if not problems:
            self.say(f"preflight passed on {len(self.members)} vehicles")
        return problems

    def _swarm_checks(self, m: Member) -> list[Check]:
        """What a swarm needs beyond a single flight: a link-loss failsafe that lands where the vehicle is."""
        fs = read_param(m.link, "FS_GCS_ENABLE")
        if fs is None:
            return [Check("swarm failsafe", WARN, "FS_GCS_ENABLE unreadable")]
        # ArduCopter FS_GCS_ENABLE: 1 RTL, 3 SmartRTL or RTL, 4 SmartRTL or Land, 5 Land
        if int(fs) in (1, 3):
            return [Check("swarm failsafe", WARN, f"FS_GCS_ENABLE={int(fs)} returns home on a lost link: the climb to "
                          "RTL_ALT and the flight home cross the formation; 5 (land) suits a swarm")]
        return [Check("swarm failsafe", OK, f"FS_GCS_ENABLE={int(fs)}")]

    def _write_guid_options(self) -> bool:
        ok = True
        for m in self.members:
            if m.guid_options_to_set is None:
                continue
            try:
                m.old_guid_options = m.link.commands.get_param("GUID_OPTIONS")
                m.link.commands.set_param("GUID_OPTIONS", m.guid_options_to_set)
                m.log.event("command", what="GUID_OPTIONS", value=m.guid_options_to_set)
            except CommandError as exc:
                m.log.event("error", detail=f"could not set GUID_OPTIONS: {exc}")
                self.say(f"{m.name}: could not set GUID_OPTIONS: {exc}")
                ok = False
        return ok


def _renamed(log: FlightLog, path: Path) -> FlightLog:
    """The same log under another name (vehicle-SYSID once the system id is known): nothing written is lost."""
    if log.path == path:
        return log
    log.sync()
    log.path.rename(path)
    log.path = path
    return log


def _config_dict(cfg: SwarmConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["deploy"].pop("limits", None)
    if d["deploy"].get("signing_key"):
        d["deploy"]["signing_key"] = "(set)"
    return d
