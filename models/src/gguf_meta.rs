//! Reading GGUF headers: typed metadata access with errors that name the key,
//! and the architecture gate in front of candle's `quantized_llama`.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};

use crate::error::{ModelError, Result};

/// Architectures whose tensors and hyper-parameters `quantized_llama` understands.
/// `mistral` uses the llama graph and RoPE layout; only its key prefix differs.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "mistral"];

/// Opens `path` and parses its GGUF header (metadata + tensor index, not the weights).
pub fn open(path: &Path) -> Result<(Content, BufReader<File>)> {
    let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let content = Content::read(&mut reader).map_err(|e| ModelError::InvalidGguf {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok((content, reader))
}

pub fn get<'a>(content: &'a Content, key: &str) -> Result<&'a Value> {
    content.metadata.get(key).ok_or_else(|| missing(key))
}

fn missing(key: &str) -> ModelError {
    ModelError::MissingMetadata {
        key: key.to_string(),
    }
}

pub fn get_str<'a>(content: &'a Content, key: &str) -> Result<&'a str> {
    match get(content, key)? {
        Value::String(s) => Ok(s),
        _ => Err(missing(key)),
    }
}

pub fn opt_str<'a>(content: &'a Content, key: &str) -> Option<&'a str> {
    get_str(content, key).ok()
}

/// Integers are stored with whatever width the converter chose; accept them all.
pub fn as_u64(v: &Value) -> Option<u64> {
    match *v {
        Value::U8(x) => Some(x.into()),
        Value::U16(x) => Some(x.into()),
        Value::U32(x) => Some(x.into()),
        Value::U64(x) => Some(x),
        Value::I8(x) => u64::try_from(x).ok(),
        Value::I16(x) => u64::try_from(x).ok(),
        Value::I32(x) => u64::try_from(x).ok(),
        Value::I64(x) => u64::try_from(x).ok(),
        _ => None,
    }
}

pub fn get_u32(content: &Content, key: &str) -> Result<u32> {
    as_u64(get(content, key)?)
        .and_then(|x| u32::try_from(x).ok())
        .ok_or_else(|| missing(key))
}

pub fn opt_u32(content: &Content, key: &str) -> Option<u32> {
    get_u32(content, key).ok()
}

pub fn opt_bool(content: &Content, key: &str) -> Option<bool> {
    match content.metadata.get(key) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

pub fn get_array<'a>(content: &'a Content, key: &str) -> Result<&'a [Value]> {
    match get(content, key)? {
        Value::Array(a) => Ok(a),
        _ => Err(missing(key)),
    }
}

pub fn get_str_array<'a>(content: &'a Content, key: &str) -> Result<Vec<&'a str>> {
    get_array(content, key)?
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.as_str()),
            _ => Err(missing(key)),
        })
        .collect()
}

pub fn get_int_array(content: &Content, key: &str) -> Result<Vec<i64>> {
    get_array(content, key)?
        .iter()
        .map(|v| match *v {
            Value::I32(x) => Ok(x.into()),
            Value::I64(x) => Ok(x),
            Value::U8(x) => Ok(x.into()),
            Value::I8(x) => Ok(x.into()),
            Value::U32(x) => Ok(x.into()),
            _ => Err(missing(key)),
        })
        .collect()
}

pub fn get_f32_array(content: &Content, key: &str) -> Result<Vec<f32>> {
    get_array(content, key)?
        .iter()
        .map(|v| match *v {
            Value::F32(x) => Ok(x),
            Value::F64(x) => Ok(x as f32),
            _ => Err(missing(key)),
        })
        .collect()
}

/// Returns the architecture if `quantized_llama` can run it, a clear error otherwise.
pub fn check_architecture(content: &Content) -> Result<String> {
    let arch = get_str(content, "general.architecture")?;
    if SUPPORTED_ARCHITECTURES.contains(&arch) {
        Ok(arch.to_string())
    } else {
        Err(ModelError::UnsupportedArchitecture(arch.to_string()))
    }
}

/// `quantized_llama` reads `llama.*` keys only: alias the architecture's own keys.
pub fn alias_to_llama(content: &mut Content, arch: &str) {
    if arch == "llama" {
        return;
    }
    let prefix = format!("{arch}.");
    let aliased: Vec<(String, Value)> = content
        .metadata
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(&prefix)
                .map(|rest| (format!("llama.{rest}"), v.clone()))
        })
        .collect();
    for (k, v) in aliased {
        content.metadata.entry(k).or_insert(v);
    }
}

/// Context length the model was trained for, if recorded.
pub fn context_length(content: &Content) -> Option<usize> {
    opt_u32(content, "llama.context_length").map(|x| x as usize)
}
