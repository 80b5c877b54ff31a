#!/usr/bin/env python3
"""Writes hand-made seed inputs for the fuzz targets into DIR/<target>/.

The committed corpus (corpus/<target>/) is these seeds plus what the fuzzer found,
minimized with `cargo fuzz cmin`; rerun this only to start a corpus from scratch:
    python3 tests/fuzz/make_seeds.py tests/fuzz/target/seeds
Record layouts follow sensor-ebpf/common/src/lib.rs (#[repr(C)], little endian):
Header 72 bytes, ExecEvent 5216, ForkEvent 72, ExitEvent 80, FileEvent 1120,
ConnectEvent 104.
"""
import os
import struct
import sys

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def header(kind, flags=0, comm=b"bash"):
    # kind flags ktime pid tgid ppid uid gid loginuid cgroup_id mnt_ns pid_ns comm[16]
    return struct.pack("<IIQIIIIIIQII16s", kind, flags, 123456789, 43, 42, 1, 0, 0,
                       0xFFFFFFFF, 4242, 4026531840, 4026531836, comm)


def exec_rec(filename, args, flags=0):
    body = struct.pack("<IIQII", 2049, len(filename), 1234, len(args), 0)
    return (header(1, flags) + body + filename.ljust(1024, b"\0")[:1024]
            + args.ljust(4096, b"\0")[:4096])


def file_rec(kind, path, ret=3, flags=0):
    body = struct.pack("<qiIII", ret, -100, 0o101, 0o644, len(path))
    return header(kind, flags) + body + path.ljust(1024, b"\0")[:1024]


def connect_rec(family, addr, port=443):
    return header(8) + struct.pack("<qiHH16s", 0, 3, family, port, addr)


def decode_seeds():
    s = {
        "exec": exec_rec(b"/usr/bin/curl", b"curl\0-s\0http://x/\0"),
        "exec_trunc": exec_rec(b"/tmp/x", b"a" * 4096, flags=0b100 | 0b1000),
        "exec_memfd": exec_rec(b"memfd:x", b"\xff\0", flags=0b10 | 0b1 | 0b100000),
        "fork": header(2),
        "exit_code": header(3) + struct.pack("<II", 3 << 8, 0),
        "exit_signal": header(3) + struct.pack("<II", 9, 0),
        "open": file_rec(4, b"/etc/shadow"),
        "chmod": file_rec(5, b"/tmp/x", ret=-1),
        "memfd": file_rec(6, b"x"),
        "unlink": file_rec(7, b"/var/log/auth.log"),
        "connect4": connect_rec(2, bytes([10, 0, 0, 1]) + bytes(12)),
        "connect6": connect_rec(10, bytes(15) + b"\x01"),
        "short": header(1)[:40],
    }
    return {k: v for k, v in s.items()}


def rules_condition_seeds():
    with open(os.path.join(ROOT, "rules", "saker_rules.yaml")) as f:
        docs = yaml.safe_load(f)
    out = {}
    for i, item in enumerate(docs or []):
        if isinstance(item, dict) and "condition" in item:
            out[f"rules_{i}"] = str(item["condition"]).encode()
    out.update({
        "ops": b'proc.name in (bash, "sh") and not fd.name startswith /etc '
               b'or proc.cmdline contains "a\\"b" and fd.net = 10.0.0.0/8',
        "index": b"proc.aname[2] = sh and proc.pid > 1 and evt.type exists",
        "glob": b"fd.name glob '/tmp/*' or fd.name pmatch (/etc, /usr) or proc.name icontains X",
    })
    return out


def rules_yaml_seeds():
    with open(os.path.join(ROOT, "rules", "saker_rules.yaml"), "rb") as f:
        project = f.read()
    return {
        "project_rules": project,
        "small": b"""- list: shells
  items: [bash, sh]
- macro: spawned
  condition: evt.type in (execve, execveat)
- rule: Shell
  desc: a shell
  condition: spawned and proc.name in (shells)
  output: shell %proc.name (%proc.cmdline)
  priority: WARNING
  tags: [T1059]
""",
        "override": b"""- required_engine_version: 0.10.0
- rule: A
  desc: a
  condition: proc.name = a
  output: a
  priority: NOTICE
- rule: A
  condition: and proc.pid > 1
  override:
    condition: append
- rule: A
  enabled: false
""",
        "exceptions": b"""- rule: B
  desc: b
  condition: evt.type = open and fd.name startswith /etc
  output: "b %fd.name"
  priority: ERROR
  exceptions:
    - name: ok
      fields: [proc.name, fd.name]
      comps: [=, startswith]
      values:
        - [vi, /etc/x]
""",
    }


def cgroup_seeds():
    cid = "0123456789abcdef" * 4
    uid = "1b2c3d4e-0000-1111-2222-333344445555"
    return {
        "k8s_io": f"/k8s.io/{cid}".encode(),
        "cgroupfs": f"/kubepods/burstable/pod{uid}/{cid}".encode(),
        "systemd": (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
                    f"{uid.replace('-', '_')}.slice/cri-containerd-{cid}.scope").encode(),
        "colon": f"0::/kubepods-burstable-pod{uid}.slice:cri-containerd:{cid}".encode(),
        "docker": f"/docker/{cid}\n/system.slice/docker-{cid}.scope".encode(),
        "crio": f"/crio-{cid}.scope\n/crio-conmon-{cid}.scope".encode(),
        "podman": f"/machine.slice/libpod-{cid}.scope\n/libpod_parent/libpod-conmon-{cid}".encode(),
        "hybrid": (f"12:memory:/docker/{cid}\n1:name=systemd:/user.slice\n"
                   f"0::/system.slice/sshd.service (deleted)\n").encode(),
        "host": b"0::/\n",
    }


def store_filter_seeds():
    return {
        "exact": b"priority >= WARNING and k8s.ns.name in (default, kube-system)",
        "text": b'proc.name startswith "ku" or container.image contains "nginx:1"',
        "not": b"not (rule = \"Shell in container\") and evt.time > 1700000000000000000",
        "mitre": b"mitre.technique in (T1059, T1611) or severity = CRITICAL",
        "mixed": b"proc.pid = 42 and fd.name = /etc/shadow",
        "glob": b"container.id glob 'abc*' and proc.exe endswith /sh and node.name != n1",
        "exists": b"k8s.pod.name exists and policy icontains prod",
    }


def main():
    out = sys.argv[1]
    for target, seeds in [
        ("sensor_decode", decode_seeds()),
        ("rules_condition", rules_condition_seeds()),
        ("rules_yaml", rules_yaml_seeds()),
        ("cgroup_path", cgroup_seeds()),
        ("store_filter", store_filter_seeds()),
    ]:
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(seeds)} seeds in {d}")


if __name__ == "__main__":
    main()
