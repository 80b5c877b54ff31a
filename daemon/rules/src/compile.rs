//! Lowers a parsed condition to an evaluable tree: fields become ids,
//! macros are inlined, lists expanded, literals parsed to the field's type,
//! matchers precompiled, and constant sub-trees folded.

use memchr::memmem;

use crate::ast::{Check, Expr, Literal, Op, Operand};
use crate::error::{CompileError, Location, SyntaxError};
use crate::evttype::EvtTypeSet;
use crate::matchers::{Glob, INeedle, IpNet, PathSet, StrSet};
use crate::priority::Priority;
use crate::registry::{FieldArg, FieldId, FieldRegistry, FieldType, ResolveError};

/// Maximum nesting of the compiled tree, macros inlined.
pub const MAX_COMPILE_DEPTH: usize = 512;
/// Maximum nesting of lists referencing lists.
const MAX_LIST_DEPTH: usize = 32;
/// Bounds on expansion, so macros or lists that reference each other many
/// times cannot blow up exponentially at load time.
pub const MAX_NODES: usize = 200_000;
pub const MAX_LIST_VALUES: usize = 200_000;

/// Identifies the text an AST came from, so errors can be located.
pub(crate) type SrcId = u32;

/// A list item: quoted items are plain values, never list references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    pub text: String,
    pub quoted: bool,
}

impl ListItem {
    /// A YAML list item. Falco splices items into condition text, so an
    /// item written with inner quotes (`'"(systemd)"'`) is a quoted value.
    pub fn from_yaml(s: &str) -> ListItem {
        let b = s.as_bytes();
        if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
            let mut lx = crate::lexer::Lexer::new(s);
            if let Ok(text) = lx.quoted() {
                if lx.at_end() {
                    return ListItem { text, quoted: true };
                }
            }
        }
        ListItem {
            text: s.to_string(),
            quoted: false,
        }
    }
}

/// What the compiler needs from its surroundings.
pub(crate) trait Env {
    fn registry(&self) -> &FieldRegistry;
    fn list(&self, name: &str) -> Option<&[ListItem]>;
    fn macro_def(&self, name: &str) -> Option<(Result<&Expr, &SyntaxError>, SrcId)>;
    fn locate(&self, src: SrcId, offset: usize) -> Location;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldRef {
    pub id: FieldId,
    pub arg: FieldArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    #[inline]
    pub fn test<T: Ord>(self, a: T, b: T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Exists,
    StrEq(Box<str>),
    /// Boxed: a finder is large and most matchers are small.
    Contains(Box<memmem::Finder<'static>>),
    IContains(INeedle),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Glob(Glob),
    StrIn(StrSet),
    PMatch(PathSet),
    IntCmp(Cmp, i128),
    /// Sorted.
    IntIn(Box<[i128]>),
    Bool(bool),
    IpIn(Box<[IpNet]>),
    PrioCmp(Cmp, u8),
    PrioIn(Box<[u8]>),
    /// `evt.type` against interned types.
    EvtType(EvtTypeSet),
}

/// A field check. `negate` implements `!=`: with a missing value the check
/// is false either way (Falco semantics), unlike `not (... = ...)`.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    pub field: FieldRef,
    pub negate: bool,
    pub m: Matcher,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(bool),
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    Leaf(Box<Leaf>),
}

impl Node {
    /// Event types the node can be true for.
    pub fn evt_types(&self) -> EvtTypeSet {
        match self {
            Node::Const(true) => EvtTypeSet::Any,
            Node::Const(false) => EvtTypeSet::NONE,
            Node::And(v) => v
                .iter()
                .fold(EvtTypeSet::Any, |acc, n| acc.intersect(n.evt_types())),
            Node::Or(v) => v
                .iter()
                .fold(EvtTypeSet::NONE, |acc, n| acc.union(n.evt_types())),
            // Conservative: a negation may match any type.
            Node::Not(_) => EvtTypeSet::Any,
            Node::Leaf(l) => match &l.m {
                Matcher::EvtType(set) if !l.negate => *set,
                _ => EvtTypeSet::Any,
            },
        }
    }

    /// Adds the fields the node reads to `out`.
    pub fn collect_fields(&self, out: &mut std::collections::BTreeSet<FieldId>) {
        match self {
            Node::Const(_) => {}
            Node::And(v) | Node::Or(v) => v.iter().for_each(|n| n.collect_fields(out)),
            Node::Not(n) => n.collect_fields(out),
            Node::Leaf(l) => {
                out.insert(l.field.id);
            }
        }
    }

    pub(crate) fn and(items: Vec<Node>) -> Node {
        let mut out = Vec::with_capacity(items.len());
        for n in items {
            match n {
                Node::Const(true) => {}
                Node::Const(false) => return Node::Const(false),
                Node::And(inner) => out.extend(inner.into_vec()),
                n => out.push(n),
            }
        }
        match out.len() {
            0 => Node::Const(true),
            1 => out.pop().unwrap_or(Node::Const(true)),
            _ => Node::And(out.into_boxed_slice()),
        }
    }

    pub(crate) fn or(items: Vec<Node>) -> Node {
        let mut out = Vec::with_capacity(items.len());
        for n in items {
            match n {
                Node::Const(false) => {}
                Node::Const(true) => return Node::Const(true),
                Node::Or(inner) => out.extend(inner.into_vec()),
                n => out.push(n),
            }
        }
        match out.len() {
            0 => Node::Const(false),
            1 => out.pop().unwrap_or(Node::Const(false)),
            _ => Node::Or(out.into_boxed_slice()),
        }
    }

    pub(crate) fn not(n: Node) -> Node {
        match n {
            Node::Const(b) => Node::Const(!b),
            Node::Not(inner) => *inner,
            n => Node::Not(Box::new(n)),
        }
    }
}

pub(crate) struct Compiler<'e, E: Env + ?Sized> {
    env: &'e E,
    macro_stack: Vec<String>,
    depth: usize,
    /// Expression nodes compiled so far (macro bodies count per use).
    nodes: usize,
    /// Non-fatal findings (unknown event type names, ...).
    pub warnings: Vec<String>,
}

impl<'e, E: Env + ?Sized> Compiler<'e, E> {
    pub fn new(env: &'e E) -> Self {
        Compiler {
            env,
            macro_stack: Vec::new(),
            depth: 0,
            nodes: 0,
            warnings: Vec::new(),
        }
    }

    pub fn compile(&mut self, e: &Expr, src: SrcId) -> Result<Node, CompileError> {
        self.depth += 1;
        self.nodes += 1;
        let r = if self.depth > MAX_COMPILE_DEPTH {
            Err(CompileError::TooDeep {
                limit: MAX_COMPILE_DEPTH,
                pos: self.env.locate(src, expr_offset(e)),
            })
        } else if self.nodes > MAX_NODES {
            Err(CompileError::TooLarge {
                limit: MAX_NODES,
                what: "nodes",
                pos: self.env.locate(src, expr_offset(e)),
            })
        } else {
            self.compile_inner(e, src)
        };
        self.depth -= 1;
        r
    }

    fn compile_inner(&mut self, e: &Expr, src: SrcId) -> Result<Node, CompileError> {
        match e {
            Expr::And(v) => {
                let items = v
                    .iter()
                    .map(|x| self.compile(x, src))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Node::and(items))
            }
            Expr::Or(v) => {
                let items = v
                    .iter()
                    .map(|x| self.compile(x, src))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Node::or(items))
            }
            Expr::Not(x) => Ok(Node::not(self.compile(x, src)?)),
            Expr::Macro { name, offset } => self.expand_macro(name, *offset, src),
            Expr::Check(c) => self.check(c, src),
        }
    }

    fn expand_macro(
        &mut self,
        name: &str,
        offset: usize,
        src: SrcId,
    ) -> Result<Node, CompileError> {
        let env = self.env;
        let Some((ast, msrc)) = env.macro_def(name) else {
            return Err(CompileError::UndefinedMacro {
                name: name.to_string(),
                pos: env.locate(src, offset),
            });
        };
        if self.macro_stack.iter().any(|m| m == name) {
            return Err(CompileError::MacroCycle {
                name: name.to_string(),
                pos: env.locate(src, offset),
            });
        }
        let ast = ast.map_err(|e| CompileError::MacroSyntax {
            name: name.to_string(),
            error: e.clone(),
        })?;
        self.macro_stack.push(name.to_string());
        let r = self.compile(ast, msrc);
        self.macro_stack.pop();
        r
    }

    /// Literal values of a list operand, list references expanded; `None`
    /// when the expansion exceeds [`MAX_LIST_VALUES`].
    fn values(&self, items: &[Literal]) -> Option<Vec<String>> {
        let mut out = Vec::with_capacity(items.len());
        let mut stack = Vec::new();
        for l in items {
            self.expand_value(&l.text, l.quoted, &mut out, &mut stack);
        }
        (out.len() <= MAX_LIST_VALUES).then_some(out)
    }

    fn expand_value(
        &self,
        text: &str,
        quoted: bool,
        out: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) {
        if out.len() > MAX_LIST_VALUES {
            return;
        }
        if !quoted && stack.len() < MAX_LIST_DEPTH && !stack.iter().any(|s| s == text) {
            if let Some(items) = self.env.list(text) {
                stack.push(text.to_string());
                for it in items {
                    self.expand_value(&it.text, it.quoted, out, stack);
                }
                stack.pop();
                return;
            }
        }
        out.push(text.to_string());
    }

    fn check(&mut self, c: &Check, src: SrcId) -> Result<Node, CompileError> {
        let env = self.env;
        let reg = env.registry();
        let pos = || env.locate(src, c.offset);
        let (id, arg) = match reg.resolve(&c.field, c.arg.as_deref()) {
            Ok(x) => x,
            Err(ResolveError::Unknown) => {
                return Err(CompileError::UnknownField {
                    name: c.field.clone(),
                    pos: pos(),
                })
            }
            Err(ResolveError::BadArgument(message)) => {
                return Err(CompileError::BadArgument {
                    field: c.field.clone(),
                    message,
                    pos: pos(),
                })
            }
        };
        let Some(def) = reg.get(id) else {
            return Err(CompileError::UnknownField {
                name: c.field.clone(),
                pos: pos(),
            });
        };
        let ty = def.ty;
        let is_evt_type = def.name == "evt.type" && arg == FieldArg::None;
        let field = FieldRef { id, arg };
        let leaf = |negate: bool, m: Matcher| {
            Ok(Node::Leaf(Box::new(Leaf {
                field: field.clone(),
                negate,
                m,
            })))
        };

        let Some(op) = c.op else {
            if ty == FieldType::Bool {
                return leaf(false, Matcher::Bool(true));
            }
            return Err(CompileError::NeedsOperator {
                field: c.field.clone(),
                pos: pos(),
            });
        };
        if op == Op::Exists {
            return leaf(false, Matcher::Exists);
        }
        let unsupported = || CompileError::UnsupportedOperator {
            op: op.as_str().to_string(),
            field: c.field.clone(),
            ty: ty.as_str(),
            pos: env.locate(src, c.offset),
        };
        if matches!(op, Op::Regex | Op::BContains | Op::BStartsWith) {
            return Err(unsupported());
        }
        // Values with their offsets (list references expanded).
        let (values, first_offset): (Vec<String>, usize) = match &c.value {
            Operand::One(l) => (vec![l.text.clone()], l.offset),
            Operand::List(items) => (
                self.values(items).ok_or_else(|| CompileError::TooLarge {
                    limit: MAX_LIST_VALUES,
                    what: "list values",
                    pos: pos(),
                })?,
                items.first().map_or(c.offset, |l| l.offset),
            ),
            Operand::None => (Vec::new(), c.offset),
        };
        let bad = |v: &str, expected: &'static str| CompileError::BadValue {
            field: c.field.clone(),
            value: v.to_string(),
            expected,
            pos: env.locate(src, first_offset),
        };
        let negate = op == Op::Ne;
        let single = || values.first().cloned().unwrap_or_default();

        if is_evt_type && matches!(op, Op::Eq | Op::Ne | Op::In | Op::Intersects) {
            let (set, unknown) = EvtTypeSet::from_names(values.iter().map(String::as_str));
            for u in unknown {
                self.warnings.push(format!(
                    "unknown event type '{u}' ({})",
                    env.locate(src, first_offset)
                ));
            }
            return leaf(negate, Matcher::EvtType(set));
        }

        match ty {
            FieldType::Str | FieldType::StrList => {
                let m = match op {
                    Op::Eq | Op::Ne => Matcher::StrEq(single().into()),
                    Op::Contains => Matcher::Contains(Box::new(
                        memmem::Finder::new(single().as_bytes()).into_owned(),
                    )),
                    Op::IContains => Matcher::IContains(INeedle::new(&single())),
                    Op::StartsWith => Matcher::StartsWith(single().into()),
                    Op::EndsWith => Matcher::EndsWith(single().into()),
                    Op::Glob => Matcher::Glob(Glob::new(&single(), false)),
                    Op::IGlob => Matcher::Glob(Glob::new(&single(), true)),
                    Op::In | Op::Intersects => Matcher::StrIn(StrSet::new(values)),
                    Op::PMatch => Matcher::PMatch(PathSet::new(values)),
                    _ => return Err(unsupported()),
                };
                leaf(negate, m)
            }
            FieldType::Int | FieldType::Uint | FieldType::Port => {
                let mut nums = Vec::with_capacity(values.len());
                for v in &values {
                    nums.push(parse_int(v).ok_or_else(|| bad(v, "an integer"))?);
                }
                let m = match (op, cmp_of(op)) {
                    (Op::In | Op::Intersects, _) => {
                        nums.sort_unstable();
                        nums.dedup();
                        Matcher::IntIn(nums.into_boxed_slice())
                    }
                    (_, Some(cmp)) => Matcher::IntCmp(cmp, nums.first().copied().unwrap_or(0)),
                    _ => return Err(unsupported()),
                };
                leaf(negate, m)
            }
            FieldType::Bool => {
                if !matches!(op, Op::Eq | Op::Ne) {
                    return Err(unsupported());
                }
                let v = single();
                let b = parse_bool(&v).ok_or_else(|| bad(&v, "true or false"))?;
                leaf(negate, Matcher::Bool(b))
            }
            FieldType::Ip | FieldType::Net => {
                if !matches!(op, Op::Eq | Op::Ne | Op::In | Op::Intersects) {
                    return Err(unsupported());
                }
                let mut nets = Vec::with_capacity(values.len());
                for v in &values {
                    nets.push(
                        IpNet::parse(v).ok_or_else(|| bad(v, "an IP address or CIDR network"))?,
                    );
                }
                leaf(negate, Matcher::IpIn(nets.into_boxed_slice()))
            }
            FieldType::Priority => {
                let mut ranks = Vec::with_capacity(values.len());
                for v in &values {
                    let p = Priority::parse(v).ok_or_else(|| bad(v, "a priority name"))?;
                    ranks.push(p.rank());
                }
                let m = match (op, cmp_of(op)) {
                    (Op::In | Op::Intersects, _) => Matcher::PrioIn(ranks.into_boxed_slice()),
                    (_, Some(cmp)) => Matcher::PrioCmp(cmp, ranks.first().copied().unwrap_or(0)),
                    _ => return Err(unsupported()),
                };
                leaf(negate, m)
            }
        }
    }
}

fn cmp_of(op: Op) -> Option<Cmp> {
    Some(match op {
        Op::Eq | Op::Ne => Cmp::Eq,
        Op::Lt => Cmp::Lt,
        Op::Le => Cmp::Le,
        Op::Gt => Cmp::Gt,
        Op::Ge => Cmp::Ge,
        _ => return None,
    })
}

fn expr_offset(e: &Expr) -> usize {
    match e {
        Expr::Check(c) => c.offset,
        Expr::Macro { offset, .. } => *offset,
        Expr::Not(x) => expr_offset(x),
        Expr::And(v) | Expr::Or(v) => v.first().map_or(0, expr_offset),
    }
}

/// Decimal or `0x` hex, optionally signed; i128 holds every i64 and u64.
pub(crate) fn parse_int(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mag: i128 = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i128::from(u64::from_str_radix(h, 16).ok()?)
    } else {
        i128::from(digits.parse::<u64>().ok()?)
    };
    Some(if neg { -mag } else { mag })
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") || s == "1" {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") || s == "0" {
        Some(false)
    } else {
        None
    }
}
