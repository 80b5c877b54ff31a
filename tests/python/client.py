"""An independent Python client of saker's gRPC API (package saker.v1).

It shares no code with the Rust CLI: stubs are generated from proto/saker/v1 at test
time (gen.sh, or generate() below), so tests written with it check the wire contract.

    from client import Client, generate
    stubs_dir = generate()                      # or an existing gen.sh output dir
    c = Client("unix:///run/saker/saker.sock", stubs_dir=stubs_dir)
    page = c.query_events('k8s.ns.name=risk-10-aws-bedrock-java', limit=50)
    for part in c.ask("Summarize the events of this cluster."): ...

Targets: "unix:///path" (plaintext over the socket) or "https://host:port" /
"host:port" (TLS; pass ca, and cert + key for mutual TLS). A token is sent as
"authorization: Bearer <token>" metadata on every call.

Errors surface as grpc.RpcError: e.code() (grpc.StatusCode.INVALID_ARGUMENT, NOT_FOUND,
RESOURCE_EXHAUSTED, ...) and e.details() (for filters: "line:col: message (near token 'x')").
Run `python client.py --help` for a small command line used for manual checks.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Iterator, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
DEFAULT_SOCKET = "unix:///run/saker/saker.sock"


def generate(out_dir: Optional[str] = None) -> str:
    """Generates the stubs into out_dir (a new temp dir by default) and returns it."""
    out_dir = out_dir or tempfile.mkdtemp(prefix="saker-pystubs.")
    env = dict(os.environ, PYTHON=sys.executable)
    res = subprocess.run(
        ["sh", os.path.join(HERE, "gen.sh"), out_dir],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return res.stdout.strip().splitlines()[-1]


def load_stubs(stubs_dir: str) -> dict:
    """Imports the generated modules from stubs_dir; returns them by short name."""
    if stubs_dir not in sys.path:
        sys.path.insert(0, stubs_dir)
    names = ["common", "event", "events", "incident", "assistant", "node"]
    mods = {}
    for n in names:
        mods[n] = importlib.import_module(f"saker.v1.{n}_pb2")
    for n in ["events", "incident", "assistant", "node"]:
        mods[n + "_grpc"] = importlib.import_module(f"saker.v1.{n}_pb2_grpc")
    return mods


def to_dict(msg: Any) -> dict:
    """A message as a dict with the proto field names (canonical JSON mapping)."""
    from google.protobuf import json_format

    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def _read(path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def channel(
    target: str,
    ca: Optional[str] = None,
    cert: Optional[str] = None,
    key: Optional[str] = None,
    server_name: Optional[str] = None,
):
    """Opens a grpc channel to a unix socket or, with TLS, to host:port."""
    import grpc

    options = [
        ("grpc.max_receive_message_length", 64 << 20),
    ]
    if target.startswith("unix:"):
        # grpc-core would send the socket path as :authority, which the Rust server's
        # HTTP/2 stack rejects (RST_STREAM PROTOCOL_ERROR): name a plain host instead.
        options.append(("grpc.default_authority", "localhost"))
        return grpc.insecure_channel(target, options=options)
    if target.startswith("http://"):
        return grpc.insecure_channel(target[len("http://"):].rstrip("/"), options=options)
    addr = target[len("https://"):] if target.startswith("https://") else target
    addr = addr.rstrip("/")
    if (cert is None) != (key is None):
        raise ValueError("cert and key go together")
    creds = grpc.ssl_channel_credentials(
        root_certificates=_read(ca),
        private_key=_read(key),
        certificate_chain=_read(cert),
    )
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.secure_channel(addr, creds, options=options)


class Client:
    """Small blocking client: one method per API call; returns generated messages."""

    def __init__(
        self,
        target: str = DEFAULT_SOCKET,
        stubs_dir: Optional[str] = None,
        ca: Optional[str] = None,
        cert: Optional[str] = None,
        key: Optional[str] = None,
        token: Optional[str] = None,
        server_name: Optional[str] = None,
        timeout: float = 30.0,
    ):
        self.pb = load_stubs(stubs_dir or generate())
        self.channel = channel(target, ca=ca, cert=cert, key=key, server_name=server_name)
        self.metadata = [("authorization", f"Bearer {token}")] if token else []
        self.timeout = timeout
        self.events_stub = self.pb["events_grpc"].EventServiceStub(self.channel)
        self.incidents_stub = self.pb["incident_grpc"].IncidentServiceStub(self.channel)
        self.assistant_stub = self.pb["assistant_grpc"].AssistantServiceStub(self.channel)
        self.node_stub = self.pb["node_grpc"].NodeServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # EventService

    def query_events(
        self,
        filter: str = "",
        since_ns: int = 0,
        until_ns: int = 0,
        limit: int = 0,
        cursor: str = "",
        newest_first: bool = False,
        with_context: bool = False,
    ):
        """One page: a QueryEventsResponse (items: FeedItem alert|event, next_cursor)."""
        ev, common = self.pb["events"], self.pb["common"]
        req = ev.QueryEventsRequest(
            filter=filter,
            since_ns=since_ns,
            until_ns=until_ns,
            limit=limit,
            cursor=cursor,
            order=common.ORDER_NEWEST_FIRST if newest_first else common.ORDER_OLDEST_FIRST,
            scope=ev.FEED_SCOPE_ALERTS_AND_EVENTS if with_context else ev.FEED_SCOPE_ALERTS,
        )
        return self.events_stub.QueryEvents(req, metadata=self.metadata, timeout=self.timeout)

    def all_events(self, filter: str = "", since_ns: int = 0, until_ns: int = 0, page: int = 1000) -> list:
        """Every matching feed item, oldest first, following cursors."""
        items, cursor = [], ""
        while True:
            r = self.query_events(filter, since_ns, until_ns, limit=page, cursor=cursor)
            items.extend(r.items)
            if not r.next_cursor:
                return items
            cursor = r.next_cursor

    def subscribe_events(self, filter: str = "", since_ns: int = 0, with_context: bool = False) -> Iterator:
        """Yields SubscribeEventsResponse messages (item / backfill_done / end).

        Cancel by calling .cancel() on the returned iterator or by dropping it."""
        ev = self.pb["events"]
        req = ev.SubscribeEventsRequest(
            filter=filter,
            since_ns=since_ns,
            scope=ev.FEED_SCOPE_ALERTS_AND_EVENTS if with_context else ev.FEED_SCOPE_ALERTS,
        )
        return self.events_stub.SubscribeEvents(req, metadata=self.metadata)

    def stats(
        self,
        filter: str = "",
        group_by: Sequence[str] = ("policy",),
        since_ns: int = 0,
        until_ns: int = 0,
        limit: int = 0,
    ):
        """A GetStatsResponse; group_by names: policy, rule, severity, namespace,
        workload, node, technique."""
        ev = self.pb["events"]
        req = ev.GetStatsRequest(
            filter=filter,
            since_ns=since_ns,
            until_ns=until_ns,
            group_by=[ev.GroupBy.Value("GROUP_BY_" + g.upper()) for g in group_by],
            limit=limit,
        )
        return self.events_stub.GetStats(req, metadata=self.metadata, timeout=self.timeout)

    # IncidentService

    def incidents(self, filter: str = "", since_ns: int = 0, until_ns: int = 0, limit: int = 0, cursor: str = ""):
        """A ListIncidentsResponse (incidents: IncidentSummary, next_cursor)."""
        inc = self.pb["incident"]
        req = inc.ListIncidentsRequest(filter=filter, since_ns=since_ns, until_ns=until_ns, limit=limit, cursor=cursor)
        return self.incidents_stub.ListIncidents(req, metadata=self.metadata, timeout=self.timeout)

    def incident(self, incident_id: str):
        """An Incident (NOT_FOUND for an unknown id)."""
        inc = self.pb["incident"]
        return self.incidents_stub.GetIncident(inc.GetIncidentRequest(id=incident_id), metadata=self.metadata, timeout=self.timeout)

    # AssistantService

    def ask(
        self,
        question: str,
        session_id: str = "",
        context_filter: str = "",
        language: str = "",
        skip_narrative: bool = False,
    ) -> list:
        """The whole streamed answer as a list of AnswerPart (started ... done)."""
        a = self.pb["assistant"]
        req = a.AskRequest(
            session_id=session_id,
            question=question,
            context_filter=context_filter,
            language=language,
            skip_narrative=skip_narrative,
        )
        return list(self.assistant_stub.Ask(req, metadata=self.metadata, timeout=self.timeout * 10))

    def explain(self, alert_id: str, session_id: str = "", skip_narrative: bool = False) -> list:
        """The whole streamed explanation as a list of AnswerPart."""
        a = self.pb["assistant"]
        req = a.ExplainRequest(alert_id=alert_id, session_id=session_id, skip_narrative=skip_narrative)
        return list(self.assistant_stub.Explain(req, metadata=self.metadata, timeout=self.timeout * 10))

    # NodeService

    def node_info(self):
        """The node's NodeInfo."""
        return self.node_stub.GetInfo(self.pb["node"].GetInfoRequest(), metadata=self.metadata, timeout=self.timeout)


def summarize_answer(parts: list) -> dict:
    """Folds AnswerParts into {session_id, sections, text, alert_ids, filters, done}."""
    out = {"session_id": "", "sections": [], "text": "", "alert_ids": [], "event_seqs": [], "filters": [], "done": None}
    for p in parts:
        kind = p.WhichOneof("part")
        if kind == "started":
            out["session_id"] = p.started.session_id
        elif kind == "section":
            out["sections"].append(to_dict(p.section))
        elif kind == "text":
            out["text"] = (p.text.text if p.text.replace else out["text"] + p.text.text)
        elif kind == "evidence":
            out["alert_ids"] += [i for i in p.evidence.alert_ids if i not in out["alert_ids"]]
            out["event_seqs"] += [s for s in p.evidence.event_seqs if s not in out["event_seqs"]]
        elif kind == "suggested_filter":
            out["filters"].append(p.suggested_filter.filter)
        elif kind == "done":
            out["done"] = to_dict(p.done)
    return out


def _main(argv: Optional[Sequence[str]] = None) -> int:
    import grpc

    ap = argparse.ArgumentParser(description="Manual checks with the independent Python client.")
    ap.add_argument("--target", default=DEFAULT_SOCKET, help="unix:///path or https://host:port")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--token", default=os.environ.get("SAKER_TOKEN"))
    ap.add_argument("--server-name")
    ap.add_argument("--stubs", help="directory made by gen.sh (default: generate now)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("events")
    e.add_argument("--filter", default="")
    e.add_argument("--limit", type=int, default=100)
    e.add_argument("--follow", action="store_true")
    s = sub.add_parser("stats")
    s.add_argument("--filter", default="")
    s.add_argument("--by", default="policy")
    i = sub.add_parser("incidents")
    i.add_argument("--filter", default="")
    g = sub.add_parser("incident")
    g.add_argument("id")
    a = sub.add_parser("ask")
    a.add_argument("question")
    a.add_argument("--session", default="")
    a.add_argument("--filter", default="")
    x = sub.add_parser("explain")
    x.add_argument("alert_id")
    sub.add_parser("node")
    args = ap.parse_args(argv)

    c = Client(args.target, stubs_dir=args.stubs, ca=args.ca, cert=args.cert, key=args.key,
               token=args.token, server_name=args.server_name)
    emit = lambda d: print(json.dumps(d, ensure_ascii=True))  # noqa: E731 (ASCII: terminal safe)
    try:
        if args.cmd == "events" and args.follow:
            for m in c.subscribe_events(args.filter):
                emit(to_dict(m))
        elif args.cmd == "events":
            r = c.query_events(args.filter, limit=args.limit)
            for it in r.items:
                emit(to_dict(it))
            if r.next_cursor:
                emit({"next_cursor": r.next_cursor})
        elif args.cmd == "stats":
            emit(to_dict(c.stats(args.filter, group_by=args.by.split(","))))
        elif args.cmd == "incidents":
            for inc in c.incidents(args.filter).incidents:
                emit(to_dict(inc))
        elif args.cmd == "incident":
            emit(to_dict(c.incident(args.id)))
        elif args.cmd == "ask":
            emit(summarize_answer(c.ask(args.question, session_id=args.session, context_filter=args.filter)))
        elif args.cmd == "explain":
            emit(summarize_answer(c.explain(args.alert_id)))
        elif args.cmd == "node":
            emit(to_dict(c.node_info()))
    except grpc.RpcError as err:
        print(f"{err.code().name}: {err.details()!r}", file=sys.stderr)
        return {grpc.StatusCode.NOT_FOUND: 4, grpc.StatusCode.UNAVAILABLE: 2}.get(err.code(), 3)
    finally:
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
