//! The canonical field set the saker daemon provides.
//!
//! Names and meanings follow Falco's so upstream rules load unchanged; the
//! daemon matches on the constants in [`ids`] when answering
//! [`FieldSource::get`](crate::FieldSource::get).

use crate::registry::{FieldDef, FieldId, FieldRegistry, FieldType};

/// How a field takes an argument.
#[derive(Clone, Copy)]
enum ArgSpec {
    NoArg,
    /// Optional numeric index: `proc.aname` or `proc.aname[2]`.
    Index,
    /// Required name: `k8s.pod.label[app]` / `k8s.pod.label.app`.
    Name,
    /// Optional name: `proc.env` or `proc.env[HOME]`.
    OptName,
    /// Required index or name: `evt.arg[0]`, `evt.arg.flags`.
    IndexOrName,
}

macro_rules! field_table {
    ($($konst:ident $name:literal $ty:ident $arg:ident $desc:literal;)*) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, dead_code)]
        #[repr(u16)]
        enum Idx { $($konst),* }

        /// Ids of [`saker_fields`] entries, stable for a given crate version.
        pub mod ids {
            use super::{FieldId, Idx};
            $(pub const $konst: FieldId = FieldId(Idx::$konst as u16);)*
        }

        const TABLE: &[(&str, FieldType, ArgSpec, &str)] = &[
            $(($name, FieldType::$ty, ArgSpec::$arg, $desc)),*
        ];
    };
}

field_table! {
    // Process (the thread that caused the event and its ancestry).
    PROC_NAME "proc.name" Str NoArg "Process name (comm: executable basename, at most 15 bytes).";
    PROC_EXE "proc.exe" Str NoArg "First command-line argument (argv[0]), usually the executable as invoked.";
    PROC_EXEPATH "proc.exepath" Str NoArg "Full path of the executable (resolved at exec).";
    PROC_CMDLINE "proc.cmdline" Str NoArg "proc.name followed by the arguments, space separated.";
    PROC_ARGS "proc.args" Str NoArg "Arguments after argv[0], joined with single spaces (a string, as in Falco).";
    PROC_ENV "proc.env" Str OptName "Environment as `K=V` pairs joined with spaces; proc.env[HOME] is one variable's value.";
    PROC_PID "proc.pid" Int NoArg "Process id (tgid) in the host pid namespace.";
    PROC_VPID "proc.vpid" Int NoArg "Process id as seen inside its own pid namespace (1 for a container's init).";
    PROC_PPID "proc.ppid" Int NoArg "Parent process id.";
    PROC_PVPID "proc.pvpid" Int NoArg "Parent process id inside the pid namespace.";
    PROC_SID "proc.sid" Int NoArg "Session id.";
    PROC_SNAME "proc.sname" Str NoArg "Name of the session leader process.";
    PROC_VPGID "proc.vpgid" Int NoArg "Process group id inside the pid namespace.";
    PROC_IS_VPGID_LEADER "proc.is_vpgid_leader" Bool NoArg "True if the process leads its process group.";
    PROC_IS_SID_LEADER "proc.is_sid_leader" Bool NoArg "True if the process leads its session.";
    PROC_TTY "proc.tty" Int NoArg "Controlling terminal device number; 0 when there is none.";
    PROC_CWD "proc.cwd" Str NoArg "Current working directory, with a trailing '/'.";
    PROC_DURATION "proc.duration" Int NoArg "Nanoseconds since the process started.";
    PROC_PNAME "proc.pname" Str NoArg "Parent process name.";
    PROC_PEXE "proc.pexe" Str NoArg "Parent argv[0].";
    PROC_PEXEPATH "proc.pexepath" Str NoArg "Parent executable path.";
    PROC_PCMDLINE "proc.pcmdline" Str NoArg "Parent command line.";
    PROC_ANAME "proc.aname" Str Index "Ancestor name: [0] is the process, [1] the parent, [2] the grandparent... Without an index the value is the list of all ancestors (any ancestor matches).";
    PROC_APID "proc.apid" Int Index "Ancestor pid, indexed like proc.aname.";
    PROC_AEXE "proc.aexe" Str Index "Ancestor argv[0], indexed like proc.aname.";
    PROC_AEXEPATH "proc.aexepath" Str Index "Ancestor executable path, indexed like proc.aname.";
    PROC_ACMDLINE "proc.acmdline" Str Index "Ancestor command line, indexed like proc.aname.";
    PROC_IS_EXE_UPPER_LAYER "proc.is_exe_upper_layer" Bool NoArg "True if the executable lives in the writable (upper) layer of an overlayfs container root: it was not in the image.";
    PROC_IS_EXE_FROM_MEMFD "proc.is_exe_from_memfd" Bool NoArg "True if the executable is a memfd (fileless execution).";
    PROC_IS_EXE_WRITABLE "proc.is_exe_writable" Bool NoArg "True if the executable file is writable by the process's user.";
    // Thread credentials.
    THREAD_TID "thread.tid" Int NoArg "Thread id.";
    THREAD_VTID "thread.vtid" Int NoArg "Thread id inside the pid namespace.";
    THREAD_CAP_EFFECTIVE "thread.cap_effective" Str NoArg "Effective capabilities, Falco-style names (`CAP_SYS_ADMIN CAP_NET_RAW`), space separated.";
    THREAD_CAP_PERMITTED "thread.cap_permitted" Str NoArg "Permitted capabilities, same format.";
    THREAD_CAP_INHERITABLE "thread.cap_inheritable" Str NoArg "Inheritable capabilities, same format.";
    // Users and groups.
    USER_UID "user.uid" Uint NoArg "Effective user id.";
    USER_NAME "user.name" Str NoArg "Effective user name (from the container's or host's passwd).";
    USER_LOGINUID "user.loginuid" Int NoArg "Audit login uid; -1 when unset.";
    USER_LOGINNAME "user.loginname" Str NoArg "Name of the audit login user.";
    USER_HOMEDIR "user.homedir" Str NoArg "Home directory of the user.";
    USER_SHELL "user.shell" Str NoArg "Login shell of the user.";
    GROUP_GID "group.gid" Uint NoArg "Effective group id.";
    GROUP_NAME "group.name" Str NoArg "Effective group name.";
    // Event.
    EVT_TYPE "evt.type" Str NoArg "Syscall/event name (execve, openat, connect, ...; exec is reported as execve).";
    EVT_DIR "evt.dir" Str NoArg "Direction: '>' enter, '<' exit (saker reports exit events).";
    EVT_NUM "evt.num" Uint NoArg "Event sequence number, starting at 1.";
    EVT_TIME "evt.time" Uint NoArg "Event timestamp, nanoseconds since the epoch.";
    EVT_RES "evt.res" Str NoArg "Result: SUCCESS, or the errno name (ENOENT, EACCES, ...).";
    EVT_RAWRES "evt.rawres" Int NoArg "Raw return value (negative errno on failure).";
    EVT_FAILED "evt.failed" Bool NoArg "True if the syscall returned an error.";
    EVT_HOSTNAME "evt.hostname" Str NoArg "Host name of the machine.";
    EVT_SOURCE "evt.source" Str NoArg "Event source, always 'syscall'.";
    EVT_ARGS "evt.args" Str NoArg "All syscall arguments rendered as `name=value` pairs.";
    EVT_ARG "evt.arg" Str IndexOrName "A syscall argument rendered as Falco does (flags as `O_WRONLY|O_CREAT`, mode as `S_IXUSR|...`): evt.arg.flags, evt.arg.mode, evt.arg.path, evt.arg.name, evt.arg[0]...";
    EVT_RAWARG "evt.rawarg" Int Name "A syscall argument as a raw number: evt.rawarg.flags, evt.rawarg.mode, evt.rawarg.uid.";
    EVT_IS_OPEN_READ "evt.is_open_read" Bool NoArg "For open events: opened for reading.";
    EVT_IS_OPEN_WRITE "evt.is_open_write" Bool NoArg "For open events: opened for writing.";
    EVT_IS_OPEN_EXEC "evt.is_open_exec" Bool NoArg "For open/creat events: the file is created with an execute bit.";
    EVT_IS_OPEN_CREATE "evt.is_open_create" Bool NoArg "For open events: O_CREAT was given and the file was created.";
    // File descriptor of the event.
    FD_NUM "fd.num" Int NoArg "File descriptor number (-1 when the open failed).";
    FD_NAME "fd.name" Str NoArg "Full path for files; `cip:cport->sip:sport` for sockets.";
    FD_NAMERAW "fd.nameraw" Str NoArg "Path as passed to the syscall, before normalisation.";
    FD_DIRECTORY "fd.directory" Str NoArg "Directory part of fd.name (files).";
    FD_FILENAME "fd.filename" Str NoArg "File name part of fd.name (files).";
    FD_TYPECHAR "fd.typechar" Str NoArg "One-letter fd type: f file, 4 IPv4, 6 IPv6, u unix, p pipe, e eventfd, s signalfd, l eventpoll, i inotify, t timerfd, n netlink, m memfd.";
    FD_TYPE "fd.type" Str NoArg "fd type: file, directory, ipv4, ipv6, unix, pipe, event, signalfd, eventpoll, inotify, timerfd, netlink, memfd.";
    FD_L4PROTO "fd.l4proto" Str NoArg "Transport protocol: tcp, udp, icmp, raw.";
    FD_SOCKFAMILY "fd.sockfamily" Str NoArg "Socket family: ip or unix.";
    FD_CONNECTED "fd.connected" Bool NoArg "For sockets: the socket is connected.";
    FD_NAME_CHANGED "fd.name_changed" Bool NoArg "For sockets: the peer differs from the previous event on this fd (unconnected UDP).";
    FD_IP "fd.ip" Ip NoArg "Either endpoint address (matches if the client or the server address matches).";
    FD_PORT "fd.port" Port NoArg "Either endpoint port.";
    FD_CIP "fd.cip" Ip NoArg "Client address.";
    FD_CPORT "fd.cport" Port NoArg "Client port.";
    FD_SIP "fd.sip" Ip NoArg "Server address.";
    FD_SPORT "fd.sport" Port NoArg "Server port.";
    FD_LIP "fd.lip" Ip NoArg "Local address.";
    FD_LPORT "fd.lport" Port NoArg "Local port.";
    FD_RIP "fd.rip" Ip NoArg "Remote address.";
    FD_RPORT "fd.rport" Port NoArg "Remote port.";
    FD_NET "fd.net" Net NoArg "Either endpoint address, compared against CIDR networks.";
    FD_CNET "fd.cnet" Net NoArg "Client address, compared against CIDR networks.";
    FD_SNET "fd.snet" Net NoArg "Server address, compared against CIDR networks.";
    FD_LNET "fd.lnet" Net NoArg "Local address, compared against CIDR networks.";
    FD_RNET "fd.rnet" Net NoArg "Remote address, compared against CIDR networks.";
    FD_CIP_NAME "fd.cip.name" Str NoArg "Domain name the client address was resolved from (DNS correlation), if known.";
    FD_SIP_NAME "fd.sip.name" Str NoArg "Domain name the server address was resolved from (DNS correlation), if known.";
    FD_LIP_NAME "fd.lip.name" Str NoArg "Domain name of the local address, if known.";
    FD_RIP_NAME "fd.rip.name" Str NoArg "Domain name of the remote address, if known.";
    // Container.
    CONTAINER_ID "container.id" Str NoArg "Short (12 hex) container id; 'host' for host processes.";
    CONTAINER_NAME "container.name" Str NoArg "Container name; 'host' for host processes.";
    CONTAINER_IMAGE "container.image" Str NoArg "Image reference as configured (repository:tag).";
    CONTAINER_IMAGE_REPOSITORY "container.image.repository" Str NoArg "Image repository (docker.io/library/nginx).";
    CONTAINER_IMAGE_TAG "container.image.tag" Str NoArg "Image tag.";
    CONTAINER_IMAGE_DIGEST "container.image.digest" Str NoArg "Image digest (sha256:...).";
    CONTAINER_IMAGE_ID "container.image.id" Str NoArg "Image id.";
    CONTAINER_TYPE "container.type" Str NoArg "Runtime: docker, containerd, cri-o, podman.";
    CONTAINER_START_TS "container.start_ts" Uint NoArg "Container start time, nanoseconds since the epoch.";
    CONTAINER_PRIVILEGED "container.privileged" Bool NoArg "True for privileged containers.";
    // Kubernetes.
    K8S_NS_NAME "k8s.ns.name" Str NoArg "Pod namespace.";
    K8S_POD_NAME "k8s.pod.name" Str NoArg "Pod name.";
    K8S_POD_UID "k8s.pod.uid" Str NoArg "Pod UID.";
    K8S_POD_IP "k8s.pod.ip" Ip NoArg "Pod IP address.";
    K8S_POD_LABELS "k8s.pod.labels" StrList NoArg "Pod labels as `key:value` items.";
    K8S_POD_LABEL "k8s.pod.label" Str Name "One pod label: k8s.pod.label[app] or k8s.pod.label.app.";
    K8S_WORKLOAD_NAME "k8s.workload.name" Str NoArg "Owning workload (Deployment, DaemonSet, StatefulSet, Job...) name.";
    K8S_WORKLOAD_KIND "k8s.workload.kind" Str NoArg "Owning workload kind.";
    KUBERNETES_CLUSTER_NAME "kubernetes.cluster.name" Str NoArg "Cluster name as configured on the agent.";
    NODE_NAME "node.name" Str NoArg "Kubernetes node (or host) name.";
    // saker alert fields, for store queries and API filters over alerts.
    RULE "rule" Str NoArg "Alert: name of the rule that fired.";
    POLICY "policy" Str NoArg "Alert: policy the rule belongs to (e.g. 'Drift Detection').";
    PRIORITY "priority" Priority NoArg "Alert: priority; ordered, so `priority >= WARNING` selects WARNING and more severe.";
    SEVERITY "severity" Priority NoArg "Alert: same as priority.";
    TAGS "tags" StrList NoArg "Alert: rule tags.";
    MITRE_TECHNIQUE "mitre.technique" StrList NoArg "Alert: MITRE ATT&CK technique ids (T1059.004).";
    MITRE_TACTIC "mitre.tactic" StrList NoArg "Alert: MITRE ATT&CK tactic ids (TA0002).";
    ALERT_ID "alert.id" Str NoArg "Alert: unique id.";
    ALERT_SOURCE "alert.source" Str NoArg "Alert: event source ('syscall').";
}

/// The field registry of the saker daemon, in [`ids`] order.
pub fn saker_fields() -> FieldRegistry {
    let mut r = FieldRegistry::new();
    for &(name, ty, arg, desc) in TABLE {
        let def = FieldDef::new(name, ty, desc);
        let def = match arg {
            ArgSpec::NoArg => def,
            ArgSpec::Index => def.with_index(),
            ArgSpec::Name => def.with_name().arg_required(),
            ArgSpec::OptName => def.with_name(),
            ArgSpec::IndexOrName => def.with_index().with_name().arg_required(),
        };
        // The table is static and has no duplicates (tested below), so a
        // failure here would be a bug in this file; skip rather than panic.
        let _ = r.register(def);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_registry() {
        let r = saker_fields();
        assert_eq!(r.len(), TABLE.len());
        assert_eq!(r.lookup("proc.name"), Some(ids::PROC_NAME));
        assert_eq!(r.lookup("evt.type"), Some(ids::EVT_TYPE));
        assert_eq!(r.lookup("alert.source"), Some(ids::ALERT_SOURCE));
        assert_eq!(r.get(ids::FD_SPORT).map(|d| d.ty), Some(FieldType::Port));
        assert_eq!(
            r.get(ids::USER_LOGINUID).map(|d| d.ty),
            Some(FieldType::Int)
        );
        assert_eq!(
            r.get(ids::PROC_IS_EXE_UPPER_LAYER).map(|d| d.ty),
            Some(FieldType::Bool)
        );
        assert_eq!(r.get(ids::TAGS).map(|d| d.ty), Some(FieldType::StrList));
        let aname = r.get(ids::PROC_ANAME).unwrap();
        assert!(aname.takes_index && !aname.arg_required);
        let arg = r.get(ids::EVT_ARG).unwrap();
        assert!(arg.takes_index && arg.takes_name && arg.arg_required);
        for (_, d) in r.iter() {
            assert!(!d.description.is_empty(), "{} has no description", d.name);
        }
    }
}
