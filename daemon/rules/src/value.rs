//! Values handed to the engine by the host, borrowed from its own records so
//! evaluation allocates nothing.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::registry::{FieldArg, FieldId};

/// A borrowed list of strings, in whichever form the host stores it.
#[derive(Debug, Clone, Copy)]
pub enum ListRef<'a> {
    Strings(&'a [String]),
    Strs(&'a [&'a str]),
    Boxed(&'a [Box<str>]),
    Arcs(&'a [Arc<str>]),
}

impl<'a> ListRef<'a> {
    pub fn len(&self) -> usize {
        match self {
            ListRef::Strings(v) => v.len(),
            ListRef::Strs(v) => v.len(),
            ListRef::Boxed(v) => v.len(),
            ListRef::Arcs(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> Option<&'a str> {
        match *self {
            ListRef::Strings(v) => v.get(i).map(String::as_str),
            ListRef::Strs(v) => v.get(i).copied(),
            ListRef::Boxed(v) => v.get(i).map(|s| &**s),
            ListRef::Arcs(v) => v.get(i).map(|s| &**s),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let this = *self;
        (0..this.len()).filter_map(move |i| this.get(i))
    }
}

/// A field value. Integers may come as `Int` or `Uint` whatever the
/// declared type; a variant the operator cannot use makes the check false.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Str(&'a str),
    Int(i64),
    Uint(u64),
    Bool(bool),
    List(ListRef<'a>),
    Ip(IpAddr),
}

impl fmt::Display for Value<'_> {
    /// Falco's rendering: lists space separated, booleans `true`/`false`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Uint(u) => write!(f, "{u}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Ip(ip) => write!(f, "{ip}"),
            Value::List(l) => {
                for (i, s) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    f.write_str(s)?;
                }
                Ok(())
            }
        }
    }
}

/// An owned copy of a [`Value`], for output fields that outlive the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedValue {
    Str(String),
    Int(i64),
    Uint(u64),
    Bool(bool),
    List(Vec<String>),
    Ip(IpAddr),
}

impl From<Value<'_>> for OwnedValue {
    fn from(v: Value<'_>) -> Self {
        match v {
            Value::Str(s) => OwnedValue::Str(s.to_string()),
            Value::Int(i) => OwnedValue::Int(i),
            Value::Uint(u) => OwnedValue::Uint(u),
            Value::Bool(b) => OwnedValue::Bool(b),
            Value::Ip(ip) => OwnedValue::Ip(ip),
            Value::List(l) => OwnedValue::List(l.iter().map(str::to_string).collect()),
        }
    }
}

impl fmt::Display for OwnedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OwnedValue::Str(s) => f.write_str(s),
            OwnedValue::Int(i) => write!(f, "{i}"),
            OwnedValue::Uint(u) => write!(f, "{u}"),
            OwnedValue::Bool(b) => write!(f, "{b}"),
            OwnedValue::Ip(ip) => write!(f, "{ip}"),
            OwnedValue::List(l) => f.write_str(&l.join(" ")),
        }
    }
}

/// Supplies field values for one event (or one alert, for store queries).
///
/// Return `None` when the field has no value for this event: every check on
/// it is then false (including `!=`), as in Falco, and `exists` is false.
pub trait FieldSource {
    fn get(&self, field: FieldId, arg: &FieldArg) -> Option<Value<'_>>;
}

impl<T: FieldSource + ?Sized> FieldSource for &T {
    fn get(&self, field: FieldId, arg: &FieldArg) -> Option<Value<'_>> {
        (**self).get(field, arg)
    }
}
