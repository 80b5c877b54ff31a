//! Field registry: the host (the daemon) declares which fields exist; the
//! compiler resolves names to compact ids once so evaluation never compares
//! field names.

use std::collections::HashMap;
use std::fmt;

/// Compact id of a registered field (index into its registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(pub u16);

/// Argument of a field reference: `proc.aname[2]` → `Index(2)`,
/// `evt.arg.flags` / `evt.arg[flags]` → `Name("flags")`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum FieldArg {
    #[default]
    None,
    Index(u32),
    Name(Box<str>),
}

impl fmt::Display for FieldArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldArg::None => Ok(()),
            FieldArg::Index(i) => write!(f, "[{i}]"),
            FieldArg::Name(n) => write!(f, "[{n}]"),
        }
    }
}

/// Value type of a field; decides how literals are parsed and which
/// operators apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    Str,
    /// Signed 64-bit integer.
    Int,
    /// Unsigned integer (compared as a number; fits in `Value::Int` or `Value::Uint`).
    Uint,
    /// TCP/UDP port.
    Port,
    Bool,
    /// A list of strings; every operator holds if it holds for any element.
    StrList,
    /// An IP address; literals may be addresses or CIDR networks.
    Ip,
    /// A network field (`fd.net`): the value is an address, literals are CIDRs.
    Net,
    /// Alert priority; literals are priority names, ordered by severity.
    Priority,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Str => "string",
            FieldType::Int => "int",
            FieldType::Uint => "uint",
            FieldType::Port => "port",
            FieldType::Bool => "bool",
            FieldType::StrList => "list",
            FieldType::Ip => "ip",
            FieldType::Net => "net",
            FieldType::Priority => "priority",
        }
    }
}

/// One declared field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    pub name: String,
    pub ty: FieldType,
    /// Accepts a numeric argument: `proc.aname[2]`.
    pub takes_index: bool,
    /// Accepts a name argument: `evt.arg.flags`, `evt.arg[flags]`.
    pub takes_name: bool,
    /// The field is meaningless without an argument (`evt.arg`).
    pub arg_required: bool,
    pub description: String,
}

impl FieldDef {
    pub fn new(name: impl Into<String>, ty: FieldType, description: impl Into<String>) -> Self {
        FieldDef {
            name: name.into(),
            ty,
            takes_index: false,
            takes_name: false,
            arg_required: false,
            description: description.into(),
        }
    }

    pub fn with_index(mut self) -> Self {
        self.takes_index = true;
        self
    }

    pub fn with_name(mut self) -> Self {
        self.takes_name = true;
        self
    }

    pub fn arg_required(mut self) -> Self {
        self.arg_required = true;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("field {0} is already registered")]
    Duplicate(String),
    #[error("too many fields (limit {})", u16::MAX)]
    Full,
}

/// Why a field reference did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResolveError {
    Unknown,
    BadArgument(String),
}

#[derive(Debug, Clone, Default)]
pub struct FieldRegistry {
    fields: Vec<FieldDef>,
    by_name: HashMap<String, FieldId>,
}

impl FieldRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, def: FieldDef) -> Result<FieldId, RegistryError> {
        if self.by_name.contains_key(&def.name) {
            return Err(RegistryError::Duplicate(def.name));
        }
        let id = u16::try_from(self.fields.len()).map_err(|_| RegistryError::Full)?;
        let id = FieldId(id);
        self.by_name.insert(def.name.clone(), id);
        self.fields.push(def);
        Ok(id)
    }

    pub fn get(&self, id: FieldId) -> Option<&FieldDef> {
        self.fields.get(usize::from(id.0))
    }

    pub fn lookup(&self, name: &str) -> Option<FieldId> {
        self.by_name.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (FieldId, &FieldDef)> {
        self.fields
            .iter()
            .enumerate()
            .map(|(i, d)| (FieldId(i as u16), d))
    }

    /// Resolves `name` (possibly `prefix.argname`) and an optional bracket
    /// argument to an id and argument.
    pub(crate) fn resolve(
        &self,
        name: &str,
        bracket: Option<&str>,
    ) -> Result<(FieldId, FieldArg), ResolveError> {
        if let Some(id) = self.lookup(name) {
            let def = &self.fields[usize::from(id.0)];
            let arg = match bracket {
                None if def.arg_required => {
                    return Err(ResolveError::BadArgument("an argument is required".into()))
                }
                None => FieldArg::None,
                Some(a) => Self::bracket_arg(def, a)?,
            };
            return Ok((id, arg));
        }
        // `evt.arg.flags`: the longest registered prefix that takes a name.
        let mut cut = name.len();
        while let Some(dot) = name[..cut].rfind('.') {
            if let Some(id) = self.lookup(&name[..dot]) {
                let def = &self.fields[usize::from(id.0)];
                if def.takes_name {
                    if bracket.is_some() {
                        return Err(ResolveError::BadArgument(
                            "an argument was given twice".into(),
                        ));
                    }
                    return Ok((id, FieldArg::Name(name[dot + 1..].into())));
                }
            }
            cut = dot;
        }
        Err(ResolveError::Unknown)
    }

    fn bracket_arg(def: &FieldDef, a: &str) -> Result<FieldArg, ResolveError> {
        if def.takes_index {
            if let Ok(i) = a.parse::<u32>() {
                return Ok(FieldArg::Index(i));
            }
        }
        if def.takes_name {
            return Ok(FieldArg::Name(a.into()));
        }
        if def.takes_index {
            return Err(ResolveError::BadArgument(format!(
                "argument '{a}' is not a non-negative integer"
            )));
        }
        Err(ResolveError::BadArgument(
            "the field takes no argument".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution() {
        let mut r = FieldRegistry::new();
        let aname = r
            .register(FieldDef::new("proc.aname", FieldType::Str, "").with_index())
            .unwrap();
        let arg = r
            .register(
                FieldDef::new("evt.arg", FieldType::Str, "")
                    .with_index()
                    .with_name()
                    .arg_required(),
            )
            .unwrap();
        let sipname = r
            .register(FieldDef::new("fd.sip.name", FieldType::Str, ""))
            .unwrap();
        assert_eq!(r.resolve("proc.aname", None), Ok((aname, FieldArg::None)));
        assert_eq!(
            r.resolve("proc.aname", Some("3")),
            Ok((aname, FieldArg::Index(3)))
        );
        assert!(matches!(
            r.resolve("proc.aname", Some("x")),
            Err(ResolveError::BadArgument(_))
        ));
        assert_eq!(
            r.resolve("evt.arg.flags", None),
            Ok((arg, FieldArg::Name("flags".into())))
        );
        assert_eq!(
            r.resolve("evt.arg", Some("0")),
            Ok((arg, FieldArg::Index(0)))
        );
        assert_eq!(
            r.resolve("evt.arg", Some("fd")),
            Ok((arg, FieldArg::Name("fd".into())))
        );
        assert!(matches!(
            r.resolve("evt.arg", None),
            Err(ResolveError::BadArgument(_))
        ));
        assert_eq!(
            r.resolve("fd.sip.name", None),
            Ok((sipname, FieldArg::None))
        );
        assert_eq!(r.resolve("proc.foo", None), Err(ResolveError::Unknown));
        assert_eq!(
            r.register(FieldDef::new("fd.sip.name", FieldType::Str, "")),
            Err(RegistryError::Duplicate("fd.sip.name".into()))
        );
    }
}
