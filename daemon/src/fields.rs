//! Field values of enriched events and alerts for the filter language (`saker-rules`):
//! the daemon's side of `FieldSource`. Strings are computed lazily, once per event, only
//! for the fields a candidate rule touches.

use std::{cell::OnceCell, net::IpAddr};

use saker_event::{
    event::{Body, FileKind, AT_FDCWD},
    Alert, BString, Enriched,
};
use saker_rules::{
    fields::ids, FieldArg, FieldDef, FieldId, FieldRegistry, FieldSource, FieldType, ListRef, Value,
};

/// The registry rules and queries compile against: Falco's fields plus saker's own.
pub struct Fields {
    pub registry: FieldRegistry,
    exe_sha256: Option<FieldId>,
    exe_ioc: Option<FieldId>,
}

impl Fields {
    pub fn new() -> Fields {
        let mut registry = saker_rules::saker_fields();
        let exe_sha256 = registry
            .register(FieldDef::new(
                "proc.exe.sha256",
                FieldType::Str,
                "SHA-256 (hex) of the executed file, hashed in userspace at exec.",
            ))
            .ok();
        let exe_ioc = registry
            .register(FieldDef::new(
                "proc.exe.ioc",
                FieldType::Str,
                "Name of the IoC-list entry the executable's SHA-256 matched (absent when none).",
            ))
            .ok();
        Fields {
            registry,
            exe_sha256,
            exe_ioc,
        }
    }
}

impl Default for Fields {
    fn default() -> Self {
        Fields::new()
    }
}

/// Fields the registry declares (so upstream Falco rules load) for which saker has no
/// data yet: every check on them is false (missing value), and outputs show `<NA>`.
pub const NOT_PROVIDED: &[FieldId] = &[
    ids::PROC_ENV,
    ids::PROC_VPGID,
    ids::PROC_IS_VPGID_LEADER,
    ids::PROC_IS_SID_LEADER,
    ids::PROC_DURATION,
    ids::PROC_IS_EXE_WRITABLE,
    ids::THREAD_CAP_EFFECTIVE,
    ids::THREAD_CAP_PERMITTED,
    ids::THREAD_CAP_INHERITABLE,
    ids::USER_LOGINNAME,
    ids::USER_HOMEDIR,
    ids::USER_SHELL,
    ids::GROUP_NAME,
    ids::EVT_ARGS,
    ids::FD_L4PROTO,
    ids::FD_NAME_CHANGED,
    ids::FD_CIP,
    ids::FD_CPORT,
    ids::FD_LIP,
    ids::FD_LPORT,
    ids::FD_CNET,
    ids::FD_LNET,
    ids::FD_CIP_NAME,
    ids::FD_SIP_NAME,
    ids::FD_LIP_NAME,
    ids::FD_RIP_NAME,
    ids::CONTAINER_PRIVILEGED,
    ids::K8S_POD_IP,
    ids::K8S_WORKLOAD_KIND,
];

fn lossy(b: &BString) -> String {
    b.to_str_lossy().into_owned()
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Falco's cmdline: the process name followed by the arguments after argv[0].
fn cmdline(name: &str, args: &[BString]) -> String {
    let mut s = name.to_string();
    for a in args.iter().skip(1) {
        s.push(' ');
        s.push_str(&a.to_str_lossy());
    }
    s
}

const OPEN_FLAGS: &[(u32, &str)] = &[
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o40000, "O_DIRECT"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o20000000, "O_PATH"),
    (0o20200000, "O_TMPFILE"),
];

/// `O_WRONLY|O_CREAT|…` as Falco renders open flags.
pub fn render_open_flags(flags: u32) -> String {
    let mut parts = vec![match flags & 0o3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        _ => "O_RDWR",
    }];
    for (bit, name) in OPEN_FLAGS {
        if flags & bit == *bit {
            parts.push(name);
        }
    }
    parts.join("|")
}

const MODE_BITS: &[(u32, &str)] = &[
    (0o4000, "S_ISUID"),
    (0o2000, "S_ISGID"),
    (0o1000, "S_ISVTX"),
    (0o400, "S_IRUSR"),
    (0o200, "S_IWUSR"),
    (0o100, "S_IXUSR"),
    (0o40, "S_IRGRP"),
    (0o20, "S_IWGRP"),
    (0o10, "S_IXGRP"),
    (0o4, "S_IROTH"),
    (0o2, "S_IWOTH"),
    (0o1, "S_IXOTH"),
];

/// `0755(S_IRUSR|S_IWUSR|S_IXUSR|…)` as Falco renders a mode.
pub fn render_mode(mode: u32) -> String {
    let names: Vec<&str> = MODE_BITS
        .iter()
        .filter(|(b, _)| mode & b != 0)
        .map(|(_, n)| *n)
        .collect();
    format!("{:04o}({})", mode & 0o7777, names.join("|"))
}

/// errno name for a negative return value (`SUCCESS` for success).
pub fn render_res(ret: i64) -> String {
    if ret >= 0 {
        return "SUCCESS".to_string();
    }
    let name = match -ret {
        1 => "EPERM",
        2 => "ENOENT",
        4 => "EINTR",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        17 => "EEXIST",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        24 => "EMFILE",
        28 => "ENOSPC",
        30 => "EROFS",
        36 => "ENAMETOOLONG",
        40 => "ELOOP",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        101 => "ENETUNREACH",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        114 => "EALREADY",
        115 => "EINPROGRESS",
        n => return format!("E{n}"),
    };
    name.to_string()
}

/// An enriched event as a `FieldSource`.
pub struct EventView<'a> {
    fields: &'a Fields,
    ev: &'a Enriched,
    name: OnceCell<String>,
    exe: OnceCell<String>,
    exepath: OnceCell<String>,
    cmdline: OnceCell<String>,
    args: OnceCell<String>,
    cwd: OnceCell<Option<String>>,
    /// Ancestry incl. the process itself at [0]: (name, argv0, exepath, cmdline).
    anc: OnceCell<Vec<[String; 4]>>,
    anc_names: OnceCell<Vec<String>>,
    fd_name: OnceCell<Option<String>>,
    str_cache: OnceCell<String>,
    mode: OnceCell<Option<String>>,
    flags: OnceCell<Option<String>>,
    res: OnceCell<Option<String>>,
    labels: OnceCell<Vec<String>>,
}

impl<'a> EventView<'a> {
    pub fn new(fields: &'a Fields, ev: &'a Enriched) -> Self {
        EventView {
            fields,
            ev,
            name: OnceCell::new(),
            exe: OnceCell::new(),
            exepath: OnceCell::new(),
            cmdline: OnceCell::new(),
            args: OnceCell::new(),
            cwd: OnceCell::new(),
            anc: OnceCell::new(),
            anc_names: OnceCell::new(),
            fd_name: OnceCell::new(),
            str_cache: OnceCell::new(),
            mode: OnceCell::new(),
            flags: OnceCell::new(),
            res: OnceCell::new(),
            labels: OnceCell::new(),
        }
    }

    pub fn event(&self) -> &'a Enriched {
        self.ev
    }

    /// The process's argv (exec events carry their own; others come from the table).
    fn argv(&self) -> &'a [BString] {
        match &self.ev.event.body {
            Body::Exec(x) => &x.args,
            _ => &self.ev.ctx.proc.args,
        }
    }

    fn exepath_b(&self) -> &'a BString {
        match &self.ev.event.body {
            Body::Exec(x) => &x.filename,
            _ => &self.ev.ctx.proc.exe,
        }
    }

    fn name(&self) -> &str {
        self.name.get_or_init(|| lossy(&self.ev.event.process.comm))
    }

    fn ancestry(&self) -> &Vec<[String; 4]> {
        self.anc.get_or_init(|| {
            let mut v = vec![[
                self.name().to_string(),
                self.exe().to_string(),
                self.exepath().to_string(),
                self.cmdline().to_string(),
            ]];
            for a in &self.ev.ctx.proc.ancestors {
                let name = lossy(&a.comm);
                let argv0 = a.args.first().map(lossy).unwrap_or_else(|| lossy(&a.exe));
                let cmd = cmdline(&name, &a.args);
                v.push([name, argv0, lossy(&a.exe), cmd]);
            }
            v
        })
    }

    fn exe(&self) -> &str {
        self.exe.get_or_init(|| {
            self.argv()
                .first()
                .map(lossy)
                .unwrap_or_else(|| lossy(self.exepath_b()))
        })
    }

    fn exepath(&self) -> &str {
        self.exepath.get_or_init(|| lossy(self.exepath_b()))
    }

    fn cmdline(&self) -> &str {
        self.cmdline
            .get_or_init(|| cmdline(self.name(), self.argv()))
    }

    fn cwd(&self) -> Option<&str> {
        self.cwd
            .get_or_init(|| self.ev.ctx.proc.cwd.as_ref().map(lossy))
            .as_deref()
    }

    /// fd.name: the file's path (made absolute with the cwd when relative to it) or the
    /// connection as `ip:port`.
    fn fd_name(&self) -> Option<&str> {
        self.fd_name
            .get_or_init(|| match &self.ev.event.body {
                Body::File(f) if f.op == FileKind::MemfdCreate => {
                    Some(format!("memfd:{}", lossy(&f.path)))
                }
                Body::File(f) if !f.path.is_empty() => {
                    let p = lossy(&f.path);
                    if p.starts_with('/') || f.dfd != AT_FDCWD {
                        Some(p)
                    } else {
                        let cwd = self.cwd().unwrap_or("/");
                        Some(format!(
                            "{}/{}",
                            cwd.trim_end_matches('/'),
                            p.trim_start_matches("./")
                        ))
                    }
                }
                Body::Connect(c) => Some(match c.addr {
                    IpAddr::V4(a) => format!("{a}:{}", c.port),
                    IpAddr::V6(a) => format!("[{a}]:{}", c.port),
                }),
                _ => None,
            })
            .as_deref()
    }

    fn file(&self) -> Option<&'a saker_event::event::FileOp> {
        match &self.ev.event.body {
            Body::File(f) => Some(f),
            _ => None,
        }
    }

    fn ret(&self) -> Option<i64> {
        match &self.ev.event.body {
            Body::File(f) => Some(f.ret),
            Body::Connect(c) => Some(c.ret),
            Body::Exec(_) => Some(0),
            _ => None,
        }
    }

    fn ancestor(&self, arg: &FieldArg, col: usize) -> Option<Value<'_>> {
        let anc = self.ancestry();
        match arg {
            FieldArg::Index(i) => anc.get(*i as usize).map(|a| Value::Str(a[col].as_str())),
            _ if col == 0 => {
                let names = self
                    .anc_names
                    .get_or_init(|| anc.iter().skip(1).map(|a| a[0].clone()).collect());
                Some(Value::List(ListRef::Strings(names)))
            }
            _ => anc.get(1).map(|a| Value::Str(a[col].as_str())),
        }
    }

    fn container<T>(
        &self,
        f: impl FnOnce(&'a saker_event::ContainerMeta) -> Option<T>,
    ) -> Option<T> {
        self.ev.ctx.container.as_ref().and_then(f)
    }

    fn evt_arg(&self, arg: &FieldArg) -> Option<Value<'_>> {
        let name = match arg {
            FieldArg::Name(n) => n.as_ref(),
            FieldArg::Index(0) => "path",
            _ => return None,
        };
        match name {
            "flags" => {
                let f = self.file()?;
                if f.op != FileKind::Open {
                    return None;
                }
                self.flags
                    .get_or_init(|| Some(render_open_flags(f.flags)))
                    .as_deref()
                    .map(Value::Str)
            }
            "mode" => {
                let f = self.file()?;
                if f.op != FileKind::Open && f.op != FileKind::Chmod {
                    return None;
                }
                self.mode
                    .get_or_init(|| Some(render_mode(f.mode)))
                    .as_deref()
                    .map(Value::Str)
            }
            "path" | "name" | "filename" | "pathname" => match &self.ev.event.body {
                Body::Exec(x) => Some(Value::Str(
                    self.str_cache.get_or_init(|| lossy(&x.filename)),
                )),
                Body::File(_) => self.fd_name().map(Value::Str),
                _ => None,
            },
            "fd" => match &self.ev.event.body {
                Body::Connect(c) => Some(Value::Int(c.fd as i64)),
                Body::File(f) if f.op == FileKind::Chmod && f.path.is_empty() => {
                    Some(Value::Int(f.dfd as i64))
                }
                _ => None,
            },
            "res" => self.ret().map(Value::Int),
            _ => None,
        }
    }

    fn open_flag(&self, pred: impl Fn(u32, u32) -> bool) -> Option<Value<'_>> {
        match self.file() {
            Some(f) if f.op == FileKind::Open => Some(Value::Bool(pred(f.flags, f.mode))),
            _ => None,
        }
    }
}

impl FieldSource for EventView<'_> {
    fn get(&self, id: FieldId, arg: &FieldArg) -> Option<Value<'_>> {
        let ev = self.ev;
        let p = &ev.event.process;
        let ctx = &ev.ctx;
        let conn = match &ev.event.body {
            Body::Connect(c) => Some(c),
            _ => None,
        };
        Some(match id {
            ids::PROC_NAME => Value::Str(self.name()),
            ids::PROC_EXE => Value::Str(self.exe()),
            ids::PROC_EXEPATH => Value::Str(self.exepath()),
            ids::PROC_CMDLINE => Value::Str(self.cmdline()),
            ids::PROC_ARGS => Value::Str(self.args.get_or_init(|| {
                self.argv()
                    .iter()
                    .skip(1)
                    .map(|a| a.to_str_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })),
            ids::PROC_PID | ids::PROC_VPID => Value::Int(p.pid as i64),
            ids::PROC_PPID | ids::PROC_PVPID => Value::Int(p.ppid as i64),
            ids::PROC_SID => Value::Int(ctx.proc.sid? as i64),
            ids::PROC_SNAME => Value::Str(ctx.proc.sname.as_ref()?.to_str()?),
            ids::PROC_TTY => Value::Int(ctx.proc.tty? as i64),
            ids::PROC_CWD => Value::Str(self.cwd()?),
            ids::PROC_PNAME => return self.ancestor(&FieldArg::Index(1), 0),
            ids::PROC_PEXE => return self.ancestor(&FieldArg::Index(1), 1),
            ids::PROC_PEXEPATH => return self.ancestor(&FieldArg::Index(1), 2),
            ids::PROC_PCMDLINE => return self.ancestor(&FieldArg::Index(1), 3),
            ids::PROC_ANAME => return self.ancestor(arg, 0),
            ids::PROC_AEXE => return self.ancestor(arg, 1),
            ids::PROC_AEXEPATH => return self.ancestor(arg, 2),
            ids::PROC_ACMDLINE => return self.ancestor(arg, 3),
            ids::PROC_APID => match arg {
                FieldArg::Index(0) => Value::Int(p.pid as i64),
                FieldArg::Index(i) => {
                    Value::Int(ctx.proc.ancestors.get(*i as usize - 1)?.pid as i64)
                }
                _ => Value::Int(p.ppid as i64),
            },
            ids::PROC_IS_EXE_UPPER_LAYER => Value::Bool(match &ev.event.body {
                Body::Exec(x) => x.exe_upper_layer,
                _ => ctx.proc.exe_upper_layer,
            }),
            ids::PROC_IS_EXE_FROM_MEMFD => Value::Bool(match &ev.event.body {
                Body::Exec(x) => x.exe_memfd,
                _ => ctx.proc.exe_memfd,
            }),
            ids::THREAD_TID | ids::THREAD_VTID => Value::Int(p.tid as i64),
            ids::USER_UID => Value::Uint(p.uid as u64),
            ids::USER_NAME => Value::Str(ctx.proc.user.as_deref()?),
            ids::USER_LOGINUID => Value::Int(p.loginuid.map_or(-1, |u| u as i64)),
            ids::GROUP_GID => Value::Uint(p.gid as u64),
            ids::EVT_TYPE => Value::Str(ev.event.type_name()),
            ids::EVT_DIR => Value::Str("<"),
            ids::EVT_NUM => Value::Uint(ev.seq),
            ids::EVT_TIME => Value::Uint(ev.event.time_ns.max(0) as u64),
            ids::EVT_RES => Value::Str(
                self.res
                    .get_or_init(|| self.ret().map(render_res))
                    .as_deref()?,
            ),
            ids::EVT_RAWRES => Value::Int(self.ret()?),
            ids::EVT_FAILED => Value::Bool(self.ret()? < 0),
            ids::EVT_HOSTNAME => Value::Str(&ctx.node),
            ids::EVT_SOURCE | ids::ALERT_SOURCE => Value::Str("syscall"),
            ids::EVT_ARG => return self.evt_arg(arg),
            ids::EVT_RAWARG => match arg {
                FieldArg::Name(n) if &**n == "flags" => Value::Int(self.file()?.flags as i64),
                FieldArg::Name(n) if &**n == "mode" => Value::Int(self.file()?.mode as i64),
                FieldArg::Name(n) if &**n == "res" => Value::Int(self.ret()?),
                _ => return None,
            },
            ids::EVT_IS_OPEN_READ => return self.open_flag(|f, _| f & 0o3 != 1),
            ids::EVT_IS_OPEN_WRITE => {
                return self.open_flag(|f, _| f & 0o3 != 0 || f & 0o1000 != 0)
            }
            ids::EVT_IS_OPEN_CREATE => return self.open_flag(|f, _| f & 0o100 != 0),
            ids::EVT_IS_OPEN_EXEC => {
                return self.open_flag(|f, m| f & 0o100 != 0 && m & 0o111 != 0)
            }
            ids::FD_NUM => match &ev.event.body {
                Body::Connect(c) => Value::Int(c.fd as i64),
                Body::File(f) if f.op == FileKind::Open && f.ret >= 0 => Value::Int(f.ret),
                _ => return None,
            },
            ids::FD_NAME | ids::FD_NAMERAW => Value::Str(self.fd_name()?),
            ids::FD_DIRECTORY => {
                let n = self.fd_name().filter(|_| self.file().is_some())?;
                Value::Str(match n.rfind('/') {
                    Some(0) => "/",
                    Some(i) => &n[..i],
                    None => return None,
                })
            }
            ids::FD_FILENAME => {
                Value::Str(basename(self.fd_name().filter(|_| self.file().is_some())?))
            }
            ids::FD_TYPECHAR => Value::Str(match &ev.event.body {
                Body::File(f) if f.op == FileKind::MemfdCreate => "m",
                Body::File(_) => "f",
                Body::Connect(c) if c.addr.is_ipv4() => "4",
                Body::Connect(_) => "6",
                _ => return None,
            }),
            ids::FD_TYPE => Value::Str(match &ev.event.body {
                Body::File(f) if f.op == FileKind::MemfdCreate => "memfd",
                Body::File(_) => "file",
                Body::Connect(c) if c.addr.is_ipv4() => "ipv4",
                Body::Connect(_) => "ipv6",
                _ => return None,
            }),
            ids::FD_SOCKFAMILY => {
                conn?;
                Value::Str("ip")
            }
            ids::FD_CONNECTED => Value::Bool(conn?.ret == 0),
            ids::FD_IP | ids::FD_SIP | ids::FD_RIP | ids::FD_NET | ids::FD_SNET | ids::FD_RNET => {
                Value::Ip(conn?.addr)
            }
            ids::FD_PORT | ids::FD_SPORT | ids::FD_RPORT => Value::Uint(conn?.port as u64),
            // Falco's container.id is the 12-character short id.
            ids::CONTAINER_ID => Value::Str(match ctx.container_id.as_deref() {
                Some(id) => id.get(..12).unwrap_or(id),
                None => "host",
            }),
            ids::CONTAINER_NAME => Value::Str(match &ctx.container {
                Some(c) => c.name.as_deref()?,
                None if ctx.container_id.is_none() => "host",
                None => return None,
            }),
            ids::CONTAINER_IMAGE => Value::Str(self.container(|c| c.image.as_deref())?),
            ids::CONTAINER_IMAGE_REPOSITORY => {
                Value::Str(self.container(|c| c.image_repository.as_deref())?)
            }
            ids::CONTAINER_IMAGE_TAG => Value::Str(self.container(|c| c.image_tag.as_deref())?),
            ids::CONTAINER_IMAGE_DIGEST | ids::CONTAINER_IMAGE_ID => {
                Value::Str(self.container(|c| c.image_digest.as_deref())?)
            }
            ids::CONTAINER_TYPE => Value::Str(self.container(|c| Some(c.runtime.as_str()))?),
            ids::CONTAINER_START_TS => Value::Uint(self.container(|c| c.start_ns)?.max(0) as u64),
            ids::K8S_NS_NAME => Value::Str(self.container(|c| c.namespace.as_deref())?),
            ids::K8S_POD_NAME => Value::Str(self.container(|c| c.pod_name.as_deref())?),
            ids::K8S_POD_UID => Value::Str(self.container(|c| c.pod_uid.as_deref())?),
            ids::K8S_WORKLOAD_NAME => Value::Str(self.container(|c| c.workload.as_deref())?),
            ids::K8S_POD_LABELS => {
                let c = ctx.container.as_ref()?;
                Value::List(ListRef::Strings(self.labels.get_or_init(|| {
                    c.labels.iter().map(|(k, v)| format!("{k}:{v}")).collect()
                })))
            }
            ids::K8S_POD_LABEL => match arg {
                FieldArg::Name(n) => {
                    Value::Str(self.container(|c| c.labels.get(&**n).map(String::as_str))?)
                }
                _ => return None,
            },
            ids::KUBERNETES_CLUSTER_NAME => Value::Str(&ctx.cluster),
            ids::NODE_NAME => Value::Str(&ctx.node),
            _ if Some(id) == self.fields.exe_sha256 => Value::Str(ctx.proc.exe_sha256.as_deref()?),
            _ if Some(id) == self.fields.exe_ioc => Value::Str(ctx.proc.exe_ioc.as_deref()?),
            _ => return None,
        })
    }
}

/// An alert as a `FieldSource` (store queries, API filters): alert fields, then its event's.
pub struct AlertView<'a> {
    alert: &'a Alert,
    event: EventView<'a>,
}

impl<'a> AlertView<'a> {
    pub fn new(fields: &'a Fields, alert: &'a Alert) -> Self {
        AlertView {
            alert,
            event: EventView::new(fields, &alert.event),
        }
    }
}

impl FieldSource for AlertView<'_> {
    fn get(&self, id: FieldId, arg: &FieldArg) -> Option<Value<'_>> {
        let a = self.alert;
        Some(match id {
            ids::RULE => Value::Str(&a.rule),
            ids::POLICY => Value::Str(a.policy.as_deref()?),
            ids::PRIORITY | ids::SEVERITY => Value::Str(a.severity.as_str()),
            ids::TAGS => Value::List(ListRef::Strings(&a.tags)),
            ids::MITRE_TECHNIQUE => Value::List(ListRef::Strings(&a.mitre_techniques)),
            ids::MITRE_TACTIC => Value::List(ListRef::Strings(&a.mitre_tactics)),
            ids::ALERT_ID => Value::Str(&a.id),
            _ => return self.event.get(id, arg),
        })
    }
}
