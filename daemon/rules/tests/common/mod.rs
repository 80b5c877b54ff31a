//! A map-backed field source for tests: the engine is what is under test.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::IpAddr;

use saker_rules::{FieldArg, FieldId, FieldRegistry, FieldSource, ListRef, Value};

#[derive(Debug, Clone)]
pub enum V {
    S(String),
    I(i64),
    B(bool),
    L(Vec<String>),
    Ip(IpAddr),
}

/// Values keyed by (field id, argument).
pub struct MapSource<'r> {
    reg: &'r FieldRegistry,
    values: HashMap<(FieldId, FieldArg), V>,
}

impl<'r> MapSource<'r> {
    pub fn new(reg: &'r FieldRegistry) -> Self {
        MapSource {
            reg,
            values: HashMap::new(),
        }
    }

    fn key(&self, field: &str) -> (FieldId, FieldArg) {
        // "proc.aname[2]" / "evt.arg.flags" / "proc.name"
        if let Some(i) = field.find('[') {
            let id = self
                .reg
                .lookup(&field[..i])
                .unwrap_or_else(|| panic!("no field {field}"));
            let arg = &field[i + 1..field.len() - 1];
            let arg = match arg.parse::<u32>() {
                Ok(n) => FieldArg::Index(n),
                Err(_) => FieldArg::Name(arg.into()),
            };
            return (id, arg);
        }
        if let Some(id) = self.reg.lookup(field) {
            return (id, FieldArg::None);
        }
        let dot = field
            .rfind('.')
            .unwrap_or_else(|| panic!("no field {field}"));
        let id = self
            .reg
            .lookup(&field[..dot])
            .unwrap_or_else(|| panic!("no field {field}"));
        (id, FieldArg::Name(field[dot + 1..].into()))
    }

    pub fn s(mut self, field: &str, v: &str) -> Self {
        let k = self.key(field);
        self.values.insert(k, V::S(v.to_string()));
        self
    }

    pub fn i(mut self, field: &str, v: i64) -> Self {
        let k = self.key(field);
        self.values.insert(k, V::I(v));
        self
    }

    pub fn b(mut self, field: &str, v: bool) -> Self {
        let k = self.key(field);
        self.values.insert(k, V::B(v));
        self
    }

    pub fn l(mut self, field: &str, v: &[&str]) -> Self {
        let k = self.key(field);
        self.values
            .insert(k, V::L(v.iter().map(|s| s.to_string()).collect()));
        self
    }

    pub fn ip(mut self, field: &str, v: &str) -> Self {
        let k = self.key(field);
        self.values.insert(k, V::Ip(v.parse().expect("ip")));
        self
    }
}

impl FieldSource for MapSource<'_> {
    fn get(&self, field: FieldId, arg: &FieldArg) -> Option<Value<'_>> {
        // The map is keyed by owned args; tests are not the hot path.
        let v = self.values.get(&(field, arg.clone()))?;
        Some(match v {
            V::S(s) => Value::Str(s),
            V::I(i) => Value::Int(*i),
            V::B(b) => Value::Bool(*b),
            V::L(l) => Value::List(ListRef::Strings(l)),
            V::Ip(ip) => Value::Ip(*ip),
        })
    }
}
